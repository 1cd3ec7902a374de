"""Serve-time candidate generators: each turns one request into `(item indices, scores)`.

They wrap trained models and build-time statistics, and never train. The contract
(DESIGN.md, stage 1): `candidates(request, k) -> (ids (m,) int64, scores (m,) float32)`, best first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from shoprec.recommend.ann import ItemIndex
from shoprec.recommend.base import Recommender, top_k
from shoprec.recommend.dataset import Interactions

EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float32))
Retrieved = dict[str, tuple[np.ndarray, np.ndarray]]  # one request's (ids, scores) per generator name


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


def candidates_many(generators: dict[str, Generator], names: list[str], requests: list[Request],
                    k: int) -> list[Retrieved]:
    """Each request's candidates from each named generator: one batched call per generator that has
    `candidates_many` (one model pass and one index search for all requests), else one call per request."""
    found: list[Retrieved] = [{} for _ in requests]
    for name in names:
        generator = generators.get(name)
        if generator is None:
            continue
        many = getattr(generator, "candidates_many", None)
        answers = many(requests, k) if many is not None else [generator.candidates(r, k) for r in requests]
        for got, answer in zip(found, answers):
            got[name] = answer
    return found


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(scores) & (scores > 0)
    if not finite.any():
        return EMPTY
    scores = np.where(finite, scores, -np.inf).astype(np.float32)
    ids, top = top_k(scores[None, :], min(k, int(finite.sum())))
    return ids[0].astype(np.int64), top[0]


def _top_of(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum `scores` per id (ids may repeat) and keep the k best positive ones, best first (ties by id)."""
    keep = np.isfinite(scores) & (scores > 0)
    if not keep.any():
        return EMPTY
    unique, inverse = np.unique(ids[keep], return_inverse=True)
    summed = np.bincount(inverse, weights=scores[keep]).astype(np.float32)
    order = np.argsort(-summed, kind="stable")[:k]
    return unique[order].astype(np.int64), summed[order]


def _recency_weights(n: int, half_life: float = 5.0) -> np.ndarray:
    """Newest item weight 1, halving every `half_life` items back."""
    return np.power(0.5, np.arange(n)[::-1] / half_life).astype(np.float32)


