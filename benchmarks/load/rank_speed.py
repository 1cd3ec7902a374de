"""The ranking path's cost on a prepared bench workdir's current version, in one process.

    .venv/bin/python benchmarks/load/rank_speed.py --workdir shoprec-data/bench-load --home 300 --similar 1000

Times live requests one at a time (random shoppers' home feeds, random items' similar lists; no
answer reuse, no precomputed lists) and then the build's precompute step on the most active
shoppers and the most popular items. Run it again with `PYTHONPATH=<another checkout>/src` to compare
two versions of the code side by side on the same artifacts; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from shoprec.bench.load import bench_settings
from shoprec.build import _NoStore
from shoprec.engine import Engine, Served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("shoprec-data/bench-load"))
    parser.add_argument("--home", type=int, default=300, help="shoppers")
    parser.add_argument("--similar", type=int, default=1000, help="items")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    settings = bench_settings(args.workdir)
    engine = Engine(settings, store=_NoStore())  # as the build's precompute step runs it
    served = engine._served = Served.load((args.workdir / "artifacts" / "current").resolve(),
                                          settings.recommend.ann_ef_search)
    engine._warm_live_paths(served)
    rng = np.random.default_rng(args.seed)
    subjects = {"home": rng.choice(sorted(served.user_index), args.home, replace=False).tolist(),
                "similar": rng.choice(served.item_ids, args.similar, replace=False).tolist()}
    results: dict[str, dict] = {"version": served.version}
    for scenario, chosen in subjects.items():
        spec, latencies = engine.scenarios[scenario], []
        for subject in chosen:
            pid, seeds = (None, [subject]) if spec.needs == "item" else (subject, [])
            t0 = time.perf_counter()
            engine._rank(served, spec, engine._request(served, pid, seeds, None), pid, 20)
            latencies.append((time.perf_counter() - t0) * 1000)
        results[f"live_{scenario}"] = {"requests": len(latencies), "mean_ms": round(float(np.mean(latencies)), 2),
                                       "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                                       "p99_ms": round(float(np.percentile(latencies, 99)), 2)}
        print(f"live {scenario}: {results[f'live_{scenario}']}", flush=True)
    for scenario, limit in (("home", args.home), ("similar", args.similar)):
        t0 = time.perf_counter()
        feeds = engine.precompute(scenario, limit=limit)
        seconds = time.perf_counter() - t0
        results[f"precompute_{scenario}"] = {"subjects": len(feeds.subjects), "seconds": round(seconds, 2),
                                             "ms_each": round(1000 * seconds / max(len(feeds.subjects), 1), 2)}
        print(f"precompute {scenario}: {results[f'precompute_{scenario}']}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
