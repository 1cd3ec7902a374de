"""Learning-to-rank: a LightGBM LambdaRank model over candidate features.

Trained from grouped examples (one group per request: candidates with graded labels), from logged
impressions/clicks/purchases when the shop has them, or from next-item targets otherwise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from pydantic import BaseModel


class LTRConfig(BaseModel):
    num_leaves: int = 31
    learning_rate: float = 0.05
    n_estimators: int = 300
    min_child_samples: int = 20
    feature_fraction: float = 0.9
    early_stopping_rounds: int = 30
    eval_at: int = 10
    seed: int = 42
    num_threads: int = 2


class LTRRanker:
    """LambdaRank over (n_examples, n_features) with query groups; higher prediction = rank higher."""

    def __init__(self, feature_names: list[str], config: LTRConfig | None = None):
        self.feature_names = list(feature_names)
        self.config = config or LTRConfig()
        self.booster = None
        self.best_iteration = 0

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
            valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> "LTRRanker":
        """x: (n, f) features; y: (n,) integer relevance; groups: sizes of consecutive query groups."""
        import lightgbm as lgb

        c = self.config
        params = {
            "objective": "lambdarank", "metric": "ndcg", "eval_at": [c.eval_at], "num_leaves": c.num_leaves,
            "learning_rate": c.learning_rate, "min_child_samples": c.min_child_samples,
            "feature_fraction": c.feature_fraction, "seed": c.seed, "num_threads": c.num_threads, "verbosity": -1,
            "deterministic": True,
        }
        # LightGBM refuses JSON punctuation in feature names; our names keep their readable form elsewhere.
        lgb_names = [re.sub(r"[^0-9A-Za-z_]", "_", name) for name in self.feature_names]
        train = lgb.Dataset(x, y, group=groups, feature_name=lgb_names, free_raw_data=False)
        sets, callbacks = [], []
        if valid is not None:
            sets = [lgb.Dataset(valid[0], valid[1], group=valid[2], reference=train)]
            callbacks = [lgb.early_stopping(c.early_stopping_rounds, verbose=False)]
        self.booster = lgb.train(params, train, num_boost_round=c.n_estimators, valid_sets=sets, callbacks=callbacks)
        self.best_iteration = self.booster.best_iteration or c.n_estimators
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("LTRRanker: fit() or load() first")
        return self.booster.predict(x, num_iteration=self.best_iteration or None)

    def feature_importance(self) -> dict[str, float]:
        """Share of total split gain per feature, largest first."""
        gain = self.booster.feature_importance(importance_type="gain")
        total = max(float(gain.sum()), 1e-12)
        pairs = sorted(zip(self.feature_names, gain / total), key=lambda p: -p[1])
        return {name: round(float(share), 4) for name, share in pairs}

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / "ranker.txt"), num_iteration=self.best_iteration or None)
        (path / "ranker.json").write_text(json.dumps({
            "format_version": 1, "features": self.feature_names, "config": self.config.model_dump(),
            "best_iteration": self.best_iteration, "importance": self.feature_importance(),
        }, indent=2))

    @classmethod
    def load(cls, path: Path) -> "LTRRanker":
        import lightgbm as lgb

        meta = json.loads((path / "ranker.json").read_text())
        ranker = cls(meta["features"], LTRConfig(**meta["config"]))
        ranker.booster = lgb.Booster(model_file=str(path / "ranker.txt"))
        ranker.best_iteration = 0  # the saved model already holds only the best iterations
        return ranker


def groups_from_ids(group_ids: np.ndarray) -> np.ndarray:
    """Sizes of consecutive runs of equal ids: the `group` argument LightGBM expects."""
    if not len(group_ids):
        return np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(group_ids)) + 1
    return np.diff(np.concatenate([[0], change, [len(group_ids)]]))