class ModelGenerator:
    """A trained model scoring the user's whole history (known users, or fresh histories).

    With an `index` over the model's scoring table (large catalogs), the user's query vector is
    searched in it instead of scoring every item."""

    def __init__(self, name: str, model: Recommender, index: ItemIndex | None = None):
        self.name = name
        self.model = model
        self.index = index

    def _query(self, requests: list[Request]) -> tuple[list[int], np.ndarray | None, Interactions | None]:
        """(positions of the requests the model can score, their users, the history they index)."""
        if self.model.needs_user_index:
            rows = [j for j, r in enumerate(requests) if r.user_index is not None]
            if not rows or self.model.history is None:
                return [], None, None
            return rows, np.array([requests[j].user_index for j in rows]), self.model.history
        histories = [np.concatenate([r.history, r.recent]) for r in requests]
        rows = [j for j, h in enumerate(histories) if len(h)]
        if not rows:
            return [], None, None
        return rows, np.arange(len(rows)), Interactions.from_sequences([histories[j] for j in rows], self.model.n_items)

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows, users, data = self._query([request])
        if not rows:
            return EMPTY
        if self.index is not None:
            ids, scores = self.index.search(self.model.query_vectors(users, data), k)
            return _shifted(ids[0], scores[0], k)
        if self.model.sparse_scores:
            # Only the items the model scores at all (neighbours of the history), not the catalog.
            ids, scores = self.model.score_sparse(int(users[0]), data)
            if len(ids) > k:
                keep = np.argpartition(-scores, k - 1)[:k]
                ids, scores = ids[keep], scores[keep]
            order = np.argsort(-scores, kind="stable")
            return _shifted(ids[order], scores[order], k)
        return _shifted(None, np.asarray(self.model.score(users, data)[0], np.float32), k)

    def candidates_many(self, requests: list[Request], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """`candidates` of each request; with an index, one model pass and one search for all."""
        if self.index is None:
            return [self.candidates(r, k) for r in requests]
        found = [EMPTY] * len(requests)
        rows, users, data = self._query(requests)
        if rows:
            for j, (ids, scores) in zip(rows, self.index.search_each(self.model.query_vectors(users, data), k)):
                found[j] = _shifted(ids, scores, k)
        return found


def _shifted(ids: np.ndarray | None, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-shift so every candidate is positive (fusion only uses ranks and relative scores); with
    `ids` None, `scores` is a dense row over the catalog and its top k are kept."""
    finite = np.isfinite(scores)
    if finite.any():
        scores = np.where(finite, scores - scores[finite].min() + 1e-6, -np.inf).astype(np.float32)
    if ids is not None:
        return ids[finite], scores[finite]
    return _top(scores, k)


class NeighbourGenerator:
    """Items similar to seed items (the item page, the cart, or this session's recent items).

    With an `index` over the model's unit item vectors (large catalogs), neighbours come from it."""

    def __init__(self, name: str, model: Recommender, source: str = "seeds", fanout: int = 50,
                 index: ItemIndex | None = None):
        self.name = name
        self.model = model
        self.source = source
        self.fanout = fanout
        self.index = index

    def _neighbours(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return self.model.similar_items(seeds, k=self.fanout)
        return self.index.search(self.index.vectors[seeds], self.fanout + 1)  # each seed finds itself: `_combine` drops it

    def _seeds(self, request: Request) -> np.ndarray:
        seeds = request.seeds if self.source == "seeds" else request.recent[-10:]
        return seeds[(seeds >= 0) & (seeds < self.model.n_items)]

    def _combine(self, seeds: np.ndarray, ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(len(seeds), fanout) neighbours of each seed -> the k best items, summed over seeds."""
        weights = _recency_weights(len(seeds)) if self.source == "recent" else np.ones(len(seeds), np.float32)
        sims = np.where(np.isin(ids, seeds), -np.inf, sims * weights[:, None])
        return _top_of(ids.ravel(), sims.ravel(), k)

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        seeds = self._seeds(request)
        if not len(seeds):
            return EMPTY
        try:
            ids, sims = self._neighbours(seeds)
        except NotImplementedError:
            return EMPTY
        return self._combine(seeds, ids, sims, k)

    def candidates_many(self, requests: list[Request], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """`candidates` of each request; with an index, one search for every request's seeds."""
        if self.index is None:
            return [self.candidates(r, k) for r in requests]
        seeds = [self._seeds(r) for r in requests]
        queries = np.concatenate(seeds) if seeds else np.zeros(0, np.int64)
        rows = self.index.search_each(self.index.vectors[queries], self.fanout + 1) if len(queries) else []
        found, at = [], 0
        for mine in seeds:
            if not len(mine):
                found.append(EMPTY)
                continue
            part, at = rows[at:at + len(mine)], at + len(mine)
            width = min(len(ids) for ids, _ in part)  # as `search` cuts one request's rows
            ids = np.stack([ids[:width] for ids, _ in part])
            sims = np.stack([sims[:width] for _, sims in part])
            found.append(self._combine(mine, ids, sims, k))
        return found


class VectorProfileGenerator:
    """Language-model interest vector: recency-weighted mean of the user's item embeddings, searched
    in `index` (the item embeddings; exact or HNSW)."""

    name = "content_profile"

    def __init__(self, index: ItemIndex):
        self.index = index

    def _profile(self, request: Request) -> np.ndarray | None:
        """(dim,) unit interest vector of the request's latest 50 items, or None without any."""
        history = np.concatenate([request.history, request.recent])[-50:]
        vectors = self.index.vectors
        history = history[history < len(vectors)]
        if not len(history):
            return None
        profile = (vectors[history] * _recency_weights(len(history))[:, None]).sum(0)
        return profile / max(float(np.linalg.norm(profile)), 1e-12)

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.candidates_many([request], k)[0]

    def candidates_many(self, requests: list[Request], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        profiles = [self._profile(r) for r in requests]
        rows = [j for j, profile in enumerate(profiles) if profile is not None]
        found = [EMPTY] * len(requests)
        if rows:
            for j, (ids, scores) in zip(rows, self.index.search_each(np.stack([profiles[j] for j in rows]), k)):
                found[j] = (ids[scores > 0], scores[scores > 0])
        return found


class PopularityGenerator:
    """Popular items, overall / recent / within the request's locale (falls back to overall)."""

    def __init__(self, name: str, popularity: np.ndarray, by_locale: dict[str, np.ndarray] | None = None):
        self.name = name
        self.popularity = popularity.astype(np.float32)
        self.by_locale = by_locale or {}
        self._ranked: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}  # locale -> (depth, ids, scores): counts never change

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        locale = str(request.context.get("locale", ""))
        locale = locale if locale in self.by_locale else ""
        ranked = self._ranked.get(locale)
        if ranked is None or ranked[0] < k:
            counts = self.by_locale.get(locale, self.popularity)
            # Smooth with overall popularity so sparse locales still fill the list.
            scores = counts / max(float(counts.sum()), 1.0) + 0.1 * self.popularity / max(float(self.popularity.sum()), 1.0)
            depth = max(k, 1000)
            ranked = self._ranked[locale] = (depth, *_top(scores.astype(np.float32), depth))
        return ranked[1][:k], ranked[2][:k]
