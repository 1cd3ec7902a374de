"""`shoprec bench blend`: learned blend vs single models, cold items, and diversity, on S3-Rec data.

Same protocol as `bench seqrec` (leave-one-out, full ranking, history removed). The blend is a
LightGBM LambdaRank model over the union of every model's top candidates, trained on the
**validation** targets only (models fitted on the training part) and applied once to test.
Items outside the candidate union count as misses, so the blend can only lose by that choice.

Cold items: 10% of items are hidden from training; HR@20 is reported on the test cases whose
target is one of them. Diversity: MMR re-ranking of the blend's list at several trade-offs,
with NDCG@10, intra-list diversity (1 - mean pairwise cosine of attribute vectors) and coverage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprec.evaluation.metrics import hit_rate_at_k, ndcg_at_k
from shoprec.recommend.base import top_k

DEFAULT_MODELS = "sasrec,itemknn,als,content,pop"
COLD_MODELS = "itemknn,als,content,pop"
# finer steps where the NDCG loss crosses ~3% on the Amazon datasets
LAMBDAS = (1.0, 0.97, 0.95, 0.94, 0.935, 0.93, 0.925, 0.92, 0.9, 0.87, 0.85, 0.8, 0.7)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="../shared/data/amazon", help="directory of S3-Rec files")
    parser.add_argument("--dataset", default="Beauty")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="models blended (comma list)")
    parser.add_argument("--cold-models", default=COLD_MODELS, help="models refitted for the cold-item check")
    parser.add_argument("--candidates", type=int, default=50, help="top candidates taken from each model")
    parser.add_argument("--train-users", type=int, default=10000, help="validation users the ranker trains on")
    parser.add_argument("--max-users", type=int, default=None, help="evaluate on a random subset of users (quick runs)")
    parser.add_argument("--cold-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="write the diversity plot (PNG) here")
    parser.add_argument("--record", default=None, help="append a JSON record of the run to this file")
    parser.add_argument("--save-lists", default=None, help="save the blend's test lists and scores (npz) for analysis")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: cold,diversity")


class CandidateSet:
    """Per-user candidate union with one feature block per model.

    items: (n_users, m) int64, -1 = padding; features: (n_users, m, f) float32."""

    def __init__(self, items: np.ndarray, features: np.ndarray, names: list[str]):
        self.items, self.features, self.names = items, features, names


def candidate_set(models: dict[str, Any], users: np.ndarray, history, popularity: np.ndarray, per_model: int,
                  batch: int = 512) -> CandidateSet:
    """Union of every model's top `per_model` items (history removed), with per-model features:
    raw score, score z-normalised over all items, reciprocal rank within the model's top list."""
    names = []
    for name in models:
        names += [f"{name}:score", f"{name}:z", f"{name}:rr"]
    names += ["log_popularity", "history_length"]
    seen = history.seen
    lengths = np.asarray(seen.sum(axis=1)).ravel()
    width = per_model * len(models)
    all_items = np.full((len(users), width), -1, np.int64)
    all_feats = np.zeros((len(users), width, len(names)), np.float32)
    for start in range(0, len(users), batch):
        b = users[start:start + batch]
        rows, cols = seen[b].nonzero()
        scores, tops = {}, []
        for name, model in models.items():
            s = np.asarray(model.score(b, history), np.float32)
            s[rows, cols] = -np.inf
            scores[name] = s
            tops.append(top_k(s, per_model)[0])
        cand = np.concatenate(tops, axis=1)
        # Deduplicate within each row: sort, mark repeats as padding.
        order = np.sort(cand, axis=1)
        dup = np.zeros_like(order, bool)
        dup[:, 1:] = order[:, 1:] == order[:, :-1]
        cand = np.where(dup, -1, order)
        safe = np.maximum(cand, 0)
        r = np.arange(len(b))[:, None]
        feats = np.zeros((len(b), width, len(names)), np.float32)
        for j, (name, s) in enumerate(scores.items()):
            finite = np.where(np.isfinite(s), s, np.nan)
            mean, std = np.nanmean(finite, axis=1, keepdims=True), np.nanstd(finite, axis=1, keepdims=True) + 1e-9
            val = s[r, safe]
            val = np.where(np.isfinite(val), val, np.nanmin(finite, axis=1, keepdims=True))
            feats[:, :, 3 * j] = val
            feats[:, :, 3 * j + 1] = (val - mean) / std
            # Reciprocal rank inside this model's top list (0 when outside it).
            pos = np.full((len(b), s.shape[1]), 0.0, np.float32)
            np.put_along_axis(pos, tops[j], 1.0 / (1.0 + np.arange(per_model, dtype=np.float32))[None, :], axis=1)
            feats[:, :, 3 * j + 2] = pos[r, safe]
        feats[:, :, -2] = np.log1p(popularity[safe])
        feats[:, :, -1] = np.log1p(lengths[b])[:, None]
        feats[cand < 0] = 0
        all_items[start:start + len(b)] = cand
        all_feats[start:start + len(b)] = feats
    return CandidateSet(all_items, all_feats, names)


