"""Build step for personalisation: product graph, user profiles, item stats and the learned ranker.

Leakage control: the build holds out each user's last interaction (`holdout_last`); models and a
training copy of the graph/profiles see only the rest, the ranker learns to put the held-out item
on top, and its validation NDCG is recorded against plain fusion in the manifest.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import BaseModel

from shoprec.profiles.graph import GraphConfig, ProductGraph
from shoprec.profiles.users import UserProfiles
from shoprec.ranking.features import FEATURE_NAMES, ItemStats
from shoprec.ranking.ltr import LTRConfig, LTRRanker, groups_from_ids
from shoprec.recommend.dataset import Interactions
from shoprec.recommend.generators import Request

SESSION_GAP_S = 30 * 60
BUY_WEIGHT = 3.0  # add_to_cart and purchase (schemas.EVENT_WEIGHTS) count as buying signals


class RankerTrainingConfig(BaseModel):
    max_requests: int = 3000
    candidates: int = 100
    recent_items: int = 3
    valid_share: float = 0.2
    min_history: int = 3
    scenario: str = "home"
    ltr: LTRConfig = LTRConfig()


def holdout_last(data: Interactions, min_len: int = 3) -> np.ndarray:
    """(n_events,) bool: each user's last event, for users with at least `min_len` events."""
    order = np.argsort(data.users, kind="stable")
    counts = np.bincount(data.users, minlength=data.n_users)
    ends = np.cumsum(counts) - 1
    mask = np.zeros(len(data), bool)
    eligible = counts >= min_len
    mask[order[ends[eligible]]] = True
    return mask


def subset(data: Interactions, keep: np.ndarray) -> Interactions:
    """The same index space with only the kept events."""
    return Interactions(
        n_users=data.n_users, n_items=data.n_items, users=data.users[keep], items=data.items[keep],
        weights=data.weights[keep], timestamps=data.timestamps[keep], user_ids=data.user_ids,
        item_ids=data.item_ids, item_attributes=data.item_attributes, item_texts=data.item_texts, meta=dict(data.meta),
    )


