"""Sparse helpers shared by the neighbourhood and content models (no dense n x n matrices).

`prune_rows` keeps the top-n entries of each CSR row; `weighted_history` turns a user's event
history into a (n_users, n_items) CSR of recency-weighted strengths; `similarity_blocks` computes
cosine / Pearson similarities between the columns of a sparse matrix block by block, pruning each
block to its top neighbours before the next one is computed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from shoprec.recommend.dataset import Interactions


def prune_rows(matrix: sp.csr_matrix, n: int | None) -> sp.csr_matrix:
    """Keep the n largest entries of every row of a CSR matrix (vectorised; ties by column order)."""
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    if n is None or matrix.nnz == 0:
        return matrix
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= n:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((-matrix.data, rows))
    rank_in_row = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    keep = order[rank_in_row < n]
    return sp.csr_matrix((matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape, dtype=matrix.dtype)


def recency_weights(history: Interactions, half_life: float | None) -> np.ndarray:
    """(n_events,) event weight times 0.5 ** (events after it in the user's history / half_life)."""
    weights = history.weights.astype(np.float32)
    if half_life is None or len(history) == 0:
        return weights
    order = np.argsort(history.users, kind="stable")
    counts = np.bincount(history.users, minlength=history.n_users)
    ends = np.cumsum(counts)
    position = np.empty(len(history), np.int64)
    position[order] = np.arange(len(history))
    # events after this one by the same user: file order within a user is time order
    after = ends[history.users] - 1 - position
    return weights * np.power(0.5, after / float(half_life)).astype(np.float32)


class WeightedHistoryCache:
    """Caches `weighted_history` for the last history object seen (valid, then test, then serve)."""

    def __init__(self) -> None:
        # (history, half_life, matrix) replaced whole: requests computing in parallel threads never
        # get a matrix made for another history.
        self._entry: tuple[Interactions, float | None, sp.csr_matrix] | None = None

    def get(self, history: Interactions, half_life: float | None) -> sp.csr_matrix:
        entry = self._entry
        if entry is not None and entry[0] is history and entry[1] == half_life:
            return entry[2]
        matrix = weighted_history(history, half_life)
        self._entry = (history, half_life, matrix)
        return matrix

    def clear(self) -> None:
        self._entry = None


def weighted_history(history: Interactions, half_life: float | None) -> sp.csr_matrix:
    """(n_users, n_items) CSR of summed (recency-weighted) event weights."""
    if half_life is None:
        return history.csr
    matrix = sp.csr_matrix(
        (recency_weights(history, half_life), (history.users, history.items)),
        shape=(history.n_users, history.n_items), dtype=np.float32,
    )
    matrix.sum_duplicates()
    return matrix


def column_similarity(
    matrix: sp.csr_matrix,
    kind: Literal["cosine", "pearson"] = "cosine",
    neighbours: int | None = 100,
    shrinkage: float = 0.0,
    block_size: int = 2048,
) -> sp.csr_matrix:
    """(n_cols, n_cols) CSR similarity between the columns of `matrix` (n_rows, n_cols), diagonal 0.

    cosine: x_i . x_j / (|x_i| |x_j| + shrinkage).
    pearson: correlation over all rows (zeros included), computed from sparse sums; only pairs that
    co-occur can correlate positively, so the negative rest is dropped. Each row keeps its top
    `neighbours` entries (None keeps all)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    n_rows, n_cols = matrix.shape
    csc = matrix.tocsc()
    sums = np.asarray(matrix.sum(axis=0)).ravel()
    squares = np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel()
    if kind == "cosine":
        scale = np.sqrt(squares)
        means = None
    elif kind == "pearson":
        means = sums / max(n_rows, 1)
        scale = np.sqrt(np.maximum(squares / max(n_rows, 1) - means ** 2, 0.0))
    else:
        raise ValueError(f"unknown similarity {kind!r} (cosine or pearson)")
    blocks = []
    transposed = csc.T.tocsr()
    for start in range(0, n_cols, block_size):
        stop = min(start + block_size, n_cols)
        dots = (transposed[start:stop] @ csc).tocoo()
        rows, cols = dots.row + start, dots.col
        if kind == "cosine":
            values = dots.data / (scale[rows] * scale[cols] + shrinkage)
        else:
            covariance = dots.data / n_rows - means[rows] * means[cols]
            values = covariance / (scale[rows] * scale[cols] + shrinkage)
        values = np.where((rows == cols) | ~np.isfinite(values) | (values <= 0), 0.0, values)
        block = sp.csr_matrix((values.astype(np.float32), (dots.row, cols)), shape=(stop - start, n_cols))
        blocks.append(prune_rows(block, neighbours))
    if not blocks:
        return sp.csr_matrix((n_cols, n_cols), dtype=np.float32)
    return sp.vstack(blocks, format="csr").astype(np.float32)