def fit_ranker(cands: CandidateSet, targets: np.ndarray, seed: int):
    """LambdaRank on requests whose target is among the candidates (80/20 split for early stopping)."""
    from shoprec.ranking.ltr import LTRConfig, LTRRanker

    has = (cands.items == targets[:, None]).any(axis=1)
    idx = np.flatnonzero(has)
    rng = np.random.default_rng(seed)
    rng.shuffle(idx)
    n_valid = max(len(idx) // 5, 1)

    def flatten(rows: np.ndarray):
        items = cands.items[rows]
        keep = items >= 0
        x = cands.features[rows][keep]
        y = (items == targets[rows][:, None])[keep].astype(np.int32)
        return x, y, keep.sum(axis=1)

    ranker = LTRRanker(cands.names, LTRConfig(n_estimators=300, learning_rate=0.05, num_leaves=63, min_child_samples=50))
    ranker.fit(*flatten(idx[n_valid:]), valid=flatten(idx[:n_valid]))
    return ranker


def blend_lists(ranker, cands: CandidateSet, k: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(n_users, k) item ids ordered by the ranker (-1 padded) and their scores (-inf padded)."""
    keep = cands.items >= 0
    scores = np.full(cands.items.shape, -np.inf, np.float32)
    scores[keep] = ranker.predict(cands.features[keep])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    items = np.take_along_axis(cands.items, order, axis=1)
    ordered = np.take_along_axis(scores, order, axis=1)
    return np.where(ordered > -np.inf, items, -1), ordered


def list_ranks(lists: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based position of each target in its list; inf when absent."""
    match = lists == targets[:, None]
    return np.where(match.any(axis=1), match.argmax(axis=1), np.inf)


def metrics(ranks: np.ndarray) -> dict[str, float]:
    return {"hr10": hit_rate_at_k(ranks, 10), "ndcg10": ndcg_at_k(ranks, 10), "hr20": hit_rate_at_k(ranks, 20), "ndcg20": ndcg_at_k(ranks, 20)}


def mmr_lists(lists: np.ndarray, vectors: np.ndarray, lam: float, k: int = 10) -> np.ndarray:
    """Batched position-aware MMR over ranked lists (n, m); returns (n, k). See `shoprec.engine.mmr`."""
    n, m = lists.shape
    if lam >= 1.0:
        return lists[:, :k]
    valid = lists >= 0
    vec = vectors[np.maximum(lists, 0)] * valid[..., None]
    rel = np.where(valid, 1.0 / np.log2(np.arange(m)[None, :] + 2.0), -np.inf)
    sim_sum = np.zeros((n, m), np.float32)
    out = np.full((n, k), -1, np.int64)
    alive = valid.copy()
    rows = np.arange(n)
    for step in range(k):
        discount = 1.0 / np.log2(step + 2.0)
        gain = np.where(alive, lam * discount * rel - (1 - lam) * sim_sum / max(step, 1), -np.inf)
        best = np.argmax(gain, axis=1)
        ok = alive[rows, best]
        out[:, step] = np.where(ok, lists[rows, best], -1)
        alive[rows, best] = False
        sims = np.einsum("nmd,nd->nm", vec, vec[rows, best])
        sim_sum += np.where(ok[:, None], sims, 0)
    return out


def intra_list_diversity(lists: np.ndarray, vectors: np.ndarray, chunk: int = 1000) -> float:
    """Mean over lists of 1 - mean pairwise cosine (vectors L2-normalised); chunked to bound memory."""
    if len(lists) > chunk:
        parts = [(intra_list_diversity(lists[i:i + chunk], vectors), len(lists[i:i + chunk])) for i in range(0, len(lists), chunk)]
        return float(sum(v * n for v, n in parts) / len(lists))
    valid = lists >= 0
    vec = vectors[np.maximum(lists, 0)] * valid[..., None]
    sims = np.einsum("nid,njd->nij", vec, vec)
    cnt = valid.sum(axis=1)
    pairs = np.maximum(cnt * (cnt - 1), 1)
    off = sims.sum(axis=(1, 2)) - np.einsum("nii->n", sims)
    return float(np.mean(1.0 - off / pairs))


def attribute_vectors(attributes: sp.csr_matrix | None, n_items: int) -> np.ndarray:
    """L2-normalised attribute indicator rows (items without attributes get a unique direction)."""
    if attributes is None:
        return np.eye(n_items, dtype=np.float32)
    dense = attributes.astype(np.float32).toarray()
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return np.where(norms > 0, dense / np.maximum(norms, 1e-12), 0).astype(np.float32)


def fit_models(names: list[str], train, valid, log) -> tuple[dict[str, Any], dict[str, float]]:
    from shoprec.recommend import registry

    models, times = {}, {}
    for name in names:
        t0 = time.perf_counter()
        # the blend learns from the validation requests: no model may have trained on their targets
        fields = registry.model_class(name).config_class.model_fields
        config = {"refit_with_valid": False} if "refit_with_valid" in fields else {}
        models[name] = registry.create(name, **config).fit(train, valid)
        times[name] = round(time.perf_counter() - t0, 1)
        log(f"fitted {name} in {times[name]}s")
    return models, times


def run(args: argparse.Namespace) -> int:
    from shoprec.data.loaders import load_s3rec
    from shoprec.evaluation.protocols import Holdout, full_ranking_ranks, leave_one_out

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    path = Path(args.data)
    if not (path / f"{args.dataset}.txt").exists():
        print(f"skipped: {path / (args.dataset + '.txt')} not found")
        return 0
    data = load_s3rec(path, args.dataset)
    split = leave_one_out(data.sequences, data.n_items, data.item_attributes)
    rng = np.random.default_rng(args.seed)
    test_users, test_targets = split.test_users, split.test_targets
    valid_users, valid_targets = split.valid_users, split.valid_targets
    if args.max_users:
        pick = np.sort(rng.choice(len(test_users), min(args.max_users, len(test_users)), replace=False))
        test_users, test_targets = test_users[pick], test_targets[pick]
        vpick = np.isin(valid_users, test_users)
        valid_users, valid_targets = valid_users[vpick], valid_targets[vpick]
    names = [m for m in args.models.split(",") if m]
    popularity = split.train.item_popularity()
    result: dict[str, Any] = {"dataset": args.dataset}

    # 1. Single models and the blend.
    models, train_s = fit_models(names, split.train, Holdout(split.valid_history, valid_users, valid_targets), log)
    singles = {}
    for name, model in models.items():
        singles[name] = metrics(full_ranking_ranks(model, split.test_history, test_targets, test_users).astype(float))
        log(f"{name:10s} test {json.dumps({k: round(v, 4) for k, v in singles[name].items()})}")
    best = max(singles, key=lambda n: singles[n]["ndcg10"])
    train_pick = rng.permutation(len(valid_users))[: args.train_users]
    t0 = time.perf_counter()
    vc = candidate_set(models, valid_users[train_pick], split.valid_history, popularity, args.candidates)
    ranker = fit_ranker(vc, valid_targets[train_pick], args.seed)
    tc = candidate_set(models, test_users, split.test_history, popularity, args.candidates)
    lists, scores = blend_lists(ranker, tc)
    if args.save_lists:
        np.savez_compressed(args.save_lists, lists=lists, scores=scores, targets=test_targets)
    blend = metrics(list_ranks(lists, test_targets))
    log(f"blend      test {json.dumps({k: round(v, 4) for k, v in blend.items()})} ({time.perf_counter() - t0:.0f}s)")
    result["best_single"] = {"name": best, "ndcg10": round(singles[best]["ndcg10"], 4)}
    result["blend_ndcg10"] = round(blend["ndcg10"], 4)
    result["singles"] = {n: {k: round(v, 4) for k, v in m.items()} for n, m in singles.items()}
    result["blend"] = {k: round(v, 4) for k, v in blend.items()}
    result["importance_top"] = dict(list(ranker.feature_importance().items())[:6])
    result["train_s"] = train_s

    # 2. Cold items: hide a share of items from training, refit, HR@20 on cold-target test cases.
    skip = set(args.skip.split(","))
    if "cold" not in skip:
        result["cold_item_hr20"] = cold_items(args, data, split, log)

    # 3. Diversity of the blend's list under MMR.
    if "diversity" not in skip:
        vectors = attribute_vectors(data.item_attributes, data.n_items)
        curve = []
        for lam in LAMBDAS:
            top = np.concatenate([mmr_lists(lists[i:i + 1000, :50], vectors, lam) for i in range(0, len(lists), 1000)])
            curve.append({"lambda": lam, "ndcg10": round(ndcg_at_k(list_ranks(top, test_targets), 10), 4),
                          "ild": round(intra_list_diversity(top, vectors), 4),
                          "coverage": round(len(np.unique(top[top >= 0])) / data.n_items, 4)})
            log(f"mmr lambda={lam}: {curve[-1]}")
        result["diversity"] = curve
        if args.plot:
            plot_diversity(curve, args.dataset, args.plot)

    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    print_table(result)
    if args.record:
        with open(args.record, "a") as fh:
            from shoprec.evaluation.registry import provenance

            fh.write(json.dumps({**registry_record(vars(args), result), **provenance()}) + "\n")
    print(json.dumps({k: result[k] for k in ("dataset", "best_single", "blend_ndcg10", "cold_item_hr20", "diversity") if k in result}))
    return 0


def registry_record(config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """One run for `shoprec report --import`: flat headline metrics; single models as segments,
    the MMR trade-off as a curve."""
    best = result["best_single"]
    metrics: dict[str, Any] = {"best_single_ndcg10": best["ndcg10"], "blend_ndcg10": result["blend_ndcg10"],
                               "blend_gain_pct": round(100.0 * (result["blend_ndcg10"] / best["ndcg10"] - 1.0), 1)
                               if best["ndcg10"] else None}
    metrics.update({f"blend_{k}": v for k, v in result.get("blend", {}).items() if k != "ndcg10"})
    metrics.update({f"cold_hr20_{k}": v for k, v in result.get("cold_item_hr20", {}).items()})
    extra: dict[str, Any] = {"best_single": best["name"], "segments": result.get("singles", {}),
                             "feature_importance_top": result.get("importance_top", {})}
    curve = result.get("diversity")
    if curve:
        extra["curves"] = {"MMR: NDCG@10 and intra-list diversity vs lambda": {
            "x": [c["lambda"] for c in curve], "xlabel": "lambda", "ylabel": "value",
            "y": {"ndcg10 x10": [10 * c["ndcg10"] for c in curve], "ild": [c["ild"] for c in curve],
                  "coverage": [c["coverage"] for c in curve]}}}
    timings = {f"train_{k}_s": v for k, v in result.get("train_s", {}).items()}
    timings["wall_s"] = result.get("wall_s")
    return {"kind": "bench_blend", "name": result["dataset"], "config": config, "metrics": metrics,
            "timings": timings, "extra": extra}


def cold_items(args, data, split, log) -> dict[str, float]:
    """HR@20 on test cases whose target was hidden from training (10% of items by default)."""
    from shoprec.evaluation.protocols import Holdout, full_ranking_ranks
    from shoprec.recommend.dataset import Interactions

    rng = np.random.default_rng(args.seed + 1)
    cold = np.zeros(data.n_items, bool)
    cold[rng.choice(data.n_items, int(args.cold_share * data.n_items), replace=False)] = True
    keep = ~cold[split.train.items]
    t = split.train
    train = Interactions(t.n_users, t.n_items, t.users[keep], t.items[keep], t.weights[keep], t.timestamps[keep],
                         item_attributes=t.item_attributes)
    cases = cold[split.test_targets]
    users, targets = split.test_users[cases], split.test_targets[cases]
    if args.max_users:
        users, targets = users[: args.max_users], targets[: args.max_users]
    vcases = ~cold[split.valid_targets]
    valid = Holdout(split.valid_history, split.valid_users[vcases], split.valid_targets[vcases])
    names = [m for m in args.cold_models.split(",") if m]
    models, _ = fit_models(names, train, valid, log)
    out = {}
    for name, model in models.items():
        out[name] = round(hit_rate_at_k(full_ranking_ranks(model, split.test_history, targets, users).astype(float), 20), 4)
    # The blend over these models, trained on validation requests (warm and cold targets alike).
    pop = train.item_popularity()
    pick = np.random.default_rng(args.seed).permutation(len(split.valid_users))[: args.train_users]
    ranker = fit_ranker(candidate_set(models, split.valid_users[pick], split.valid_history, pop, args.candidates),
                        split.valid_targets[pick], args.seed)
    lists, _ = blend_lists(ranker, candidate_set(models, users, split.test_history, pop, args.candidates))
    out["blend"] = round(hit_rate_at_k(list_ranks(lists, targets), 20), 4)
    log(f"cold-item HR@20 over {len(users)} test cases: {out}")
    return out


def plot_diversity(curve: list[dict], dataset: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ndcg = [c["ndcg10"] for c in curve]
    ax.plot([c["ild"] for c in curve], ndcg, "o-", label="NDCG@10 vs ILD")
    for c in curve:
        ax.annotate(f"λ={c['lambda']}", (c["ild"], c["ndcg10"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("intra-list diversity @10")
    ax.set_ylabel("NDCG@10 (test)")
    ax.set_title(f"MMR trade-off on {dataset} (coverage {curve[0]['coverage']:.3f} → {curve[-1]['coverage']:.3f})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(result: dict) -> None:
    print(f"{result['dataset']}: leave-one-out, full ranking, test split")
    print(f"{'model':12s} {'HR@10':>7s} {'NDCG@10':>8s} {'HR@20':>7s} {'NDCG@20':>8s}")
    for name, m in list(result.get("singles", {}).items()) + [("blend", result.get("blend", {}))]:
        print(f"{name:12s} {m['hr10']:7.4f} {m['ndcg10']:8.4f} {m['hr20']:7.4f} {m['ndcg20']:8.4f}")
    if "cold_item_hr20" in result:
        print("cold-item HR@20: " + ", ".join(f"{k} {v:.4f}" for k, v in result["cold_item_hr20"].items()))
    for c in result.get("diversity", []):
        print(f"MMR λ={c['lambda']:<5} NDCG@10 {c['ndcg10']:.4f}  ILD {c['ild']:.4f}  coverage {c['coverage']:.4f}")
