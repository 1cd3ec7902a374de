"""Evaluation metrics, vectorised with numpy.

Rank metrics take 0-based ranks of one held-out target per case (np.inf when not ranked).

For a single held-out target per case (leave-one-out): HR@k = mean(rank < k),
NDCG@k = mean(1 / log2(rank + 2) for rank < k), MRR@k = mean(1 / (rank + 1) for rank < k).
List metrics take (n_users, k) recommended item matrices and each user's relevant items; then
come beyond-accuracy metrics (coverage, novelty, diversity, serendipity, popularity bias) and
rating / click-prediction metrics (RMSE, MAE, AUC, log loss).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hit_rate_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of cases whose target is ranked within the top k. ranks: (n,) 0-based."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(ranks < k)) if ranks.size else 0.0


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item per case (ideal DCG = 1). ranks: (n,) 0-based."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(np.minimum(ranks, k) + 2.0), 0.0)
    return float(gains.mean())


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank, truncated at k. ranks: (n,) 0-based."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return 0.0
    return float(np.where(ranks < k, 1.0 / (np.minimum(ranks, k) + 1.0), 0.0).mean())


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target in a (n, n_items) score matrix (ties count against it
    only when strictly greater, as the published protocol does). Returns (n,) int64."""
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores > target_scores[:, None]).sum(axis=1)


def dcg_at_k(gains_in_rank_order: np.ndarray, k: int) -> np.ndarray:
    """DCG@k per row of a (n, m) matrix of graded gains already in ranked order."""
    g = np.asarray(gains_in_rank_order, dtype=np.float64)[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, g.shape[1] + 2))
    return (g * discounts).sum(axis=1)


# ---------------------------------------------------------------------------------------------
# Top-k list metrics: `recommended` is an (n_users, k) matrix of item indices (-1 = empty slot),
# `relevant` the items each user actually wanted, as a list of iterables or an (n_users, n_items)
# sparse matrix (non-zero = relevant; for graded NDCG the value is the grade).
# Users with no relevant item are left out of the averages (their recall is undefined).
# ---------------------------------------------------------------------------------------------

def relevance_matrix(relevant, n_items: int | None = None, n_users: int | None = None) -> sp.csr_matrix:
    """(n_users, n_items) CSR of relevance grades from a sparse matrix, a list of iterables (grade 1)
    or a list of {item: grade} dicts."""
    if sp.issparse(relevant):
        return sp.csr_matrix(relevant, dtype=np.float64)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for user, items in enumerate(relevant):
        if isinstance(items, dict):
            keys = np.fromiter(items.keys(), dtype=np.int64, count=len(items))
            grades = np.fromiter(items.values(), dtype=np.float64, count=len(items))
        else:
            keys = np.unique(np.asarray(list(items), dtype=np.int64))
            grades = np.ones(len(keys))
        rows.append(np.full(len(keys), user, np.int64))
        cols.append(keys)
        vals.append(grades)
    n_rows = len(relevant) if n_users is None else n_users
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    if col.size and col.min() < 0:
        raise ValueError("relevant item indices must be >= 0")
    width = int(col.max()) + 1 if col.size else 0
    width = max(width, n_items or 0)
    m = sp.csr_matrix(
        (np.concatenate(vals) if vals else np.zeros(0), (np.concatenate(rows) if rows else np.zeros(0, np.int64), col)),
        shape=(n_rows, width),
    )
    m.sum_duplicates()
    return m


