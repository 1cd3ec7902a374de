"""Lexical index alone on the Home Depot catalog: build time, query latency, full-protocol nDCG@10.

    python benchmarks/search/lexical_homedepot.py [--data ../shared/data] [--queries N] [--no-stem] [--no-fuzzy]

Prints one line per figure and writes a JSON record (config, metrics, wall times, machine) to
--out (default: a temp file). Protocol "full" as in BENCHMARKS.md: search all 54,667 products,
top 10, gain = relevance - 1, unjudged products gain 0, ideal DCG from the query's judged products.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def ndcg_at_10(ranked: list[str], gains: dict[str, float]) -> float:
    discounts = 1.0 / np.log2(np.arange(2, 12))
    dcg = sum(gains.get(pid, 0.0) * discounts[i] for i, pid in enumerate(ranked[:10]))
    ideal = sorted(gains.values(), reverse=True)[:10]
    idcg = sum(g * discounts[i] for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--queries", type=int, default=0, help="evaluate only the first N queries (0: all)")
    parser.add_argument("--no-stem", action="store_true")
    parser.add_argument("--no-fuzzy", action="store_true")
    parser.add_argument("--spelling", action="store_true",
                        help="correct each query with a SpellingCorrector fitted on the titles before searching")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    products_csv = args.data / "homedepot" / "products.csv"
    judgments_csv = args.data / "homedepot" / "judgments_dev.csv"
    if not products_csv.exists():
        print(f"skipped: {products_csv} not found")
        return 0

    from shoprec.data.schemas import Product
    from shoprec.search.lexical import LexicalConfig, LexicalIndex

    t = time.perf_counter()
    with products_csv.open(encoding="utf-8", errors="replace") as f:
        products = [Product(id=row["product_uid"], title=row["product_title"]) for row in csv.DictReader(f)]
    load_s = time.perf_counter() - t
    config = LexicalConfig(stem=not args.no_stem)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        index = LexicalIndex.build(products, Path(tmp) / "lexical", config)
        build_s = time.perf_counter() - t
        size_mb = sum(p.stat().st_size for p in (Path(tmp) / "lexical").rglob("*") if p.is_file()) / 1e6
        print(f"homedepot lexical build: {len(index)} products in {build_s:.1f} s "
              f"({len(index) / build_s:.0f} products/s), index {size_mb:.1f} MB; csv->Product {load_s:.1f} s")

        gains: dict[str, dict[str, float]] = defaultdict(dict)
        with judgments_csv.open(encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                gains[row["query"]][row["product_uid"]] = float(row["relevance"]) - 1.0
        queries = list(gains)[: args.queries or None]

        from shoprec.search.query_understanding import SpellingCorrector

        t = time.perf_counter()
        corrector = SpellingCorrector().fit(p.title for p in products)
        spelling_fit_s = time.perf_counter() - t
        t = time.perf_counter()
        corrected = {q: corrector.correct(q) for q in queries}
        spelling_ms = (time.perf_counter() - t) / len(queries) * 1000
        changed = sum(1 for q in queries if corrected[q] != q)
        print(f"homedepot spelling: fit on titles {spelling_fit_s:.1f} s ({len(corrector.frequency)} words); "
              f"correct() mean {spelling_ms:.2f} ms/query; {changed}/{len(queries)} queries changed")

        index.search("warm up")
        latencies10, latencies100, scores = [], [], []
        for query in queries:
            t = time.perf_counter()
            hits = index.search(corrected[query] if args.spelling else query, k=10, fuzzy=not args.no_fuzzy)
            latencies10.append(time.perf_counter() - t)
            scores.append(ndcg_at_10([h.id for h in hits], gains[query]))
        for query in queries[:1000]:
            t = time.perf_counter()
            index.search(query, k=100, fuzzy=not args.no_fuzzy)
            latencies100.append(time.perf_counter() - t)
        t = time.perf_counter()
        for query in queries[:300]:
            index.facets(query)
        facet_ms = (time.perf_counter() - t) / min(300, len(queries)) * 1000

    from shoprec.search.query_understanding import Suggester

    # Suggestions: the dev queries as a query log (count = judgments per query) + every title.
    t = time.perf_counter()
    suggester = Suggester().fit(((q, len(g)) for q, g in gains.items()), (p.title for p in products))
    suggest_fit_s = time.perf_counter() - t
    prefixes = [q[: max(1, len(q) // 2)] for q in queries[:1000]]
    t = time.perf_counter()
    for prefix in prefixes:
        suggester.suggest(prefix, k=10)
    suggest_ms = (time.perf_counter() - t) / len(prefixes) * 1000
    print(f"homedepot suggester: fit {suggest_fit_s:.1f} s ({len(suggester.queries)} log queries + "
          f"{len(suggester.phrases)} titles); suggest(k=10) mean {suggest_ms:.2f} ms over {len(prefixes)} prefixes")

    def pct(values, q):
        return float(np.percentile(np.array(values) * 1000, q))

    ndcg = float(np.mean(scores))
    print(f"homedepot full nDCG@10 (dev judgments, {len(queries)} queries, lexical only, "
          f"stem={config.stem}, fuzzy={not args.no_fuzzy}, spelling={args.spelling}): {ndcg:.4f}")
    print(f"homedepot lexical latency k=10: mean {statistics.mean(latencies10) * 1000:.2f} ms, "
          f"p50 {pct(latencies10, 50):.2f} ms, p95 {pct(latencies10, 95):.2f} ms, p99 {pct(latencies10, 99):.2f} ms")
    print(f"homedepot lexical latency k=100 (first {len(latencies100)} queries): p50 {pct(latencies100, 50):.2f} ms, "
          f"p95 {pct(latencies100, 95):.2f} ms")
    print(f"homedepot facets (category, brand, price_band; first 300 queries): mean {facet_ms:.2f} ms")
    record = {
        "benchmark": "lexical_homedepot", "dataset": "homedepot", "protocol": "full", "split": "dev",
        "config": {**config.model_dump(), "fuzzy": not args.no_fuzzy, "spelling": args.spelling,
                   "queries": len(queries)},
        "metrics": {"ndcg@10": ndcg, "build_s": build_s, "products": len(products), "index_mb": size_mb,
                    "latency_ms_k10_p50": pct(latencies10, 50), "latency_ms_k10_p95": pct(latencies10, 95),
                    "latency_ms_k100_p50": pct(latencies100, 50), "facets_ms_mean": facet_ms,
                    "spelling_fit_s": spelling_fit_s, "spelling_ms_per_query": spelling_ms,
                    "queries_corrected": changed, "suggest_fit_s": suggest_fit_s, "suggest_ms": suggest_ms},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    out = args.out or Path(tempfile.gettempdir()) / "shoprec-lexical-homedepot.json"
    out.write_text(json.dumps(record, indent=2))
    print(f"record: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
