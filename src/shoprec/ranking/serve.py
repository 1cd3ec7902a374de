"""Serve-time personalisation: product-graph generators, user profiles and the learned ranker."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.profiles.graph import ProductGraph
from shoprec.profiles.users import UserProfiles, price_band
from shoprec.ranking.features import Contributions, ItemStats, candidate_features
from shoprec.ranking.ltr import LTRRanker
from shoprec.recommend.generators import EMPTY, Request, _recency_weights

RANK_TOP = 200


class GraphGenerator:
    """Neighbours over one product-graph edge type, seeded by the item page / cart, else this session."""

    def __init__(self, edge_type: str, graph: ProductGraph):
        self.name = f"graph:{edge_type}"
        self.edge_type = edge_type
        self.graph = graph

    def candidates(self, request: Request, k: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.graph.edges[self.edge_type]
        seeds = request.seeds if len(request.seeds) else request.recent[-10:]
        seeds = seeds[seeds < m.shape[0]]
        if not len(seeds):
            return EMPTY
        weights = np.ones(len(seeds), np.float32) if len(request.seeds) else _recency_weights(len(seeds))
        # The seeds' rows only, summed per neighbour: a dense row over a 100,000-item catalog and its
        # top-k cost ~0.3 ms a generator, per request.
        rows = m[seeds]
        neighbours, inverse = np.unique(rows.indices, return_inverse=True)
        scores = np.bincount(inverse, weights=rows.data * np.repeat(weights, np.diff(rows.indptr)),
                             minlength=len(neighbours)).astype(np.float32)
        keep = (scores > 0) & ~np.isin(neighbours, seeds)
        neighbours, scores = neighbours[keep].astype(np.int64), scores[keep]
        order = np.argsort(-scores, kind="stable")[:k]
        return neighbours[order], scores[order]


class Personalisation:
    """Everything under `personalisation/` of an artifact version."""

    def __init__(self, path: Path, graph: ProductGraph, profiles: UserProfiles, stats: ItemStats,
                 ranker: LTRRanker | None, served: Any):
        self.path = path
        self.graph = graph
        self.profiles = profiles
        self.stats = stats
        self.ranker = ranker
        # Weak: the served version owns this object, and a reference cycle would keep a retired
        # version alive until a full garbage collection (seconds of paused serving at 100,000 items).
        self._served = weakref.ref(served)

    @property
    def served(self) -> Any:
        return self._served()

    @classmethod
    def load(cls, path: Path, served: Any) -> "Personalisation":
        ranker = LTRRanker.load(path / "ranker") if (path / "ranker" / "ranker.txt").exists() else None
        return cls(path, ProductGraph.load(path / "graph"), UserProfiles.load(path / "profiles"),
                   ItemStats.load(path / "item_stats.npz"), ranker, served)

    def generators(self) -> dict[str, GraphGenerator]:
        return {f"graph:{t}": GraphGenerator(t, self.graph) for t in ("co_buy", "co_view", "complement", "substitute", "similar")}

    def profile(self, user: str) -> dict[str, Any]:
        return self.profiles.get(user)

    def forget(self, user: str) -> None:
        self.profiles.forget(user)

    def add_items(self, item_ids: list[str], vectors: np.ndarray | None, all_vectors: np.ndarray | None) -> None:
        self.graph.add_items(item_ids, vectors, all_vectors)
        self.stats.extend(len(self.graph.item_ids))

    def features(self, req: Request, candidates: np.ndarray, contributions: Contributions,
                 user: str | None) -> np.ndarray:
        """Feature matrix for candidates of one request (see ranking.features.FEATURE_NAMES)."""
        i = self.profiles.user_index.get(user) if user else None
        affinity = interest = None
        self.stats.extend(max(int(candidates.max(initial=0)) + 1, len(self.stats.popularity)))
        if i is not None:
            affinity = {
                "category": self.profiles.affinity(i, "category", self.stats.category[candidates]),
                "brand": self.profiles.affinity(i, "brand", self.stats.brand[candidates]),
                "price_band": self.profiles.affinity(i, "price_band", price_band(self.stats.price[candidates])),
            }
            if self.profiles.vectors is not None:
                interest = self.profiles.vectors[i].astype(np.float32)
        return candidate_features(candidates, contributions, self.stats, affinity, interest,
                                  self.served.item_vectors, len(req.history), len(req.recent), req.context)

    def rank(self, req: Request, candidates: np.ndarray, contributions: Contributions,
             user: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Re-order the top candidates by the learned ranker: (candidates, ranker scores or None)."""
        if self.ranker is None or not len(candidates):
            return candidates, None
        top = candidates[:RANK_TOP]
        scores = self.ranker.predict(self.features(req, top, contributions, user))
        order = np.argsort(-scores, kind="stable")
        return np.concatenate([top[order], candidates[RANK_TOP:]]), scores[order]