def sessions(users: np.ndarray, timestamps: np.ndarray, gap_s: float = SESSION_GAP_S) -> np.ndarray:
    """Session id per event: a new session starts at a new user or after `gap_s` of inactivity."""
    order = np.lexsort((timestamps, users))
    u, t = users[order], timestamps[order]
    new = np.ones(len(u), bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap_s)
    ids = np.empty(len(u), np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def item_arrays(products, item_ids: list[str]) -> dict[str, np.ndarray]:
    """Catalog columns aligned with the model item index (unknown items get neutral values)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(item_ids)
    pos = pc.index_in(pa.array(item_ids, pa.string()), value_set=products.column("id")).to_numpy(zero_copy_only=False)
    found = ~np.isnan(pos.astype(np.float64)) if pos.dtype == object else np.ones(n, bool)
    pos = np.nan_to_num(pos.astype(np.float64), nan=-1).astype(np.int64)
    found &= pos >= 0

    def column(name: str, fill, dtype) -> np.ndarray:
        values = np.array(products.column(name).to_pylist(), dtype=object)
        out = np.full(n, fill, dtype=dtype)
        if found.any():
            picked = values[pos[found]]
            picked = np.array([fill if v is None else v for v in picked], dtype=dtype)
            out[found] = picked
        return out

    categories = column("category", "[]", object)
    leaf = np.array([(json.loads(c) or [""])[-1] if isinstance(c, str) else "" for c in categories], dtype=object)
    created = column("created_at", None, object)
    created_s = np.array([_epoch(c) for c in created], np.float64)
    return {
        "category": leaf.astype(str), "brand": column("brand", "", object).astype(str),
        "price": column("price", np.nan, np.float64), "rating": column("rating", np.nan, np.float64),
        "available": column("available", True, bool), "language": column("language", "", object).astype(str),
        "created": created_s,
    }


def _epoch(value: Any) -> float:
    if value is None:
        return np.nan
    if hasattr(value, "timestamp"):
        return value.timestamp()
    from shoprec.data.schemas import to_utc

    try:
        return to_utc(value).timestamp()
    except (ValueError, TypeError):
        return np.nan


def graph_and_profiles(data: Interactions, items: dict[str, np.ndarray], item_vectors: np.ndarray | None) -> tuple[ProductGraph, UserProfiles]:
    """Both from interaction arrays (sessions by inactivity gap; buys = cart/purchase weights)."""
    session = sessions(data.users, data.timestamps)
    types = np.where(data.weights >= BUY_WEIGHT, "purchase", "view")
    graph = ProductGraph.build(
        list(np.asarray(data.item_ids).astype(str)), data.items, session, data.users, types, data.timestamps,
        items["brand"], items["category"], item_vectors, GraphConfig(),
    )
    profiles = UserProfiles.build(
        np.asarray(data.user_ids).astype(str), data.users, data.items, data.weights, data.timestamps,
        items["category"], items["brand"], items["price"], item_vectors,
    )
    return graph, profiles


def build_personalisation(version, data: Interactions, train: Interactions, holdout: np.ndarray, products,
                          item_vectors: np.ndarray | None, settings, config: RankerTrainingConfig | None = None) -> None:
    """Write personalisation/ (graph, profiles, item stats, ranker) into the version being built."""
    config = config or RankerTrainingConfig()
    root = version.path / "personalisation"
    root.mkdir()
    item_ids = list(np.asarray(data.item_ids).astype(str))
    items = item_arrays(products, item_ids)
    now = float(data.timestamps.max()) if len(data) else 0.0
    ts = data.timestamps
    stats = ItemStats(
        popularity=data.item_popularity(),
        popularity_recent=np.bincount(data.items[ts >= now - 7 * 86400], minlength=data.n_items).astype(np.float32),
        price=items["price"], rating=items["rating"], created=np.nan_to_num(items["created"], nan=now),
        available=items["available"], category=items["category"], brand=items["brand"], language=items["language"], now=now,
    )
    stats.save(root / "item_stats.npz")

    with version.step("graph_and_profiles") as rec:
        graph, profiles = graph_and_profiles(data, items, item_vectors)
        graph.save(root / "graph")
        profiles.save(root / "profiles")
        rec.update(edges=graph.stats(), users=len(profiles.user_ids))

    with version.step("ranker") as rec:
        rec.update(train_ranker(version.path, train, data, holdout, items, stats, item_vectors, root / "ranker", config))


def train_ranker(version_path, train: Interactions, data: Interactions, holdout: np.ndarray, items, stats: ItemStats,
                 item_vectors, out_dir, config: RankerTrainingConfig) -> dict[str, Any]:
    """Fit LambdaRank on held-out next items; returns the manifest record (sizes, NDCG vs fusion, importance)."""
    from shoprec.engine import Served, rank_candidates
    from shoprec.ranking.serve import GraphGenerator, Personalisation
    from shoprec.recommend.scenarios import SCENARIOS

    targets_users = data.users[holdout]
    targets = data.items[holdout]
    if len(targets) < 50:
        return {"skipped": f"only {len(targets)} held-out next items"}
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(targets))[: config.max_requests]
    graph_t, profiles_t = graph_and_profiles(train, items, item_vectors)
    served = Served.load(version_path)  # models already fitted on `train`
    served.personalisation = None  # the full-data graph/profiles must not leak into training features
    pers = Personalisation(version_path, graph_t, profiles_t, stats, None, served)
    served.generators.update(pers.generators())
    spec = SCENARIOS[config.scenario]
    train_sequences = train.sequences
    user_ids = np.asarray(data.user_ids).astype(str)

    rows, labels, group_ids, fused_hits = [], [], [], []
    for g, j in enumerate(pick.tolist()):
        u, target = int(targets_users[j]), int(targets[j])
        seq = train_sequences[u].astype(np.int64)
        if len(seq) < config.min_history - 1:
            continue
        cut = max(len(seq) - config.recent_items, 0)
        req = Request(user_index=u, history=seq[:cut], recent=seq[cut:], context={"timestamp": float(data.timestamps[holdout][j])})
        candidates, _, contributions = rank_candidates(served, spec, req, None, use_ranker=False)
        candidates = candidates[: config.candidates]
        hit = candidates == target
        fused_hits.append(np.flatnonzero(hit)[0] if hit.any() else np.inf)
        if not hit.any():
            continue
        rows.append(pers.features(req, candidates, contributions, user_ids[u]))
        labels.append(hit.astype(np.int32))
        group_ids.append(np.full(len(candidates), g))
    if len(rows) < 20:
        return {"skipped": f"only {len(rows)} requests had the target among candidates"}
    n_valid = max(int(len(rows) * config.valid_share), 1)
    x_tr, y_tr, g_tr = (np.concatenate(a[n_valid:]) for a in (rows, labels, group_ids))
    x_va, y_va, g_va = (np.concatenate(a[:n_valid]) for a in (rows, labels, group_ids))
    ranker = LTRRanker(FEATURE_NAMES, config.ltr).fit(x_tr, y_tr, groups_from_ids(g_tr), (x_va, y_va, groups_from_ids(g_va)))
    ranker.save(out_dir)

    # Validation: NDCG@10 of the held-out item, fusion order vs ranker order, over the validation requests.
    def ndcg(rank: np.ndarray) -> float:
        return float(np.mean(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0)))

    fusion_rank, ranker_rank = [], []
    for x, y in zip(rows[:n_valid], labels[:n_valid]):
        fusion_rank.append(np.flatnonzero(y)[0])
        order = np.argsort(-ranker.predict(x), kind="stable")
        ranker_rank.append(np.flatnonzero(y[order])[0])
    recall = float(np.mean(np.isfinite(fused_hits)))
    return {
        "requests": len(pick), "with_target": len(rows), "candidate_recall@%d" % config.candidates: round(recall, 4),
        "valid_ndcg10_fusion": round(ndcg(np.array(fusion_rank)), 4),
        "valid_ndcg10_ranker": round(ndcg(np.array(ranker_rank)), 4),
        "best_iteration": ranker.best_iteration,
        "importance_top": dict(list(ranker.feature_importance().items())[:8]),
    }
