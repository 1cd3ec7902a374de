"""Popularity baselines: global interaction counts, and counts decayed by age (half-life).

The same ranking for every user (seen items are excluded by `recommend`). With a half-life, an
event of age a counts 0.5 ** (a / half_life). Age is measured from the newest event of the data
("global", in timestamp units), or from each user's own newest event ("user", counted in events;
the meaningful choice when timestamps are event positions, as in the S3-Rec files).

Popularity is a statistic of everything known, so the benchmark refits it on the test history
(training plus validation items) before the test (`refit_for_test`); the reference checker and
the published PopRec figures count popularity the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from shoprec.evaluation.protocols import FitLog, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.neighbours import recency_weights


class PopularityConfig(ModelConfig):
    half_life: float | None = None       # None: plain counts; else decay in timestamp units
    age_from: Literal["global", "user"] = "global"
    weighted: bool = False               # sum event weights (purchase > view) instead of counting events


class Popularity(Recommender):
    """Most-popular items. Scores: (n_items,) counts, identical for every user."""

    name = "pop"
    config_class = PopularityConfig
    refit_for_test: ClassVar[bool] = True

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.popularity = np.zeros(0, np.float32)
        self.fit_report: dict[str, float] = {}

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        log = FitLog(self.name)
        cfg: PopularityConfig = self.config
        weights = data.weights if cfg.weighted else np.ones(len(data), np.float32)
        if cfg.half_life is not None and len(data):
            if cfg.age_from == "user":
                # recency_weights counts events after each one, which equals positional age
                unit = Interactions(data.n_users, data.n_items, data.users, data.items, weights=weights)
                weights = recency_weights(unit, cfg.half_life)
            else:
                age = data.timestamps.max() - data.timestamps
                weights = weights * np.power(0.5, age / cfg.half_life).astype(np.float32)
        self.popularity = np.bincount(data.items, weights=weights, minlength=data.n_items).astype(np.float32)
        report = validation_ndcg10(self, valid)
        if report is not None:
            self.fit_report["valid_ndcg10"] = report
        log(events=len(data), **({"valid_ndcg10": report} if report is not None else {}))

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(users), self.n_items)).copy()

    def item_vectors(self) -> np.ndarray | None:
        return None

    def _save(self, path: Path) -> None:
        np.save(path / "popularity.npy", self.popularity)

    def _load(self, path: Path) -> None:
        self.popularity = np.load(path / "popularity.npy")


class DecayedPopularityConfig(PopularityConfig):
    half_life: float | None = 10.0
    age_from: Literal["global", "user"] = "user"


class DecayedPopularity(Popularity):
    """Popularity with recent events counting more (defaults: half-life of 10 events per user)."""

    name = "pop_decay"
    config_class = DecayedPopularityConfig
    tuning_grid: ClassVar[dict[str, list]] = {"half_life": [3.0, 10.0, 30.0]}
