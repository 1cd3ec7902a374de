"""Top-k items by inner product with a query vector: exact for small catalogs, faiss HNSW above.

Serving asks several models the same question per request — which items score highest against
one vector (a SASRec or ALS user state, a language-model interest profile, an item's own unit
vector for "similar") — and at 100,000 items the exact product plus a partition costs 2-6 ms per
model (`benchmarks/load/README.md`). Above `min_items` the build stores an HNSW graph per vector
table (`recommend/ann/<name>.faiss`); serving and the build's precompute step both search it, so
a precomputed list and the live path agree.

A graph searches either raw inner products, or L2 distances after the standard reduction (each
row x gets an extra coordinate sqrt(M^2 - |x|^2), M the largest row norm, the query a 0, so the
L2 order is the inner-product order). Neither is best for every table: at 100,000 items SASRec's
table reached recall@200 0.82 raw and 0.96 reduced, ALS's 0.97 raw and 0.65 reduced (its norms
spread widely). The build measures both on un-normalised tables and keeps the better.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shoprec.recommend.base import top_k


def _faiss():
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - faiss is a core dependency
        raise ImportError("approximate item search needs faiss: pip install faiss-cpu") from err
    return faiss


class ItemIndex:
    """(n_items, dim) float32 item table answering `search(queries, k)` by inner product.

    `graph` is a faiss `IndexHNSWFlat`, over the rows (inner product) or over the augmented rows
    (L2, `dim + 1` wide), or None for exact search."""

    def __init__(self, vectors: np.ndarray, graph=None, ef_search: int = 256):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.graph = graph
        self.ef_search = ef_search
        self.max_norm = float(np.linalg.norm(self.vectors, axis=1).max(initial=0.0))

    @property
    def reduced(self) -> bool:
        """Whether the graph searches L2 over augmented rows (else raw inner products)."""
        return self.graph is not None and self.graph.d == self.vectors.shape[1] + 1

    def _augmented(self, rows: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, dim + 1): the extra coordinate makes every row's norm `max_norm`
        (rows added later beyond it get 0 there, a slight approximation)."""
        extra = np.sqrt(np.maximum(self.max_norm ** 2 - (rows.astype(np.float64) ** 2).sum(1), 0.0))
        return np.ascontiguousarray(np.hstack([rows, extra[:, None]]), dtype=np.float32)

    @classmethod
    def build(cls, vectors: np.ndarray, min_items: int = 20_000, ef_search: int = 256,
              hnsw_m: int = 32, ef_construction: int = 80, reduce: bool = False) -> "ItemIndex":
        """Exact below `min_items` rows, else an HNSW graph (efSearch is raised to k when k is larger);
        `reduce`: search L2 over augmented rows instead of raw inner products."""
        index = cls(vectors, ef_search=ef_search)
        if len(index.vectors) >= min_items:
            faiss = _faiss()
            dim = index.vectors.shape[1]
            if reduce:
                graph = faiss.IndexHNSWFlat(dim + 1, hnsw_m, faiss.METRIC_L2)
            else:
                graph = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = ef_construction
            graph.add(index._augmented(index.vectors) if reduce else index.vectors)
            index.graph = graph
        return index

    @property
    def approximate(self) -> bool:
        return self.graph is not None

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, dim) queries -> ids (q, k') int64 and inner products (q, k') float32, best first, k' <= k.

        Rows the graph could not fill (fewer reachable items than k) are cut to the shortest row."""
        ids, scores, filled = self._search(queries, k)
        width = int(filled.min()) if len(filled) else 0
        return ids[:, :width], scores[:, :width]

    def search_each(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """`search` of many queries at once, each row cut to its own fill: row j is what
        `search(queries[j:j + 1], k)` returns, as (ids (k',), scores (k',))."""
        ids, scores, filled = self._search(queries, k)
        return [(ids[j, :n], scores[j, :n]) for j, n in enumerate(filled.tolist())]

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids (q, k), scores (q, k), each row best first over its (q,) `filled` leading entries."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self.vectors))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.int64), empty.astype(np.float32), np.zeros(len(queries), np.int64)
        graph = self.graph  # one object for the whole search (add swaps in a new one)
        if graph is None:
            return (*top_k(queries @ self.vectors.T, k), np.full(len(queries), k, np.int64))
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, k)
        if graph.d == queries.shape[1] + 1:
            _, ids = graph.search(np.hstack([queries, np.zeros((len(queries), 1), np.float32)]), k, params=params)
        else:
            _, ids = graph.search(queries, k, params=params)
        ids = ids.astype(np.int64)
        found = ids >= 0  # the graph fills each row from the left
        scores = np.where(found, np.einsum("qd,qkd->qk", queries, self.vectors[np.where(found, ids, 0)]), -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")
        return (np.take_along_axis(ids, order, 1), np.take_along_axis(scores, order, 1).astype(np.float32),
                found.sum(axis=1))

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (new products); they get the next ids.

        Copy-on-write: requests search the index while an admin upsert runs in another thread, and
        faiss's add is not safe beside a search (its storage moves). Searches keep the objects they
        started with; the rows grow before the graph, so every id a graph returns has a row."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors = np.vstack([self.vectors, vectors])
        if self.graph is not None:
            reduced = self.reduced
            graph = _faiss().clone_index(self.graph)
            graph.add(self._augmented(vectors) if reduced else vectors)
            self.graph = graph

    def save(self, path: Path) -> None:
        """The graph only (`path`, a .faiss file): the rows come from the model that owns them."""
        if self.graph is not None:
            _faiss().write_index(self.graph, str(path))

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, ef_search: int = 256) -> "ItemIndex":
        """Rows `vectors` with the graph saved at `path` when it exists and matches them, else exact."""
        index = cls(vectors, ef_search=ef_search)
        if Path(path).exists():
            graph = _faiss().read_index(str(path))
            # stale (the table changed since): search exactly
            if graph.ntotal == len(index.vectors) and graph.d in (index.vectors.shape[1], index.vectors.shape[1] + 1):
                index.graph = graph
        return index
