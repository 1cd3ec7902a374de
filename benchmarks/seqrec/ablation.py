"""SASRec ablation on the validation split of an S3-Rec Amazon dataset (BENCHMARKS.md §1).

Each variant changes one thing of the default SASRec config (loss, side information, window,
width), is fitted on the training part with early stopping on a validation subsample, and is
scored on the full validation split (leave-one-out, full ranking, history removed). The test
split is never touched. Prints one line per variant, a table, and as its last line a JSON record
(config, metrics, wall time, machine); `--out FILE` also writes that record to FILE.

    python benchmarks/seqrec/ablation.py --data /work/shared/data/amazon --dataset Beauty
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

VARIANTS: dict[str, dict] = {
    "default": {},
    "dropout=0.5": {"dropout": 0.5, "attention_dropout": 0.5},
    "loss=ce (full softmax)": {"loss": "ce"},
    "loss=bce (1 negative)": {"loss": "bce", "negatives": 1},
    "no side information": {"use_attributes": False},
    "max_len=20": {"max_len": 20},
    "dim=32": {"dim": 32},
    "dim=128": {"dim": 128},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/amazon", help="folder with <dataset>.txt")
    parser.add_argument("--dataset", default="Beauty")
    parser.add_argument("--variants", default="all", help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=None, help="cap the epochs per variant (shortened schedule)")
    parser.add_argument("--budget-s", type=float, default=None, help="cap the training seconds per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (use 1 on a crowded machine)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=None, help="also write the JSON record to this file")
    args = parser.parse_args(argv)

    from shoprec.data.loaders import load_s3rec
    from shoprec.evaluation.protocols import evaluate_holdout, leave_one_out
    from shoprec.recommend.sasrec import SASRec

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if not (Path(args.data) / f"{args.dataset}.txt").exists():
        print(f"ablation: skipped, {Path(args.data) / (args.dataset + '.txt')} not found (pass --data)")
        return 0
    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    wall = time.perf_counter()
    data = load_s3rec(args.data, args.dataset)
    split = leave_one_out(data.sequences, data.n_items, item_attributes=data.item_attributes)
    print(f"dataset {args.dataset}: {len(data.sequences)} users, {data.n_items} items; protocol leave-one-out full "
          f"ranking (history removed), split valid, seed {args.seed}; schedule: epochs<={args.epochs or 'default'}, "
          f"budget {args.budget_s or 'none'} s per variant", flush=True)
    schedule = {"num_threads": args.threads, "seed": args.seed}
    if args.epochs is not None:
        schedule["epochs"] = args.epochs
    if args.budget_s is not None:
        schedule["time_budget_s"] = args.budget_s
    rows: dict[str, dict] = {}
    configs: dict[str, dict] = {}
    for name in names:
        model = SASRec(**{**VARIANTS[name], **schedule})
        start = time.perf_counter()
        model.fit(split.train, valid=split.valid)
        train_s = time.perf_counter() - start
        metrics = evaluate_holdout(model, split.valid)
        rows[name] = {**{key: round(value, 6) for key, value in metrics.items()}, "train_s": round(train_s, 1),
                      "epochs": model.fit_report["epochs"], "best_epoch": model.fit_report["best_epoch"]}
        configs[name] = model.config.model_dump(mode="json")
        print(f"{name}: valid HR@10 {metrics['hr10']:.4f} NDCG@10 {metrics['ndcg10']:.4f} HR@20 {metrics['hr20']:.4f} "
              f"NDCG@20 {metrics['ndcg20']:.4f} epochs {rows[name]['epochs']} (best {rows[name]['best_epoch']}) "
              f"train {train_s:.0f}s", flush=True)
    print(f"{'variant':<26}{'HR@10':>8}{'NDCG@10':>9}{'HR@20':>8}{'NDCG@20':>9}{'epochs':>8}{'best':>6}{'train_s':>9}")
    for name, row in rows.items():
        print(f"{name:<26}{row['hr10']:>8.4f}{row['ndcg10']:>9.4f}{row['hr20']:>8.4f}{row['ndcg20']:>9.4f}"
              f"{row['epochs']:>8}{row['best_epoch']:>6}{row['train_s']:>9.1f}")
    record = {
        "benchmark": "seqrec-ablation", "dataset": args.dataset, "split": "valid", "seed": args.seed,
        "protocol": "leave-one-out full ranking, history removed", "schedule": schedule, "configs": configs,
        "metrics": rows, "wall_s": round(time.perf_counter() - wall, 1),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
    }
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
