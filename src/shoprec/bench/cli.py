"""`shoprec bench NAME ...`: dispatch to one benchmark module (imported only when run)."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "search": ("shoprec.bench.search", "Home Depot product search: bm25s vs lexical vs semantic vs hybrid"),
    "seqrec": ("shoprec.bench.seqrec", "Amazon sequential recommendation, leave-one-out full ranking"),
    "blend": ("shoprec.bench.blend", "learned blend, cold items and diversity on S3-Rec data"),
    "scenarios": ("shoprec.bench.scenarios", "recommend latency per scenario, explanations and profile recovery on the demo shop"),
    "load": ("shoprec.bench.load", "service load test on loopback"),
    "abtest": ("shoprec.bench.abtest", "A/A, A/B, interleaving and bandit checks on the simulator"),
    "ingest": ("shoprec.bench.ingest", "ingestion throughput and memory on a generated events file"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHMARKS[args.name][0])
    parser = argparse.ArgumentParser(prog=f"shoprec bench {args.name}", description=BENCHMARKS[args.name][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(args.options)) or 0)
