"""Top-k items by inner product with a query vector: exact for small catalogs, faiss HNSW above.

Serving asks several models the same question per request — which items score highest against
one vector (a SASRec or ALS user state, a language-model interest profile, an item's own unit
vector for "similar") — and at 100,000 items the exact product plus a partition costs 2-6 ms per
model (`benchmarks/load/README.md`). Above `min_items` the build stores an HNSW graph per vector
table (`recommend/ann/<name>.faiss`); serving and the build's precompute step both search it, so
a precomputed list and the live path agree.
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

    `graph` is a faiss `IndexHNSWFlat` over the same rows, or None for exact search."""

    def __init__(self, vectors: np.ndarray, graph=None, ef_search: int = 256):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.graph = graph
        self.ef_search = ef_search

    @classmethod
    def build(cls, vectors: np.ndarray, min_items: int = 20_000, ef_search: int = 256,
              hnsw_m: int = 32, ef_construction: int = 80) -> "ItemIndex":
        """Exact below `min_items` rows, else an HNSW graph (efSearch is raised to k when k is larger)."""
        index = cls(vectors, ef_search=ef_search)
        if len(index.vectors) >= min_items:
            faiss = _faiss()
            graph = faiss.IndexHNSWFlat(index.vectors.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = ef_construction
            graph.add(index.vectors)
            index.graph = graph
        return index

    @property
    def approximate(self) -> bool:
        return self.graph is not None

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, dim) queries -> ids (q, k') int64 and scores (q, k') float32, best first, k' <= k.

        Rows the graph could not fill (fewer reachable items than k) are cut to the shortest row."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self.vectors))
        if k <= 0:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        if self.graph is None:
            return top_k(queries @ self.vectors.T, k)
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, k)
        scores, ids = self.graph.search(queries, k, params=params)
        filled = int((ids >= 0).sum(axis=1).min())
        return ids[:, :filled].astype(np.int64), scores[:, :filled]

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (new products); they get the next ids.

        Copy-on-write: requests search the index while an admin upsert runs in another thread, and
        faiss's add is not safe beside a search (its storage moves). Searches keep the objects they
        started with; the rows grow before the graph, so every id a graph returns has a row."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors = np.vstack([self.vectors, vectors])
        if self.graph is not None:
            graph = _faiss().clone_index(self.graph)
            graph.add(vectors)
            self.graph = graph

    def save(self, path: Path) -> None:
        """The graph only (`path`, a .faiss file): the rows come from the model that owns them."""
        if self.graph is not None:
            _faiss().write_index(self.graph, str(path))

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, ef_search: int = 256) -> "ItemIndex":
        """Rows `vectors` with the graph saved at `path` when it exists and matches them, else exact."""
        graph = None
        if Path(path).exists():
            graph = _faiss().read_index(str(path))
            if graph.ntotal != len(vectors) or graph.d != np.atleast_2d(vectors).shape[1]:
                graph = None  # stale: the table changed since it was built
        return cls(vectors, graph, ef_search=ef_search)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero): inner product becomes cosine."""
    vectors = np.asarray(vectors, np.float32)
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)
