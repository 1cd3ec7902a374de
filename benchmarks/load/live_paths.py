"""Live recommendation paths with the build's HNSW graphs against exact scoring, in one process.

    .venv/bin/python benchmarks/load/live_paths.py --workdir shoprec-data/bench-load

Loads the version `shoprec bench load` prepared in `--workdir`, turns off the precomputed lists
and answer reuse (so every request takes the live path), and times `home` for known shoppers
and `similar` for items on one thread: first retrieving from the graphs, then with the same
generators scoring every item exactly. Prints per-request p50/p99 and how many of the top 20
the two agree on; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from shoprec.bench.load import bench_settings, sample_inputs
from shoprec.engine import Engine, limit_compute_threads
from shoprec.recommend.ann import ItemIndex
from shoprec.result_cache import ResultCache


def exact(engine: Engine) -> int:
    """Swap every generator's graph for exact search over the same rows; returns how many."""
    swapped = 0
    for generator in engine._served.generators.values():
        index = getattr(generator, "index", None)
        if index is not None and index.approximate:
            generator.index = ItemIndex(index.vectors)
            swapped += 1
    return swapped


def timed(engine: Engine, requests: list[tuple[str | None, str, str | None]]) -> tuple[list[float], list[list[str]]]:
    latencies, lists = [], []
    for user, scenario, item in requests:
        t0 = time.perf_counter()
        ranked = engine.recommend(user, scenario, k=20, item=item)
        latencies.append((time.perf_counter() - t0) * 1000)
        lists.append(ranked.ids)
    return latencies, lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("shoprec-data/bench-load"))
    parser.add_argument("--requests", type=int, default=300, help="per scenario")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    settings = bench_settings(args.workdir)
    limit_compute_threads(1)
    engine = Engine.open(settings)
    engine._served.precomputed.clear()
    engine._served.results = ResultCache(0)
    inputs = sample_inputs(settings, args.workdir, args.seed)
    rng = random.Random(args.seed)
    requests = {"home": [(rng.choice(inputs["users"]), "home", None) for _ in range(args.requests)],
                "similar": [(None, "similar", rng.choice(inputs["items"])) for _ in range(args.requests)]}
    results: dict[str, dict] = {"items": len(engine._served.item_ids)}
    graphs = {name: timed(engine, reqs) for name, reqs in requests.items()}
    results["graphs_replaced"] = exact(engine)
    for name, reqs in requests.items():
        exact_ms, exact_lists = timed(engine, reqs)
        graph_ms, graph_lists = graphs[name]
        agree = np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(graph_lists, exact_lists)])
        results[name] = {"graphs_p50_ms": round(float(np.percentile(graph_ms, 50)), 2),
                         "graphs_p99_ms": round(float(np.percentile(graph_ms, 99)), 2),
                         "exact_p50_ms": round(float(np.percentile(exact_ms, 50)), 2),
                         "exact_p99_ms": round(float(np.percentile(exact_ms, 99)), 2),
                         "top20_agreement": round(float(agree), 4)}
        r = results[name]
        print(f"{name:8s} graphs p50/p99 {r['graphs_p50_ms']}/{r['graphs_p99_ms']} ms, exact {r['exact_p50_ms']}/"
              f"{r['exact_p99_ms']} ms, top-20 agreement {r['top20_agreement']}")
    engine.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
