"""`shoprec demo-data`: generate the demo shop (catalog + simulated shoppers) and write it to a folder."""

from __future__ import annotations

import argparse
import time


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--products", type=_positive, default=5000, help="number of products (default 5000)")
    parser.add_argument("--users", type=_positive, default=2000, help="number of shoppers (default 2000)")
    parser.add_argument("--events", type=_positive, default=None,
                        help="exact number of events (default: as many as the shoppers' activity gives)")
    parser.add_argument("--days", type=_positive, default=60, help="length of the behaviour window in days (default 60)")
    parser.add_argument("--impressions", action="store_true",
                        help="also emit impression events (items shown, viewed or passed over)")
    parser.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same files (default 42)")


def run(args: argparse.Namespace) -> int:
    from shoprec.data.demo import generate_demo

    started = time.perf_counter()
    shop = generate_demo(n_products=args.products, n_users=args.users, n_events=args.events, seed=args.seed, days=args.days,
                         impressions=args.impressions)
    generated = time.perf_counter() - started
    paths = shop.write(args.out)
    summary = shop.summary()
    print(f"demo shop (seed {args.seed}): {summary['products']} products, {summary['users']} users, "
          f"{summary['events']} events in {summary['sessions']} sessions "
          f"(generated in {generated:.1f}s, written in {time.perf_counter() - started - generated:.1f}s)")
    print("events by type: " + ", ".join(f"{k} {v}" for k, v in summary["events_by_type"].items()))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