def _grades(recommended: np.ndarray, relevant, k: int | None = None) -> tuple[np.ndarray, sp.csr_matrix]:
    """(n, k) relevance grade of each recommended slot (0 when irrelevant or empty) and the CSR."""
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be an (n_users, k) matrix, got shape {recommended.shape}")
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        recommended = recommended[:, :k]
    n_items = int(recommended.max()) + 1 if recommended.size else 0
    rel = relevance_matrix(relevant, n_items=n_items, n_users=recommended.shape[0])
    if rel.shape[0] != recommended.shape[0]:
        raise ValueError(f"recommended has {recommended.shape[0]} rows but relevant has {rel.shape[0]}")
    valid = (recommended >= 0) & (recommended < rel.shape[1])
    rows = np.broadcast_to(np.arange(recommended.shape[0])[:, None], recommended.shape)
    grades = np.zeros(recommended.shape, dtype=np.float64)
    if valid.any():
        grades[valid] = np.asarray(rel[rows[valid], recommended[valid]]).ravel()
    # A duplicate id in one list earns its grade once (the first time it is shown).
    if recommended.shape[1] > 1:
        order = np.argsort(recommended, axis=1, kind="stable")
        sorted_ids = np.take_along_axis(recommended, order, axis=1)
        dup_sorted = np.zeros_like(sorted_ids, dtype=bool)
        dup_sorted[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
        dup = np.zeros_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        grades[dup] = 0.0
    return grades, rel


def _n_relevant(rel: sp.csr_matrix) -> np.ndarray:
    return np.diff(rel.indptr)


def _mean_over_users(values: np.ndarray, n_rel: np.ndarray) -> float:
    mask = n_rel > 0
    return float(values[mask].mean()) if mask.any() else 0.0


def precision_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Mean share of the k slots holding a relevant item. recommended: (n, >=k)."""
    grades, rel = _grades(recommended, relevant, k)
    return _mean_over_users((grades > 0).sum(axis=1) / k, _n_relevant(rel))


def recall_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Mean share of each user's relevant items found in the top k."""
    grades, rel = _grades(recommended, relevant, k)
    n_rel = _n_relevant(rel)
    return _mean_over_users((grades > 0).sum(axis=1) / np.maximum(n_rel, 1), n_rel)


def f1_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Mean per-user harmonic mean of precision@k and recall@k (0 when both are 0)."""
    grades, rel = _grades(recommended, relevant, k)
    n_rel = _n_relevant(rel)
    hits = (grades > 0).sum(axis=1)
    p, r = hits / k, hits / np.maximum(n_rel, 1)
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return _mean_over_users(f1, n_rel)


def list_hit_rate_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Share of users with at least one relevant item in the top k."""
    grades, rel = _grades(recommended, relevant, k)
    return _mean_over_users((grades > 0).any(axis=1).astype(np.float64), _n_relevant(rel))


def list_mrr_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Mean reciprocal rank of the first relevant item in the top k (0 when none)."""
    grades, rel = _grades(recommended, relevant, k)
    hit = grades > 0
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    rr = np.zeros(len(first))
    rr[first >= 0] = 1.0 / (first[first >= 0] + 1.0)
    return _mean_over_users(rr, _n_relevant(rel))


def map_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Mean average precision@k: sum of precision@i at each hit i, over min(|relevant|, k)."""
    grades, rel = _grades(recommended, relevant, k)
    hit = (grades > 0).astype(np.float64)
    precision_at_i = np.cumsum(hit, axis=1) / np.arange(1, hit.shape[1] + 1)
    n_rel = _n_relevant(rel)
    ap = (precision_at_i * hit).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1)
    return _mean_over_users(ap, n_rel)


def _ideal_grades(rel: sp.csr_matrix, k: int) -> np.ndarray:
    """(n_users, k) each user's grades sorted best first (zero padded): the ideal ranking."""
    n_rel = _n_relevant(rel)
    rows = np.repeat(np.arange(rel.shape[0]), n_rel)
    order = np.lexsort((-rel.data, rows))
    position = np.arange(len(rows)) - np.repeat(rel.indptr[:-1], n_rel)
    keep = position < k
    ideal = np.zeros((rel.shape[0], k), dtype=np.float64)
    ideal[rows[order][keep], position[keep]] = rel.data[order][keep]
    return ideal


def graded_ndcg_at_k(recommended: np.ndarray, relevant, k: int, gain: str = "exponential") -> float:
    """NDCG@k with graded relevance (search judgements): gain 2^g - 1 ("exponential") or g ("linear").

    `relevant`: (n_users, n_items) sparse grade matrix or a list of {item: grade} dicts (grades >= 0)."""
    if gain not in ("exponential", "linear"):
        raise ValueError(f"gain must be 'exponential' or 'linear', got {gain!r}")
    grades, rel = _grades(recommended, relevant, k)
    if rel.data.size and rel.data.min() < 0:
        raise ValueError("relevance grades must be >= 0")
    transform = (lambda g: np.power(2.0, g) - 1.0) if gain == "exponential" else (lambda g: g)
    dcg = dcg_at_k(transform(grades), k)
    ideal = dcg_at_k(transform(_ideal_grades(rel, k)), k)
    ndcg = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return _mean_over_users(ndcg, (ideal > 0).astype(np.int64))


def list_ndcg_at_k(recommended: np.ndarray, relevant, k: int) -> float:
    """Binary-relevance NDCG@k (every relevant item has gain 1)."""
    grades, rel = _grades(recommended, relevant, k)
    dcg = dcg_at_k((grades > 0).astype(np.float64), k)
    n_rel = _n_relevant(rel)
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = discounts[np.minimum(n_rel, k)]
    ndcg = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return _mean_over_users(ndcg, n_rel)


def ranking_metrics(recommended: np.ndarray, relevant, ks=(10, 20)) -> dict[str, float]:
    """{"precision10", "recall10", "f1_10", "hr10", "ndcg10", "mrr10", "map10", ...} for each k."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"precision{k}"] = precision_at_k(recommended, relevant, k)
        out[f"recall{k}"] = recall_at_k(recommended, relevant, k)
        out[f"f1_{k}"] = f1_at_k(recommended, relevant, k)
        out[f"hr{k}"] = list_hit_rate_at_k(recommended, relevant, k)
        out[f"ndcg{k}"] = list_ndcg_at_k(recommended, relevant, k)
        out[f"mrr{k}"] = list_mrr_at_k(recommended, relevant, k)
        out[f"map{k}"] = map_at_k(recommended, relevant, k)
    return out


# -- beyond accuracy ---------------------------------------------------------------------------

def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalog appearing in at least one list. recommended: (n, k), -1 = empty."""
    ids = np.asarray(recommended, dtype=np.int64).ravel()
    ids = ids[(ids >= 0) & (ids < n_items)]
    return float(np.unique(ids).size / n_items) if n_items else 0.0


