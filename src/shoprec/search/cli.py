"""`shoprec search "query"`: search the current artifact version from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="what a shopper would type (any language)")
    parser.add_argument("-k", type=int, default=10, help="results per page (default 10)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many results (pagination)")
    parser.add_argument("--artifacts", type=Path, default=None, help="artifact root (default: settings.artifacts_dir)")
    parser.add_argument("--search-dir", type=Path, default=None, help="a search artifact folder to use directly")
    parser.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                        help="category=A > B, brand=..., price_min=..., price_max=..., available=true, or ATTRIBUTE=VALUE (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the ranked list as JSON")
    parser.add_argument("--suggest", action="store_true", help="print completions for the query as a prefix instead")


def parse_filters(pairs: list[str]) -> dict[str, Any] | None:
    """["brand=Acme", "price_max=50"] -> {"brand": "Acme", "price_max": 50.0}; bad pairs raise."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--filter {pair!r}: expected FIELD=VALUE")
        key, value = (s.strip() for s in pair.split("=", 1))
        if key in ("price_min", "price_max"):
            try:
                out[key] = float(value)
            except ValueError:
                raise SystemExit(f"--filter {pair!r}: {key} must be a number") from None
        elif key in ("available", "in_stock"):
            out["available"] = value.lower() in ("1", "true", "yes")
        elif key == "category":
            out["category"] = value
        elif key == "brand":
            out.setdefault("brand", []).append(value)
        else:  # any other field is a product attribute
            out.setdefault("attributes", {}).setdefault(key, []).append(value)
    return out


def run(args: argparse.Namespace) -> int:
    from shoprec.artifacts import ArtifactStore
    from shoprec.errors import NotBuiltError
    from shoprec.search.searcher import Searcher
    from shoprec.settings import get_settings

    settings = get_settings()
    if args.search_dir is not None:
        search_dir = args.search_dir
    else:
        try:
            search_dir = ArtifactStore(args.artifacts or settings.artifacts_dir).current() / "search"
        except NotBuiltError as exc:
            print(f"shoprec search: {exc}", file=sys.stderr)
            return 1
    searcher = Searcher.load(search_dir, settings=settings)
    if args.suggest:
        for text in searcher.suggest(args.query, args.k):
            print(text)
        return 0
    result = searcher.search(args.query, filters=parse_filters(args.filter), k=args.k,
                             offset=args.offset)
    if args.json:
        print(json.dumps({"total": result.total, "info": result.info, "facets": result.facets,
                          "hits": [{"id": h.id, "score": h.score, "reason": h.reason, "title": (h.product or {}).get("title"),
                                    "highlights": h.highlights} for h in result.hits]}, ensure_ascii=False, default=str))
        return 0
    if "did_you_mean" in result.info:
        print(f"did you mean: {result.info['did_you_mean']}")
    if result.info.get("zero_result"):
        print("no exact matches; showing semantically related products")
    print(f"{result.total} results ({result.info.get('took_ms')} ms, ranker {result.info.get('ranker')})")
    for rank, hit in enumerate(result.hits, start=args.offset + 1):
        title = (hit.product or {}).get("title", "")
        print(f"{rank:3d}. {hit.id:>12s}  {hit.score:8.4f}  {title[:70]}  [{hit.reason}]")
    return 0
