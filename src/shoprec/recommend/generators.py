"""Serve-time candidate generators: each turns one request into `(item indices, scores)`.

They wrap trained models and build-time statistics, and never train. The contract
(DESIGN.md, stage 1): `candidates(request, k) -> (ids (m,) int64, scores (m,) float32)`, best first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from shoprec.recommend.base import Recommender, top_k
from shoprec.recommend.dataset import Interactions

EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float32))


@dataclass
class Request:
    """Everything a generator may use about one recommendation request (item ids as indices)."""

    user_index: int | None = None          # training index of a known user
    history: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # (n,) all known items, oldest first
    recent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))    # (m,) this session's items, oldest first
    seeds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))     # item page / cart items
    context: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    name: str

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(scores) & (scores > 0)
    if not finite.any():
        return EMPTY
    scores = np.where(finite, scores, -np.inf).astype(np.float32)
    ids, top = top_k(scores[None, :], min(k, int(finite.sum())))
    return ids[0].astype(np.int64), top[0]


def _recency_weights(n: int, half_life: float = 5.0) -> np.ndarray:
    """Newest item weight 1, halving every `half_life` items back."""
    return np.power(0.5, np.arange(n)[::-1] / half_life).astype(np.float32)


class ModelGenerator:
    """A trained model scoring the user's whole history (known users, or fresh histories)."""

    def __init__(self, name: str, model: Recommender):
        self.name = name
        self.model = model

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.model.needs_user_index:
            if request.user_index is None or self.model.history is None:
                return EMPTY
            scores = self.model.score(np.array([request.user_index]), self.model.history)[0]
        else:
            history = np.concatenate([request.history, request.recent])
            if not len(history):
                return EMPTY
            one_user = Interactions.from_sequences([history], self.model.n_items)
            scores = self.model.score(np.array([0]), one_user)[0]
        scores = np.asarray(scores, np.float32)
        # Rank-shift so every candidate is positive: fusion only uses ranks and relative scores.
        finite = np.isfinite(scores)
        if finite.any():
            scores = np.where(finite, scores - scores[finite].min() + 1e-6, -np.inf)
        return _top(scores, k)


class NeighbourGenerator:
    """Items similar to seed items (the item page, the cart, or this session's recent items)."""

    def __init__(self, name: str, model: Recommender, source: str = "seeds", fanout: int = 50):
        self.name = name
        self.model = model
        self.source = source
        self.fanout = fanout

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        seeds = request.seeds if self.source == "seeds" else request.recent[-10:]
        seeds = seeds[(seeds >= 0) & (seeds < self.model.n_items)]
        if not len(seeds):
            return EMPTY
        weights = _recency_weights(len(seeds)) if self.source == "recent" else np.ones(len(seeds), np.float32)
        try:
            ids, sims = self.model.similar_items(seeds, k=self.fanout)
        except NotImplementedError:
            return EMPTY
        scores = np.zeros(self.model.n_items, np.float32)
        valid = np.isfinite(sims) & (sims > 0)
        np.add.at(scores, ids[valid], (sims * weights[:, None])[valid])
        scores[seeds] = 0.0
        return _top(scores, k)


class VectorProfileGenerator:
    """Language-model interest vector: recency-weighted mean of the user's item embeddings."""

    name = "content_profile"

    def __init__(self, item_vectors: np.ndarray):
        self.item_vectors = item_vectors

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        history = np.concatenate([request.history, request.recent])[-50:]
        if not len(history) or self.item_vectors is None or not len(self.item_vectors):
            return EMPTY
        profile = (self.item_vectors[history] * _recency_weights(len(history))[:, None]).sum(0)
        profile /= max(float(np.linalg.norm(profile)), 1e-12)
        return _top(self.item_vectors @ profile, k)


class PopularityGenerator:
    """Popular items, overall / recent / within the request's locale (falls back to overall)."""

    def __init__(self, name: str, popularity: np.ndarray, by_locale: dict[str, np.ndarray] | None = None):
        self.name = name
        self.popularity = popularity.astype(np.float32)
        self.by_locale = by_locale or {}

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        counts = self.by_locale.get(str(request.context.get("locale", "")), self.popularity)
        # Smooth with overall popularity so sparse locales still fill the list.
        scores = counts / max(float(counts.sum()), 1.0) + 0.1 * self.popularity / max(float(self.popularity.sum()), 1.0)
        return _top(scores.astype(np.float32), k)
