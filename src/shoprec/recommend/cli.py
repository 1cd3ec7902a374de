"""`shoprec recommend USER [--scenario home] [--item ID] [--cart ID,ID]`: recommendations from the current version."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", nargs="?", default=None, help="user id (raw; pseudonymised by the engine)")
    parser.add_argument("--scenario", default="home", help="home, similar, frequently_bought_together, cart, welcome, cross_category")
    parser.add_argument("--item", help="the item page (similar, frequently_bought_together)")
    parser.add_argument("--cart", help="comma-separated cart item ids")
    parser.add_argument("--locale", help="context locale, e.g. zh-CN")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--profile", action="store_true", help="print the user's profile instead")


def run(args: argparse.Namespace) -> int:
    from shoprec.engine import Engine

    engine = Engine.open()
    if engine.version is None:
        print("no artifact version: run `shoprec build` first")
        return 1
    if args.profile:
        print(json.dumps(engine.profile(args.user), indent=2, ensure_ascii=False, default=str))
        return 0
    context = {"locale": args.locale} if args.locale else None
    cart = args.cart.split(",") if args.cart else None
    result = engine.recommend(args.user, args.scenario, k=args.k, item=args.item, cart=cart, context=context)
    if args.json:
        print(json.dumps([{"id": h.id, "score": h.score, "reason": h.reason} for h in result.hits], ensure_ascii=False))
        return 0
    print(f"{args.scenario} for {args.user or 'anonymous'} (version {engine.version})")
    for rank, hit in enumerate(result.hits, 1):
        product = hit.product or {}
        print(f"{rank:3d}. {hit.id:14s} {str(product.get('title', ''))[:60]:60s}  {hit.reason}")
    return 0