def novelty(recommended: np.ndarray, item_popularity: np.ndarray, n_users: int | None = None) -> float:
    """Mean self-information -log2 p(i) of recommended items, p(i) = popularity / n_users
    (default: popularity / total). Unseen items get p = 1 / denominator (the most novel)."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    denominator = float(n_users) if n_users else float(pop.sum())
    if denominator <= 0:
        raise ValueError("novelty needs a positive popularity total or n_users")
    ids = np.asarray(recommended, dtype=np.int64).ravel()
    ids = ids[ids >= 0]
    if not ids.size:
        return 0.0
    p = np.clip(pop[ids] / denominator, 1.0 / denominator, 1.0)
    return float(-np.log2(p).mean())


def intra_list_diversity(recommended: np.ndarray, item_vectors: np.ndarray) -> float:
    """Mean over lists of 1 - mean pairwise cosine similarity of the items' vectors.

    recommended: (n, k) with k >= 2 (no empty slots); item_vectors: (n_items, d)."""
    ids = np.asarray(recommended, dtype=np.int64)
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise ValueError("intra_list_diversity needs lists of at least two items")
    vectors = np.asarray(item_vectors, dtype=np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    v = unit[ids]  # (n, k, d)
    gram = np.einsum("nkd,njd->nkj", v, v)
    k = ids.shape[1]
    off_diagonal_mean = (gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)) / (k * (k - 1))
    return float((1.0 - off_diagonal_mean).mean())


def serendipity(recommended: np.ndarray, relevant, expected: np.ndarray, k: int | None = None) -> float:
    """Mean share of the k slots that are relevant and not in the expected (obvious) list.

    expected: (m,) items a popularity baseline shows everyone, or (n, m) per user."""
    grades, rel = _grades(recommended, relevant, k)
    ids = np.asarray(recommended, dtype=np.int64)[:, :grades.shape[1]]
    expected = np.asarray(expected, dtype=np.int64)
    if expected.ndim == 1:
        obvious = np.isin(ids, expected)
    else:
        if expected.shape[0] != ids.shape[0]:
            raise ValueError("per-user expected lists must have one row per user")
        obvious = (ids[:, :, None] == expected[:, None, :]).any(axis=2)
    unexpected_hits = ((grades > 0) & ~obvious).sum(axis=1) / grades.shape[1]
    return _mean_over_users(unexpected_hits, _n_relevant(rel))


def popularity_percentile(recommended: np.ndarray, item_popularity: np.ndarray) -> float:
    """Mean popularity percentile (0 = least, 1 = most popular item) of recommended items."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    # Average rank for ties, scaled to [0, 1].
    from scipy.stats import rankdata

    percentile = (rankdata(pop, method="average") - 1) / max(len(pop) - 1, 1)
    ids = np.asarray(recommended, dtype=np.int64).ravel()
    ids = ids[ids >= 0]
    return float(percentile[ids].mean()) if ids.size else 0.0


def gini_index(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 = perfectly even, -> 1 = all mass on one."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0 or x.sum() == 0:
        return 0.0
    if x[0] < 0:
        raise ValueError("gini_index needs non-negative values")
    n = x.size
    index = np.arange(1, n + 1)
    return float((2 * index - n - 1).dot(x) / (n * x.sum()))


def recommendation_gini(recommended: np.ndarray, n_items: int) -> float:
    """Gini of how often each catalog item is recommended (popularity concentration of the lists)."""
    ids = np.asarray(recommended, dtype=np.int64).ravel()
    ids = ids[(ids >= 0) & (ids < n_items)]
    return gini_index(np.bincount(ids, minlength=n_items))


# -- rating and click prediction -------------------------------------------------------------

def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error of (n,) predictions."""
    t, p = _paired(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error of (n,) predictions."""
    t, p = _paired(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC = P(score of a random positive > a random negative), ties count 1/2 (Mann-Whitney)."""
    from scipy.stats import rankdata

    y, s = _paired(labels, scores)
    positives = y > 0
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative label")
    ranks = rankdata(s, method="average")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy; probabilities clipped to [eps, 1 - eps]."""
    y, p = _paired(labels, probabilities)
    if ((y != 0) & (y != 1)).any():
        raise ValueError("log_loss labels must be 0 or 1")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"arrays differ in length: {a.size} vs {b.size}")
    if not a.size:
        raise ValueError("empty input")
    return a, b
