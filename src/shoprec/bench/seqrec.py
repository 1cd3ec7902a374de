"""`shoprec bench seqrec`: sequential recommendation on S3-Rec-format data (BENCHMARKS.md §1).

Leave-one-out, full ranking over all items with the user's history removed. Each model is fitted
on the training part (validation targets for early stopping), then evaluated on the test targets
once. Prints a table, then as its last line one JSON object with every model's figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = "../shared/data/amazon"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=DEFAULT_DATA, help=f"folder with <dataset>.txt (default {DEFAULT_DATA})")
    parser.add_argument("--dataset", default="Beauty", help="S3-Rec dataset name (Beauty, Sports_and_Outdoors, Toys_and_Games)")
    parser.add_argument("--models", default="all", help="'all' or a comma-separated list of registry names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-users", type=int, default=None, help="evaluate on a random subset of users (quick runs)")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE",
                        help="override one model config value (JSON value), e.g. --set itemknn.neighbours=100")
    parser.add_argument("--no-tune", action="store_true",
                        help="fit each model's default config only (no search over its tuning_grid on validation)")
    parser.add_argument("--record", default=None, help="append one JSON record (config, metrics, time, machine) to this file")


def _overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        model, dot, field = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"--set {pair!r}: expected MODEL.KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(model, {})[field] = parsed
    return out


def _fit_and_select(model_class: Any, fixed: dict[str, Any], split: Any, tune: bool) -> tuple[Any, dict, float, float]:
    """Fit the model (each point of its `tuning_grid`, unless fixed by --set or tune is off) on the
    training part; keep the one with the best validation NDCG@10. Returns (model, valid metrics,
    train seconds of the kept fit, seconds spent on the whole search)."""
    import itertools

    from shoprec.evaluation.protocols import evaluate_holdout

    grid = {key: values for key, values in getattr(model_class, "tuning_grid", {}).items() if key not in fixed} if tune else {}
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    search_start = time.perf_counter()
    best: tuple[Any, dict, float] | None = None
    for point in points:
        config = model_class.config_class.model_validate({**model_class.config_class().model_dump(), **fixed, **point})
        model = model_class(config)
        start = time.perf_counter()
        model.fit(split.train, valid=split.valid)
        train_s = time.perf_counter() - start
        # non-iterative models already scored the full validation set inside fit
        reported = getattr(model, "fit_report", {}).get("valid_ndcg10")
        valid = {"ndcg10": reported} if reported is not None else evaluate_holdout(model, split.valid, ks=(10,))
        if len(points) > 1:
            print(f"  {model.name} {point}: valid NDCG@10 {valid['ndcg10']:.4f} ({train_s:.1f}s)", flush=True)
        if best is None or valid["ndcg10"] > best[1]["ndcg10"]:
            best = (model, valid, train_s)
    assert best is not None
    return (*best, time.perf_counter() - search_start)


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def run(args: argparse.Namespace) -> int:
    from shoprec.data.loaders import load_s3rec
    from shoprec.evaluation.protocols import evaluate_holdout, full_ranking_rank_bounds, leave_one_out, metrics_from_ranks
    from shoprec.recommend import registry

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("implicit").setLevel(logging.WARNING)
    data_dir = Path(args.data)
    if not (data_dir / f"{args.dataset}.txt").exists():
        print(f"seqrec: skipped, {data_dir / (args.dataset + '.txt')} not found (pass --data)")
        return 0
    names = registry.available() if args.models == "all" else [n.strip() for n in args.models.split(",") if n.strip()]
    overrides = _overrides(args.set)
    unknown = set(overrides) - set(names)
    if unknown:
        raise SystemExit(f"--set names models not being run: {', '.join(sorted(unknown))}")

    wall = time.perf_counter()
    data = load_s3rec(data_dir, args.dataset)
    sequences, n_items, attributes = data.sequences, data.n_items, data.item_attributes
    if args.max_users is not None and args.max_users < len(sequences):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(sequences), args.max_users, replace=False))
        sequences = [sequences[u] for u in pick]
    split = leave_one_out(sequences, n_items, item_attributes=attributes)
    print(f"dataset {args.dataset}: {len(sequences)} users, {n_items} items, {sum(len(s) for s in sequences)} interactions; "
          f"protocol leave-one-out full ranking (history removed), split valid/test, seed {args.seed}")

    results: dict[str, dict[str, float]] = {}
    configs: dict[str, Any] = {}
    tie_ndcg: dict[str, float] = {}
    tune_s: dict[str, float] = {}
    header = (f"{'model':<16}{'HR@10':>8}{'NDCG@10':>9}{'HR@20':>8}{'NDCG@20':>9}{'vNDCG@10':>10}{'train_s':>9}"
              f"{'NDCG@10 ties-last':>19}")
    for name in names:
        model, valid, train_s, tune_s[name] = _fit_and_select(
            registry.model_class(name), {"seed": args.seed, **overrides.get(name, {})}, split, tune=not args.no_tune)
        if getattr(model, "refit_for_test", False):
            # statistics of everything known (popularity): recount with the validation items included
            model.fit(split.test_history)
        optimistic, pessimistic = full_ranking_rank_bounds(model, split.test.history, split.test.targets, split.test.users)
        test = metrics_from_ranks(optimistic)
        tie_ndcg[name] = metrics_from_ranks(pessimistic, ks=(10,))["ndcg10"]
        results[name] = {**{key: round(value, 6) for key, value in test.items()},
                         "train_s": round(train_s, 2), "valid_ndcg10": round(valid["ndcg10"], 6)}
        configs[name] = model.config.model_dump(mode="json")
        print(f"{name}: test HR@10 {test['hr10']:.4f} NDCG@10 {test['ndcg10']:.4f} HR@20 {test['hr20']:.4f} "
              f"NDCG@20 {test['ndcg20']:.4f} valid NDCG@10 {valid['ndcg10']:.4f} train {train_s:.1f}s", flush=True)
        del model

    print(header)
    for name, row in results.items():
        print(f"{name:<16}{row['hr10']:>8.4f}{row['ndcg10']:>9.4f}{row['hr20']:>8.4f}{row['ndcg20']:>9.4f}"
              f"{row['valid_ndcg10']:>10.4f}{row['train_s']:>9.1f}{tie_ndcg[name]:>19.4f}")
    print("NDCG@10 ties-last: the test target ranked behind every item with an equal score (the protocol "
          "ranks it ahead); a large gap means the figure owes much to tied scores")
    summary = {"dataset": args.dataset, "models": results}
    if args.record:
        record = {
            "benchmark": "seqrec", "dataset": args.dataset, "protocol": "leave-one-out full ranking, history removed",
            "split": "test", "seed": args.seed, "max_users": args.max_users, "data": str(data_dir),
            "configs": configs, "metrics": results, "tuning_s": tune_s, "wall_s": round(time.perf_counter() - wall, 2),
            "machine": machine(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(args.record, "a") as handle:
            from shoprec.evaluation.registry import provenance

            stamp = provenance()
            for line in registry_records(record):
                handle.write(json.dumps({**line, **stamp}) + "\n")
    print(json.dumps(summary))
    return 0


def registry_records(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per model for `shoprec report --import` (kind bench_seqrec, name dataset/model)."""
    shared = {k: run.get(k) for k in ("dataset", "protocol", "split", "seed", "max_users", "data")}
    out = []
    for model, row in run["metrics"].items():
        metrics = {k: v for k, v in row.items() if k != "train_s"}
        out.append({"kind": "bench_seqrec", "name": f"{run['dataset']}/{model}",
                    "config": {**shared, "model": model, **(run.get("configs") or {}).get(model, {})},
                    "metrics": metrics, "timings": {"train_s": row.get("train_s"), "tuning_s": (run.get("tuning_s") or {}).get(model)},
                    "created_at": run.get("finished_at"), "machine": run.get("machine")})
    return out
