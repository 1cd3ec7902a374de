"""`evaluate(model, split, protocol)`: one offline evaluation for any `Recommender`.

Protocols:
- "full": rank every item (the user's test-time history removed) and score the top-k lists
  against the user's test items (precision, recall, F1, HR, NDCG, MRR, MAP, coverage, novelty).
- "sampled": rank each test item among `n_negatives` random items the user never touched.
  Sampled figures are optimistic and not comparable with full ranking, so every key carries the
  prefix "sampled{N}_" and the result says `"protocol": "sampled"`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shoprec.evaluation import metrics as m
from shoprec.evaluation.splits import Split

if TYPE_CHECKING:
    from shoprec.recommend.base import Recommender

PROTOCOLS = ("full", "sampled")


def _masked_scores(model: "Recommender", users: np.ndarray, split: Split) -> np.ndarray:
    scores = np.array(model.score(users, split.history), dtype=np.float64)
    expected = (len(users), split.history.n_items)
    if scores.shape != expected:
        raise ValueError(f"{model.name}.score returned shape {scores.shape}, expected {expected}")
    rows, cols = split.history.seen[users].nonzero()
    scores[rows, cols] = -np.inf
    return scores


def full_ranking_lists(model: "Recommender", split: Split, users: np.ndarray, k: int, batch_size: int = 512) -> np.ndarray:
    """(len(users), k) top-k item indices over all items, test-time history excluded."""
    from shoprec.recommend.base import top_k

    out = np.empty((len(users), min(k, split.history.n_items)), dtype=np.int64)
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        ids, _ = top_k(_masked_scores(model, batch, split), out.shape[1])
        out[start:start + len(batch)] = ids
    return out


def sample_negatives(forbidden, pair_users: np.ndarray, n_items: int, n_negatives: int, rng: np.random.Generator) -> np.ndarray:
    """(n_pairs, n_negatives) random items outside each pair's user's `forbidden` row (CSR), by
    rejection: redraw only the clashing cells (few rounds when users touch a small share of items)."""
    negatives = rng.integers(0, n_items, size=(len(pair_users), n_negatives))
    rows = np.broadcast_to(pair_users[:, None], negatives.shape)
    for _ in range(100):
        clash = np.asarray(forbidden[rows.ravel(), negatives.ravel()]).reshape(negatives.shape) > 0
        if not clash.any():
            return negatives
        negatives[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    raise ValueError("could not sample negatives: some users have interacted with almost every item")


def sampled_ranks(model: "Recommender", split: Split, n_negatives: int = 100, seed: int = 0,
                  users: np.ndarray | None = None, batch_size: int = 512) -> np.ndarray:
    """0-based rank of each (user, test item) pair among `n_negatives` sampled unseen items. (n_pairs,)"""
    test = split.test.seen
    forbidden = (split.history.seen + test).tocsr()
    if users is None:
        users = np.flatnonzero(np.diff(test.indptr) > 0)
    counts = np.diff(test.indptr)[users]
    pair_users = np.repeat(users, counts)
    pair_items = np.concatenate([test.indices[test.indptr[u]:test.indptr[u + 1]] for u in users]) if len(users) else np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    negatives = sample_negatives(forbidden, pair_users, split.history.n_items, n_negatives, rng)
    ranks = np.empty(len(pair_users), dtype=np.int64)
    pair_start = np.concatenate([[0], np.cumsum(counts)])
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        scores = _masked_scores(model, batch, split)
        lo, hi = pair_start[start], pair_start[start + len(batch)]
        local = np.repeat(np.arange(len(batch)), counts[start:start + len(batch)])
        target = scores[local, pair_items[lo:hi]]
        negative_scores = scores[local[:, None], negatives[lo:hi]]
        # A target the model cannot score (in history: -inf) is a miss, ranked behind every negative.
        ranks[lo:hi] = np.where(np.isneginf(target), n_negatives, (negative_scores > target[:, None]).sum(axis=1))
    return ranks


def evaluate(
    model: "Recommender",
    split: Split,
    protocol: str = "full",
    ks: Sequence[int] = (10, 20),
    n_negatives: int = 100,
    seed: int = 0,
    max_users: int | None = None,
    batch_size: int = 512,
) -> dict[str, Any]:
    """Metrics of a fitted model on `split.test` given `split.history`.

    Returns {"protocol", "split", "n_users", "seconds", metric: value ...}; with protocol="sampled"
    the metric keys are "sampled{n_negatives}_hr10" etc."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {PROTOCOLS}")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    started = time.perf_counter()
    users, relevant = split.test_relevant()
    if max_users is not None and len(users) > max_users:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, relevant = users[pick], [relevant[i] for i in pick]
    result: dict[str, Any] = {"protocol": protocol, "split": split.name, "model": getattr(model, "name", type(model).__name__),
                              "n_users": int(len(users))}
    if protocol == "full":
        lists = full_ranking_lists(model, split, users, max(ks), batch_size)
        result.update(m.ranking_metrics(lists, relevant, ks))
        popularity = split.train.item_popularity()
        for k in ks:
            result[f"coverage{k}"] = m.catalog_coverage(lists[:, :k], split.history.n_items)
            if popularity.sum() > 0:
                result[f"novelty{k}"] = m.novelty(lists[:, :k], popularity, n_users=split.train.n_users)
    else:
        ranks = sampled_ranks(model, split, n_negatives, seed, users, batch_size)
        prefix = f"sampled{n_negatives}_"
        result["n_negatives"] = n_negatives
        result["n_cases"] = int(len(ranks))
        for k in ks:
            result[f"{prefix}hr{k}"] = m.hit_rate_at_k(ranks, k)
            result[f"{prefix}ndcg{k}"] = m.ndcg_at_k(ranks, k)
            result[f"{prefix}mrr{k}"] = m.mrr_at_k(ranks, k)
    result["seconds"] = time.perf_counter() - started
    return result
