"""The product graph: typed, weighted item-item edges, built from event tables and the catalog.

Edge types:
    co_view       items viewed in the same session
    co_buy        items carted/bought in the same session or by the same user within `window_days`
    similar       language-model neighbours (cosine of item embeddings)
    same_brand    same brand (weighted by the neighbour's popularity)
    same_category same leaf category (weighted by the neighbour's popularity)
    substitute    co-viewed, same leaf category, rarely bought together (an alternative to it)
    complement    bought together, different leaf category (goes with it)
Each type is an (n_items, n_items) CSR matrix holding the top `max_degree` edges per item.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

EDGE_TYPES = ("co_view", "co_buy", "similar", "same_brand", "same_category", "substitute", "complement")


class GraphConfig(BaseModel):
    max_degree: int = 50
    window_days: float = 7.0
    min_co_count: float = 1.0
    similar_k: int = 30


def top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties broken by column). Returns CSR of the same shape."""
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    rows = np.repeat(np.arange(m.shape[0]), counts)
    # Sort by (row, -value) and keep each row's first k.
    order = np.lexsort((-m.data, rows))
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], counts)
    keep = order[rank < k]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


def co_occurrence(groups: np.ndarray, items: np.ndarray, n_items: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
    """Items sharing a group (session, user-window): C = Sᵀ S with the diagonal removed.

    Each group's contribution is damped by 1/log2(1 + size) so huge sessions do not dominate."""
    if not len(items):
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    _, g = np.unique(groups, return_inverse=True)
    s = sp.csr_matrix((np.ones(len(items), np.float32), (g, items)), shape=(g.max() + 1, n_items))
    s.data[:] = 1.0  # presence, not counts
    s.sum_duplicates()
    s.data[:] = 1.0
    sizes = np.asarray(s.sum(axis=1)).ravel()
    damp = 1.0 / np.log2(1.0 + np.maximum(sizes, 1.0))
    if weights is not None:
        damp = damp * weights
    c = (s.T @ sp.diags(damp.astype(np.float32)) @ s).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    return c


class ProductGraph:
    """Typed item-item edges with `neighbours(item, type, k)`; plain npz files on disk."""

    def __init__(self, edges: dict[str, sp.csr_matrix], item_ids: list[str]):
        self.edges = edges
        self.item_ids = list(item_ids)
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}

    @classmethod
    def build(
        cls,
        item_ids: list[str],
        event_items: np.ndarray,
        event_sessions: np.ndarray,
        event_users: np.ndarray,
        event_types: np.ndarray,
        event_times: np.ndarray,
        item_brand: np.ndarray,
        item_category: np.ndarray,
        item_vectors: np.ndarray | None,
        config: GraphConfig | None = None,
    ) -> "ProductGraph":
        """Build every edge type. Event arrays are parallel (n_events,); item_* arrays are (n_items,)."""
        config = config or GraphConfig()
        n = len(item_ids)
        k = config.max_degree
        views = np.isin(event_types, ["view", "click"])
        buys = np.isin(event_types, ["add_to_cart", "purchase"])
        edges: dict[str, sp.csr_matrix] = {}

        co_view = co_occurrence(event_sessions[views], event_items[views], n)
        # Bought together: same session, or same user within a time window.
        window = np.floor(event_times[buys] / (config.window_days * 86400)).astype(np.int64)
        user_window = np.char.add(np.char.add(event_users[buys].astype(str), "#"), window.astype(str))
        co_buy = co_occurrence(event_sessions[buys], event_items[buys], n) + co_occurrence(user_window, event_items[buys], n)
        co_buy.data[co_buy.data < config.min_co_count * 0.5] = 0
        co_buy.eliminate_zeros()
        edges["co_view"] = top_per_row(co_view, k)
        edges["co_buy"] = top_per_row(co_buy, k)

        popularity = np.bincount(event_items, minlength=n).astype(np.float32)
        edges["same_brand"] = _same_group_edges(item_brand, popularity, k)
        edges["same_category"] = _same_group_edges(item_category, popularity, k)
        edges["similar"] = _similar_edges(item_vectors, config.similar_k) if item_vectors is not None else sp.csr_matrix((n, n), dtype=np.float32)

        # Substitutes: co-viewed within the same leaf category, discounted by being bought together.
        same_cat = _mask_same(co_view, item_category, equal=True)
        bought_too = co_buy.multiply(same_cat > 0)
        subst = (same_cat - bought_too).tocsr()
        subst.data[subst.data < 0] = 0
        edges["substitute"] = top_per_row(subst, k)
        # Complements: bought together across different leaf categories.
        edges["complement"] = top_per_row(_mask_same(co_buy, item_category, equal=False), k)
        return cls({name: m.astype(np.float32).tocsr() for name, m in edges.items()}, item_ids)

    def neighbours(self, item: str, edge_type: str, k: int = 10) -> list[tuple[str, float]]:
        """The k strongest neighbours of `item` over one edge type: [(item id, weight)], strongest first."""
        if edge_type not in self.edges:
            raise KeyError(f"unknown edge type {edge_type!r}; known: {', '.join(self.edges)}")
        i = self.item_index.get(item)
        if i is None or i >= self.edges[edge_type].shape[0]:
            return []
        row = self.edges[edge_type].getrow(i)
        order = np.argsort(-row.data, kind="stable")[:k]
        return [(self.item_ids[row.indices[j]], float(row.data[j])) for j in order]

    def add_items(self, item_ids: list[str], vectors: np.ndarray | None, all_vectors: np.ndarray | None, k: int = 30) -> None:
        """Incrementally give new products `similar` edges (and empty rows elsewhere), no rebuild.

        vectors: (len(item_ids), d) rows aligned with `item_ids`, which may repeat or hold known ids.
        """
        new = [i for i in dict.fromkeys(item_ids) if i not in self.item_index]
        if not new:
            return
        if vectors is not None:
            row_of = {item: r for r, item in enumerate(item_ids)}
            vectors = vectors[[row_of[i] for i in new]]
        for item in new:
            self.item_index[item] = len(self.item_ids)
            self.item_ids.append(item)
        n = len(self.item_ids)
        for name, m in self.edges.items():
            m.resize((n, n))
        if vectors is not None and all_vectors is not None and len(all_vectors) == n:
            sims = vectors @ all_vectors.T
            rows = np.array([self.item_index[i] for i in new])
            sims[np.arange(len(new)), rows] = -np.inf
            top = np.argsort(-sims, axis=1)[:, :k]
            add = sp.csr_matrix(
                (np.take_along_axis(sims, top, 1).ravel().clip(min=0), (np.repeat(rows, top.shape[1]), top.ravel())),
                shape=(n, n),
            )
            # Both directions, so existing items' "similar" lists show the new product too.
            self.edges["similar"] = (self.edges["similar"] + add + add.T).tocsr()

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name, m in self.edges.items():
            sp.save_npz(path / f"{name}.npz", m)
        (path / "graph.json").write_text(json.dumps({"format_version": 1, "edge_types": list(self.edges), "n_items": len(self.item_ids)}))
        np.save(path / "item_ids.npy", np.asarray(self.item_ids).astype(str))

    @classmethod
    def load(cls, path: Path) -> "ProductGraph":
        meta = json.loads((path / "graph.json").read_text())
        edges = {name: sp.load_npz(path / f"{name}.npz").tocsr() for name in meta["edge_types"]}
        return cls(edges, [str(x) for x in np.load(path / "item_ids.npy")])

    def stats(self) -> dict[str, int]:
        return {name: int(m.nnz) for name, m in self.edges.items()}


