"""`shoprec evaluate`: fit a registered model on a split of the store's events and print metrics.

Prints one line per metric and, last, one JSON object; `--record` keeps the run in the registry.
"""

from __future__ import annotations

import argparse
import json
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from shoprec.evaluation.splits import SPLITS

    parser.add_argument("--store", default=None, help="store URL (default: settings.store_url)")
    parser.add_argument("--model", required=True, help="registered model name (see shoprec.recommend.registry)")
    parser.add_argument("--split", default="leave_one_out", choices=sorted(SPLITS))
    parser.add_argument("--test-fraction", type=float, default=0.2, help="for temporal and random splits")
    parser.add_argument("--protocol", default="full", choices=["full", "sampled"])
    parser.add_argument("--negatives", type=int, default=100, help="sampled protocol: negatives per target")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--max-users", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help="model config overrides as JSON")
    parser.add_argument("--record", action="store_true", help="record the run in the store's experiment registry")


def run(args: argparse.Namespace) -> int:
    from shoprec.data.interactions import events_to_interactions
    from shoprec.data.store import open_store
    from shoprec.evaluation.evaluate import evaluate
    from shoprec.evaluation.registry import fingerprint, record_run
    from shoprec.evaluation.splits import make_split
    from shoprec.recommend.registry import create

    try:
        overrides = json.loads(args.config)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--config is not valid JSON: {error}") from error
    with open_store(args.store) as store:
        events, products = store.read_events(), store.read_products()
        data = events_to_interactions(events, products)
        split_kwargs = {} if args.split == "leave_one_out" else {"test_fraction": args.test_fraction}
        if args.split == "random":
            split_kwargs["seed"] = args.seed
        split = make_split(data, args.split, **split_kwargs)
        model = create(args.model, **overrides)
        started = time.perf_counter()
        model.fit(split.train)
        fit_seconds = time.perf_counter() - started
        result = evaluate(model, split, args.protocol, ks=tuple(args.k), n_negatives=args.negatives, seed=args.seed,
                          max_users=args.max_users)
        for key, value in result.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
        if args.record:
            metrics = {k: v for k, v in result.items() if isinstance(v, float) and k != "seconds"}
            run_id = record_run(
                store, "evaluate", f"{args.model}/{args.split}/{args.protocol}",
                config={"model": args.model, "overrides": overrides, "split": args.split, "protocol": args.protocol,
                        "negatives": args.negatives, "ks": args.k, "max_users": args.max_users, "seed": args.seed},
                metrics=metrics,
                timings={"fit_s": fit_seconds, "evaluate_s": result["seconds"]},
                data_fingerprint=fingerprint([data.users, data.items, data.timestamps]),
            )
            result["run_id"] = run_id
    print(json.dumps(result))
    return 0
