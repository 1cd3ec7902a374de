"""Search examples on the demo shop: cross-language, typo, synonym, filter and facet queries.

    python benchmarks/search/demo_examples.py [--workdir shoprec-data/bench-scenarios]

Uses (or first builds) the demo shop of `shoprec bench scenarios` and prints the top results of
each query with the reason it matched, and for cross-language queries the rank of the first
product in the other language.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shoprec.bench.scenarios import prepare
from shoprec.engine import Engine
from shoprec.search.filters import SearchFilters

CROSS_LANGUAGE = [("无线耳机", "en"), ("跑鞋", "en"), ("狗粮", "en"), ("wireless headphones", "zh")]
QUERIES = ["wirless earbudz", "trainers", "sneakers"]
FILTERED = [{"category": "Electronics", "price_max": 60, "available": True},
            {"brand": ["Lumina"], "attributes": {"color": "black"}}]


def show(engine: Engine, query: str, filters: dict | None = None, k: int = 5, other_language: str | None = None) -> None:
    result = engine.search(query, filters=SearchFilters(**filters) if filters else None, k=100 if other_language else k)
    notes = {key: value for key, value in result.info.items() if key in ("did_you_mean", "expanded_query", "fallback", "browse")}
    print(f"\n{query!r} {filters or ''} total={result.total} {notes}")
    for rank, hit in enumerate(result.hits[:k], 1):
        product = hit.product or {}
        print(f"  {rank}. {hit.id} {str(product.get('title', ''))[:70]} | {product.get('brand', '')} | "
              f"{product.get('price', '')} | {hit.reason}")
    if other_language:
        first = next((i for i, h in enumerate(result.hits) if (h.product or {}).get("language") == other_language), None)
        print(f"  first '{other_language}' product at rank {None if first is None else first + 1} of {len(result.hits)}")
    if filters:
        print("  facets:", {name: dict(list(counts.items())[:6]) for name, counts in result.facets.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("shoprec-data/bench-scenarios"))
    args = parser.parse_args()
    _, settings = prepare(args.workdir, 5000, 2000, 42)
    engine = Engine.open(settings)
    for query, language in CROSS_LANGUAGE:
        show(engine, query, other_language=language)
    for query in QUERIES:
        show(engine, query)
    for filters in FILTERED:
        show(engine, "", filters, k=3)


if __name__ == "__main__":
    main()
