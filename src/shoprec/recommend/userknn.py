"""User-based collaborative filtering: score = sum over the most similar training users of their items.

A query user is represented by the rows of the history it is scored with (so a fresh session can
be scored too); similarity to every training user is cosine or Pearson (over all items), with
shrinkage; only the top `neighbours` users are kept per query (sparse throughout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from shoprec.evaluation.protocols import FitLog, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.neighbours import WeightedHistoryCache, prune_rows


class UserKNNConfig(ModelConfig):
    similarity: Literal["cosine", "pearson"] = "cosine"
    neighbours: int = 100                  # training users kept per query user
    shrinkage: float = 0.0
    history_half_life: float | None = 1.0   # recency weighting of the query history, in events (None: off)
    neighbour_weight_power: float = 1.0     # similarity ** power: > 1 favours the closest users


class UserKNN(Recommender):
    """User-user neighbourhood model. train: (n_users, n_items) CSR of the training interactions."""

    name = "userknn"
    config_class = UserKNNConfig
    tuning_grid: ClassVar[dict[str, list]] = {"shrinkage": [0.0, 10.0], "history_half_life": [1.0, None]}

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.train = sp.csr_matrix((0, 0), dtype=np.float32)
        self.fit_report: dict[str, float] = {}
        self._history_cache = WeightedHistoryCache()
        self._prepared: tuple[sp.csr_matrix, np.ndarray, np.ndarray] | None = None

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        log = FitLog(self.name)
        self.train = data.csr.astype(np.float32)
        self._prepare()
        report = validation_ndcg10(self, valid)
        if report is not None:
            self.fit_report["valid_ndcg10"] = report
        log(users=self.train.shape[0], **({"valid_ndcg10": report} if report is not None else {}))

    def _prepare(self) -> None:
        """Transposed training matrix and per-user norms / means used by the similarity."""
        train = self.train.astype(np.float64)
        sums = np.asarray(train.sum(axis=1)).ravel()
        squares = np.asarray(train.multiply(train).sum(axis=1)).ravel()
        if self.config.similarity == "pearson":
            means = sums / max(self.n_items, 1)
            scale = np.sqrt(np.maximum(squares / max(self.n_items, 1) - means ** 2, 0.0))
        else:
            means = np.zeros_like(sums)
            scale = np.sqrt(squares)
        self._history_cache.clear()
        self._prepared = (train.T.tocsr(), scale, means)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        cfg: UserKNNConfig = self.config
        if self._prepared is None:
            self._prepare()
        train_t, scale, means = self._prepared
        users = np.asarray(users, dtype=np.int64)
        query = self._history_cache.get(history, cfg.history_half_life)[users].astype(np.float64)
        dots = (query @ train_t).tocoo()                         # (batch, n_train_users), co-occurring only
        q_squares = np.asarray(query.multiply(query).sum(axis=1)).ravel()
        if cfg.similarity == "pearson":
            q_means = np.asarray(query.sum(axis=1)).ravel() / max(self.n_items, 1)
            q_scale = np.sqrt(np.maximum(q_squares / max(self.n_items, 1) - q_means ** 2, 0.0))
            numerator = dots.data / max(self.n_items, 1) - q_means[dots.row] * means[dots.col]
        else:
            q_scale = np.sqrt(q_squares)
            numerator = dots.data
        values = numerator / (q_scale[dots.row] * scale[dots.col] + cfg.shrinkage)
        # a user scored with (a superset of) their own training rows is not their own neighbour
        same_user = (users[dots.row] == dots.col) if history.n_users == self.n_users else np.zeros(len(values), bool)
        values = np.where(same_user | ~np.isfinite(values) | (values <= 0), 0.0, values)
        similarity = sp.csr_matrix((values, (dots.row, dots.col)), shape=(len(users), train_t.shape[1]))
        similarity = prune_rows(similarity, cfg.neighbours)
        if cfg.neighbour_weight_power != 1.0:
            similarity.data **= cfg.neighbour_weight_power
        return (similarity @ self.train.astype(np.float64)).toarray().astype(np.float32)

    def _save(self, path: Path) -> None:
        sp.save_npz(path / "train.npz", self.train)

    def _load(self, path: Path) -> None:
        self.train = sp.load_npz(path / "train.npz").tocsr().astype(np.float32)
        self._prepare()
