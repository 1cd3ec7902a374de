"""Implicit-feedback matrix factorisation by alternating least squares (the `implicit` library, CPU).

Users are folded in from the history they are scored with (one least-squares solve per user against
the fixed item factors, as implicit's `recalculate_user` does), so the validation item counts at
test time and unseen users can be scored. Early stopping: the item factors after the iteration
with the best validation NDCG@10 are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shoprec.evaluation.protocols import FitLog, Holdout, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.neighbours import WeightedHistoryCache


class ALSConfig(ModelConfig):
    factors: int = 128
    regularization: float = 0.1
    alpha: float = 20.0                  # confidence of an observed interaction (implicit scales counts by it)
    iterations: int = 15
    eval_every: int = 1                  # validation check every n iterations (when valid is given)
    patience: int = 3                    # stop after this many checks without improvement
    max_valid_users: int | None = 5000   # validation subsample for the per-iteration check
    history_half_life: float | None = None
    num_threads: int = 2


class ALS(Recommender):
    """item_factors: (n_items, factors) float32; user vectors are solved from the history at scoring time."""

    name = "als"
    config_class = ALSConfig

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.item_factors = np.zeros((0, self.config.factors), np.float32)
        self.fit_report: dict[str, float] = {}
        self._history_cache = WeightedHistoryCache()
        self._solver = None

    def _make_solver(self):
        from implicit.cpu.als import AlternatingLeastSquares

        cfg: ALSConfig = self.config
        return AlternatingLeastSquares(
            factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha, iterations=cfg.eval_every,
            calculate_training_loss=True, num_threads=cfg.num_threads, random_state=cfg.seed,
        )

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        cfg: ALSConfig = self.config
        log = FitLog(self.name)
        check = valid.subsample(cfg.max_valid_users, cfg.seed) if isinstance(valid, Holdout) else None
        solver = self._make_solver()
        self._solver = solver
        matrix = data.csr.astype(np.float32)
        losses: list[float] = []
        best, best_factors, since_best, done = -1.0, None, 0, 0
        while done < cfg.iterations:
            steps = min(cfg.eval_every, cfg.iterations - done)
            solver.iterations = steps
            solver.fit(matrix, show_progress=False, callback=lambda it, elapsed, loss: losses.append(float(loss)))
            done += steps
            self.item_factors = np.asarray(solver.item_factors, np.float32)
            self._history_cache.clear()
            fields: dict[str, Any] = {"iteration": done, "loss": losses[-1] if losses else float("nan")}
            if check is not None:
                ndcg = validation_ndcg10(self, check)
                fields["valid_ndcg10"] = ndcg
                if ndcg > best:
                    best, best_factors, since_best = ndcg, self.item_factors.copy(), 0
                else:
                    since_best += 1
            log(**fields)
            if check is not None and since_best >= cfg.patience:
                break
        if best_factors is not None:
            self.item_factors = best_factors
            self.fit_report.update(valid_ndcg10_subsample=best)
        self._solver = None

    def _get_solver(self):
        if self._solver is None:
            self._solver = self._make_solver()
        self._solver.item_factors = self.item_factors
        return self._solver

    def user_factors(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        """(len(users), factors) least-squares user vectors given their rows of `history`."""
        rows = self._history_cache.get(history, self.config.history_half_life)[np.asarray(users)]
        solver = self._get_solver()
        # implicit caches YtY on first use; recompute it only when the item factors were replaced
        # (every fit step assigns a new array), not on every request.
        if getattr(self, "_yty_of", None) is not self.item_factors and hasattr(solver, "_YtY"):
            solver._YtY = None
            self._yty_of = self.item_factors
        # A request folds in one user: OpenMP start-up costs ~7x the solve itself (0.33 vs 0.05 ms).
        solver.num_threads = 1 if len(users) < 64 else self.config.num_threads
        return solver.recalculate_user(np.asarray(users), rows.tocsr().astype(np.float32))

    def query_vectors(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return np.asarray(self.user_factors(users, history), np.float32)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return (self.user_factors(users, history) @ self.item_factors.T).astype(np.float32)

    def item_vectors(self) -> np.ndarray | None:
        return self.item_factors

    def _save(self, path: Path) -> None:
        np.save(path / "item_factors.npy", self.item_factors)

    def _load(self, path: Path) -> None:
        self.item_factors = np.load(path / "item_factors.npy")
