"""Bayesian personalised ranking matrix factorisation (the `implicit` library, CPU).

User and item factors are learned by SGD on (user, seen item, unseen item) triples. Users are
scored by their training index (`needs_user_index`). Early stopping keeps the factors of the
epoch with the best validation NDCG@10.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shoprec.evaluation.protocols import FitLog, Holdout, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions


class BPRConfig(ModelConfig):
    factors: int = 128
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 300
    eval_every: int = 10                 # epochs between validation checks
    patience: int = 3                    # checks without improvement before stopping
    max_valid_users: int | None = 5000
    num_threads: int = 2


class BPR(Recommender):
    """user_factors: (n_users, factors + 1), item_factors: (n_items, factors + 1) (the last column is the item bias)."""

    name = "bpr"
    config_class = BPRConfig
    needs_user_index: ClassVar[bool] = True
    tuning_grid: ClassVar[dict[str, list]] = {"learning_rate": [0.01, 0.05]}

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.user_factors = np.zeros((0, 0), np.float32)
        self.item_factors = np.zeros((0, 0), np.float32)
        self.fit_report: dict[str, float] = {}

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        cfg: BPRConfig = self.config
        log = FitLog(self.name)
        check = valid.subsample(cfg.max_valid_users, cfg.seed) if isinstance(valid, Holdout) else None
        solver = BayesianPersonalizedRanking(
            factors=cfg.factors, learning_rate=cfg.learning_rate, regularization=cfg.regularization,
            iterations=cfg.eval_every, num_threads=cfg.num_threads, random_state=cfg.seed,
        )
        matrix = data.seen.astype(np.float32)
        progress: list[tuple[int, int]] = []
        best, best_state, since_best, done = -1.0, None, 0, 0
        while done < cfg.iterations:
            solver.iterations = min(cfg.eval_every, cfg.iterations - done)
            # implicit continues from the current factors when fit is called again
            solver.fit(matrix, show_progress=False, callback=lambda epoch, elapsed, correct, skipped: progress.append((correct, skipped)))
            done += solver.iterations
            self.user_factors = np.asarray(solver.user_factors, np.float32)
            self.item_factors = np.asarray(solver.item_factors, np.float32)
            correct, skipped = progress[-1] if progress else (0, 0)
            fields: dict[str, Any] = {"epoch": done, "train_triple_accuracy": correct / max(len(data) - skipped, 1)}
            if check is not None:
                ndcg = validation_ndcg10(self, check)
                fields["valid_ndcg10"] = ndcg
                if ndcg > best:
                    best, best_state, since_best = ndcg, (self.user_factors.copy(), self.item_factors.copy()), 0
                else:
                    since_best += 1
            log(**fields)
            if check is not None and since_best >= cfg.patience:
                break
        if best_state is not None:
            self.user_factors, self.item_factors = best_state
            self.fit_report.update(valid_ndcg10_subsample=best)

    def query_vectors(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if len(users) and users.max() >= len(self.user_factors):
            raise IndexError(f"bpr scores training users only (index < {len(self.user_factors)}), got {users.max()}")
        return self.user_factors[users].astype(np.float32)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return (self.query_vectors(users, history) @ self.item_factors.T).astype(np.float32)

    def item_vectors(self) -> np.ndarray | None:
        return self.item_factors[:, :-1]

    def scoring_table(self) -> np.ndarray:
        return self.item_factors  # the last column is the item bias, matched by a constant user column

    def _save(self, path: Path) -> None:
        np.save(path / "user_factors.npy", self.user_factors)
        np.save(path / "item_factors.npy", self.item_factors)

    def _load(self, path: Path) -> None:
        self.user_factors = np.load(path / "user_factors.npy")
        self.item_factors = np.load(path / "item_factors.npy")
