"""`shoprec bench scenarios`: one `recommend` call per scenario on the demo shop, timed in-process.

Generates the demo shop (or reuses `--workdir`), ingests and builds it, then for each scenario
times `--calls` requests for random shoppers / items / carts and reports p50/p99 in ms, prints one
example list with its explanations, and checks that profiles recover the simulator's hidden
tastes (share of shoppers whose profile top category is one of their hidden top categories).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from shoprec.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--calls", type=int, default=300, help="timed requests per scenario")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("shoprec-data/bench-scenarios"),
                        help="where the demo shop, store and artifacts live (reused when already built)")


def prepare(workdir: Path, n_products: int, n_users: int, seed: int):
    """The demo shop taken through ingest and build under `workdir` (built once); returns (shop, settings)."""
    from shoprec.artifacts import ArtifactStore
    from shoprec.build import build
    from shoprec.data.demo import generate_demo
    from shoprec.data.ingest import ingest_file
    from shoprec.errors import NotBuiltError

    workdir = workdir.resolve()
    settings = Settings(store_url=f"sqlite:///{workdir / 'shop.db'}", artifacts_dir=workdir / "artifacts",
                        embedding_cache_dir=workdir / "embedding-cache")
    shop = generate_demo(n_products=n_products, n_users=n_users, seed=seed)
    try:
        ArtifactStore(settings.artifacts_dir).current()
        return shop, settings
    except NotBuiltError:
        pass
    shop.write(workdir / "demo")
    for kind, name in (("catalog", "products.jsonl"), ("events", "events.jsonl")):
        ingest_file(workdir / "demo" / name, kind=kind, store_url=settings.store_url, settings=settings)
    build(settings)
    return shop, settings


def profile_recovery(engine, shop, max_users: int = 2000) -> dict[str, float]:
    """Share of shoppers whose profile's top category is among their hidden top categories."""
    hits = hits_any = n = 0
    for user in shop.users[:max_users]:
        top = engine.profile(user.id).get("top_categories") or []
        if not top:
            continue
        hidden = {path.split(" > ")[-1] for path in shop.top_categories(shop.user_index(user.id))}
        labels = [str(c[0] if isinstance(c, (list, tuple)) else c).split(" > ")[-1] for c in top]
        n += 1
        hits += labels[0] in hidden
        hits_any += bool(hidden & set(labels[:3]))
    return {"users": n, "top1_in_hidden": round(hits / max(n, 1), 4), "top3_overlap": round(hits_any / max(n, 1), 4)}


def run(args: argparse.Namespace) -> int:
    from shoprec.engine import Engine, limit_compute_threads

    t0 = time.perf_counter()
    shop, settings = prepare(args.workdir, args.products, args.users, args.seed)
    print(f"demo shop ready in {time.perf_counter() - t0:.1f}s ({args.workdir})")
    limit_compute_threads(settings.service.compute_threads)  # as `shoprec serve` runs it
    engine = Engine.open(settings)
    rng = np.random.default_rng(args.seed)
    users = [u.id for u in shop.users]
    items = [p.id for p in shop.products]
    latency: dict[str, dict[str, float]] = {}
    examples: dict[str, list[dict[str, str]]] = {}
    for name, spec in sorted(engine.scenarios.items()):
        def call():
            user = users[int(rng.integers(len(users)))]
            item = items[int(rng.integers(len(items)))] if spec.needs == "item" else None
            cart = [items[int(i)] for i in rng.integers(len(items), size=3)] if spec.needs == "cart" else None
            if name == "welcome":
                user = f"new-visitor-{int(rng.integers(1 << 30))}"
            return engine.recommend(user, name, item=item, cart=cart, k=args.k, context={"locale": "en", "device": "mobile"})

        for _ in range(10):  # warm-up: first-touch caches and lazy imports
            call()
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            result = call()
            times.append((time.perf_counter() - start) * 1000)
        latency[name] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                         "p99_ms": round(float(np.percentile(times, 99)), 2)}
        examples[name] = [{"id": h.id, "title": str((h.product or {}).get("title", ""))[:60], "reason": h.reason}
                          for h in result.hits[:3]]
        print(f"{name:28s} p50 {latency[name]['p50_ms']:7.2f} ms  p99 {latency[name]['p99_ms']:7.2f} ms")
        for example in examples[name]:
            print(f"    {example['id']}  {example['title']:60s}  <- {example['reason']}")
    recovery = profile_recovery(engine, shop)
    print(f"profile recovery: {recovery}")
    engine.close()
    print(json.dumps({"products": args.products, "users": args.users, "calls": args.calls,
                      "latency": latency, "profile_recovery": recovery, "examples": examples}, ensure_ascii=False))
    return 0