def _same_group_edges(groups: np.ndarray, popularity: np.ndarray, k: int) -> sp.csr_matrix:
    """Each item linked to the k most popular other items of its group (brand or category)."""
    n = len(groups)
    groups = np.asarray(groups).astype(str)
    valid = groups != ""
    _, g = np.unique(groups, return_inverse=True)
    rows, cols, vals = [], [], []
    order = np.lexsort((-popularity, g))
    g_sorted = g[order]
    bounds = np.flatnonzero(np.diff(g_sorted)) + 1
    for members in np.split(order, bounds):
        if not valid[members[0]] or len(members) < 2:
            continue
        top = members[: k + 1]
        # Every member points to the group's top items (minus itself).
        r = np.repeat(members, len(top))
        c = np.tile(top, len(members))
        keep = r != c
        rows.append(r[keep])
        cols.append(c[keep])
        vals.append(np.log1p(popularity[c[keep]]) + 1e-3)
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return top_per_row(m, k)


def _similar_edges(vectors: np.ndarray, k: int, batch: int = 2048) -> sp.csr_matrix:
    """Top-k cosine neighbours per item (exact, batched; vectors are L2-normalised)."""
    import faiss

    n = len(vectors)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, ids = index.search(x, min(k + 1, n))
    rows = np.repeat(np.arange(n), ids.shape[1])
    keep = (ids.ravel() != rows) & (ids.ravel() >= 0)
    return sp.csr_matrix((sims.ravel()[keep].clip(min=0), (rows[keep], ids.ravel()[keep])), shape=(n, n))


def _mask_same(m: sp.csr_matrix, groups: np.ndarray, equal: bool) -> sp.csr_matrix:
    """Keep the edges whose two ends are (equal=True) or are not (False) in the same group."""
    coo = m.tocoo()
    groups = np.asarray(groups).astype(str)
    same = groups[coo.row] == groups[coo.col]
    keep = same if equal else ~same
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=m.shape)
