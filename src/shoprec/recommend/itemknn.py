"""Item-based collaborative filtering: score = history weights @ item-item similarity.

Similarity between item columns of the (n_users, n_items) interaction matrix, cosine or Pearson,
with shrinkage, and only the top `neighbours` per item kept (sparse, never dense n_items²).
A user's history can be recency weighted (the newest item counts most), which matters for
next-item prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from shoprec.evaluation.protocols import FitLog, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.neighbours import WeightedHistoryCache, column_similarity


class ItemKNNConfig(ModelConfig):
    similarity: Literal["cosine", "pearson"] = "cosine"
    neighbours: int | None = 200          # kept per item; None keeps every co-occurring item
    shrinkage: float = 10.0
    history_half_life: float | None = 1.0   # recency weighting of the history, in events (None: off)
    block_size: int = 2048


class ItemKNN(Recommender):
    """Item-item neighbourhood model. similarity: (n_items, n_items) sparse CSR, row i = i's neighbours."""

    name = "itemknn"
    config_class = ItemKNNConfig
    sparse_scores = True
    # small grid the benchmark searches on validation targets (the same for every dataset)
    tuning_grid: ClassVar[dict[str, list]] = {"shrinkage": [0.0, 10.0, 100.0], "history_half_life": [1.0, 4.0]}

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.fit_report: dict[str, float] = {}
        self._history_cache = WeightedHistoryCache()

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        log = FitLog(self.name)
        cfg: ItemKNNConfig = self.config
        self.similarity = column_similarity(data.csr, cfg.similarity, cfg.neighbours, cfg.shrinkage, cfg.block_size)
        self._history_cache.clear()
        report = validation_ndcg10(self, valid)
        if report is not None:
            self.fit_report["valid_ndcg10"] = report
        log(similarity_nnz=self.similarity.nnz, **({"valid_ndcg10": report} if report is not None else {}))

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        weights = self._history_cache.get(history, self.config.history_half_life)
        return (weights[np.asarray(users)] @ self.similarity).toarray().astype(np.float32)

    def score_sparse(self, user: int, history: Interactions) -> tuple[np.ndarray, np.ndarray]:
        weights = self._history_cache.get(history, self.config.history_half_life)
        row = weights[user] @ self.similarity  # a product of CSR matrices: no duplicate entries
        return row.indices.astype(np.int64), row.data.astype(np.float32)

    def similar_items(self, items: np.ndarray | list[int], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k neighbours per item from the similarity rows (the item itself excluded): (ids, scores)
        (len(items), k); a row with fewer than k neighbours ends in id -1, score -inf.

        Read from each row's stored neighbours: densifying the rows cost 1.4 ms per live request at
        100,000 items, this ~0.1 ms."""
        items = np.asarray(items, dtype=np.int64)
        k = min(k, self.similarity.shape[1])
        ids = np.full((len(items), k), -1, np.int64)
        scores = np.full((len(items), k), -np.inf, np.float32)
        indptr, indices, data = self.similarity.indptr, self.similarity.indices, self.similarity.data
        for row, item in enumerate(items.tolist()):
            cols, values = indices[indptr[item]:indptr[item + 1]], data[indptr[item]:indptr[item + 1]]
            keep = cols != item
            cols, values = cols[keep], values[keep]
            if len(cols) > k:
                part = np.argpartition(-values, k - 1)[:k]
                cols, values = cols[part], values[part]
            order = np.argsort(-values, kind="stable")
            ids[row, :len(order)], scores[row, :len(order)] = cols[order], values[order]
        return ids, scores

    def _save(self, path: Path) -> None:
        sp.save_npz(path / "similarity.npz", self.similarity)

    def _load(self, path: Path) -> None:
        self.similarity = sp.load_npz(path / "similarity.npz").tocsr().astype(np.float32)


class ItemKNNPearsonConfig(ItemKNNConfig):
    similarity: Literal["cosine", "pearson"] = "pearson"


class ItemKNNPearson(ItemKNN):
    """Item-based CF with Pearson correlation (over all users) as the similarity."""

    name = "itemknn_pearson"
    config_class = ItemKNNPearsonConfig
