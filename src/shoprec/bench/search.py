"""`shoprec bench search`: Home Depot product search — bm25s vs our lexical, semantic and hybrid.

Protocols (../shared/BENCHMARKS.md §2; gain = relevance - 1, so 0..2):
  full    search the whole catalog, top 10, nDCG@10 with unjudged products at gain 0 and the
          ideal DCG from the query's judged products (queries whose judged gains are all 0 have
          no ideal DCG and are left out; the count is printed);
  rerank  order only each query's judged products; nDCG@10 over queries with >= 2 judged
          products of differing relevance.
The learned blend ("hybrid") is evaluated only on held-out queries: query-grouped k-fold
cross-validation, each fold scored by a model trained on the other folds' judgments.
Per-query latency is wall time of one query at a time in this process (query embedding included
for semantic and hybrid), on the first `--latency-queries` queries; the process CPU time of the same
calls is reported beside it (on a busy shared machine wall time mostly measures waiting for a core). The last printed line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path("../shared/data/homedepot")


# -- metrics ---------------------------------------------------------------------------------------

def dcg(gains: Sequence[float], k: int = 10) -> float:
    """Discounted cumulative gain of gains in ranked order: sum g_i / log2(i + 2), i < k (0-based)."""
    g = np.asarray(list(gains)[:k], np.float64)
    return float((g / np.log2(np.arange(2, len(g) + 2))).sum()) if len(g) else 0.0


def full_ndcg(ranked_ids: Sequence[str], judged: Mapping[str, float], k: int = 10) -> float | None:
    """nDCG@k of a ranked list against a query's judged gains; unjudged ids count as gain 0.

    Ideal DCG comes from the judged gains alone. None when the ideal DCG is 0 (nothing to find)."""
    ideal = dcg(sorted(judged.values(), reverse=True), k)
    if ideal <= 0:
        return None
    return dcg([judged.get(i, 0.0) for i in list(ranked_ids)[:k]], k) / ideal


def rerank_ndcg(scores: Sequence[float], gains: Sequence[float], k: int = 10) -> float | None:
    """nDCG@k of the judged products ordered by score (ties keep the given order).

    None unless there are >= 2 products of differing gain."""
    gains = np.asarray(gains, np.float64)
    if len(gains) < 2 or gains.min() == gains.max():
        return None
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    return dcg(gains[order], k) / dcg(np.sort(gains)[::-1], k)


def mean_of(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else float("nan")


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q)) if len(seconds) else float("nan")


# -- data ------------------------------------------------------------------------------------------

def load_products(path: Path):
    """Home Depot products.csv (product_uid, product_title) -> list[Product]; bad rows raise with line."""
    from shoprec.data.schemas import Product
    from shoprec.errors import ShoprecError

    products = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"product_uid", "product_title"} - set(reader.fieldnames or [])
        if missing:
            raise ShoprecError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                products.append(Product(id=row["product_uid"], title=row["product_title"]))
            except Exception as exc:
                raise ShoprecError(f"{path}:{line}: bad product row: {exc}") from exc
    return products


def load_judgments(path: Path, known: set[str]) -> tuple[dict[str, dict[str, float]], int]:
    """query -> {product id: gain} (file order kept); returns also the count of rows whose product
    is not in the catalog (left out)."""
    from shoprec.errors import ShoprecError

    judged: dict[str, dict[str, float]] = defaultdict(dict)
    unknown = 0
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"query", "product_uid", "relevance"} - set(reader.fieldnames or [])
        if missing:
            raise ShoprecError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                relevance = float(row["relevance"])
            except ValueError as exc:
                raise ShoprecError(f"{path}:{line}: relevance {row['relevance']!r} is not a number") from exc
            if not 1.0 <= relevance <= 3.0:
                raise ShoprecError(f"{path}:{line}: relevance {relevance} outside 1..3")
            query, pid = row["query"].strip(), row["product_uid"].strip()
            if not query:
                raise ShoprecError(f"{path}:{line}: empty query")
            if pid not in known:
                unknown += 1
                continue
            judged[query][pid] = relevance - 1.0
    return dict(judged), unknown


# -- engines ---------------------------------------------------------------------------------------

class EngineResult:
    def __init__(self, name: str):
        self.name = name
        self.full: list[float | None] = []
        self.rerank: list[float | None] = []
        self.latency: list[float] = []
        self.cpu: list[float] = []  # process CPU seconds per query (less sensitive to a busy machine)
        self.build_s: float | None = None

    def summary(self) -> dict[str, float]:
        return {"full": mean_of(self.full), "rerank": mean_of(self.rerank),
                "p50_ms": percentile_ms(self.latency, 50), "p99_ms": percentile_ms(self.latency, 99),
                "cpu_p50_ms": percentile_ms(self.cpu, 50), "cpu_p99_ms": percentile_ms(self.cpu, 99)}


def run_bm25s(titles: list[str], ids: list[str], queries: list[str], judged: dict[str, dict[str, float]],
              latency_queries: int) -> EngineResult:
    """bm25s 0.3 with default parameters and English stopwords (the reference baseline)."""
    import bm25s

    result = EngineResult("bm25s")
    t0 = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(titles, stopwords="en", show_progress=False), show_progress=False)
    result.build_s = time.perf_counter() - t0
    vocab = retriever.vocab_dict
    row_of = {pid: i for i, pid in enumerate(ids)}
    for query in queries:
        t, c = time.perf_counter(), time.process_time()
        tokens = [tok for tok in bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
                  if tok in vocab]
        if tokens:
            docs, _ = retriever.retrieve([tokens], k=10, show_progress=False, n_threads=1)
            top = [ids[d] for d in docs[0]]
        else:
            top = []
        if len(result.latency) < latency_queries:
            result.latency.append(time.perf_counter() - t)
            result.cpu.append(time.process_time() - c)
        result.full.append(full_ndcg(top, judged[query]))
        scores = retriever.get_scores(tokens) if tokens else np.zeros(len(ids))
        pids = list(judged[query])
        result.rerank.append(rerank_ndcg([scores[row_of[p]] for p in pids], [judged[query][p] for p in pids]))
    return result


def run_lexical(searcher, queries: list[str], judged, latency_queries: int) -> EngineResult:
    """Our tantivy index alone (BM25 with its analyzers, fuzzy matching on). Its rerank figure is
    filled in by `run_hybrid` from the same lexical top-`depth` lists (deeper products score 0)."""
    result = EngineResult("lexical")
    for query in queries:
        t, c = time.perf_counter(), time.process_time()
        hits = searcher.lexical.search(query, k=10, fuzzy=searcher.config.fuzzy)
        if len(result.latency) < latency_queries:
            result.latency.append(time.perf_counter() - t)
            result.cpu.append(time.process_time() - c)
        result.full.append(full_ndcg([h.id for h in hits], judged[query]))
    return result


def run_semantic(searcher, queries: list[str], judged, latency_queries: int, query_encoder=None
                 ) -> tuple[EngineResult, np.ndarray, list[tuple[float, float]]]:
    """The language model alone: query embedding + vector index (HNSW or exact per size).

    Queries are embedded in batches for quality; latency (embedding one query + vector search) is
    timed one query at a time on the first `latency_queries` queries. `query_encoder` (optional)
    embeds the rest, e.g. a CachedEncoder that keeps query vectors on disk between runs."""
    result = EngineResult("semantic")
    inner = getattr(searcher.encoder, "inner", searcher.encoder)
    query_vectors = np.zeros((len(queries), inner.dim), np.float32)
    encode_s: list[tuple[float, float]] = []  # (wall, cpu) seconds
    for n, query in enumerate(queries[:latency_queries]):
        t, c = time.perf_counter(), time.process_time()
        query_vectors[n] = inner.encode_queries([query])[0]
        encode_s.append((time.perf_counter() - t, time.process_time() - c))
        searcher.vectors.search_one(query_vectors[n], 10)
        result.latency.append(time.perf_counter() - t)
        result.cpu.append(time.process_time() - c)
    if len(queries) > latency_queries:
        query_vectors[latency_queries:] = (query_encoder or inner).encode_queries(queries[latency_queries:])
    for n, query in enumerate(queries):
        qv = query_vectors[n]
        top, _ = searcher.vectors.search_one(qv, 10)
        result.full.append(full_ndcg(top, judged[query]))
        pids = list(judged[query])
        _, vecs = searcher.vectors.vectors_for(pids)
        result.rerank.append(rerank_ndcg(vecs @ qv, [judged[query][p] for p in pids]))
    return result, query_vectors, encode_s


def training_fold_prior(queries: list[str], judged, folds: np.ndarray):
    """Product prior from training-fold judgments only: per product, how often it was judged and
    its mean gain, over the training folds' queries, leaving out the scored query's own judgments."""
    def for_fold(fold: int):
        count: dict[str, int] = defaultdict(int)
        total: dict[str, float] = defaultdict(float)
        train = set(np.flatnonzero(folds != fold).tolist())
        for q in train:
            for pid, gain in judged[queries[q]].items():
                count[pid] += 1
                total[pid] += gain

        def prior(q: int, ids: list[str]) -> np.ndarray:
            own = judged[queries[q]] if q in train else {}
            out = np.zeros((len(ids), 2), np.float32)
            for i, pid in enumerate(ids):
                c = count.get(pid, 0) - (1 if pid in own else 0)
                s = total.get(pid, 0.0) - own.get(pid, 0.0)
                out[i] = (c, s / c if c > 0 else np.nan)
            return out
        return prior
    return for_fold


def run_hybrid(searcher, queries: list[str], judged, query_vectors: np.ndarray, encode_s: list[tuple[float, float]],
               folds: np.ndarray, seed: int, with_prior: bool, spelling: bool = True) -> dict[str, Any]:
    """RRF and the learned blend (held-out folds only) over the searcher's candidate sets.

    spelling: correct the query with the searcher's speller (fitted on catalog text only) for the
    lexical side and the match features; the query vector is the original query's."""
    from shoprec.search.hybrid import PRIOR_COLUMNS, BlendConfig, LearnedBlend

    full_sets, rerank_sets, retrieve_s, retrieve_cpu = [], [], [], []
    corrected = 0
    for n, query in enumerate(queries):
        t, c = time.perf_counter(), time.process_time()
        text = searcher.query_data.correct(query) if spelling else query
        cs = searcher.retrieve(text, query_vector=query_vectors[n])
        if n < len(encode_s):
            retrieve_s.append(time.perf_counter() - t + encode_s[n][0])
            retrieve_cpu.append(time.process_time() - c + encode_s[n][1])
        full_sets.append(cs)
        corrected += text != query
        rerank_sets.append(searcher.retrieve(text, query_vector=query_vectors[n], restrict_to=list(judged[query]),
                                             reuse=cs))
        if (n + 1) % 1000 == 0:
            print(f"  hybrid candidates: {n + 1}/{len(queries)} queries", file=sys.stderr, flush=True)

    rrf = EngineResult("rrf")
    lexical_rerank = []
    for n, query in enumerate(queries):
        cs = full_sets[n]
        rrf.full.append(full_ndcg(cs.ids[:10], judged[query]))
        rs = rerank_sets[n]
        rrf.rerank.append(rerank_ndcg(rs.rrf, [judged[query][p] for p in rs.ids]))
        lexical_rerank.append(rerank_ndcg(rs.column("lex_score"), [judged[query][p] for p in rs.ids]))
    rrf.latency, rrf.cpu = retrieve_s, retrieve_cpu

    gains = [np.array([judged[q].get(pid, 0.0) for pid in cs.ids]) for q, cs in zip(queries, full_sets)]
    prior_for = training_fold_prior(queries, judged, folds) if with_prior else None
    config = BlendConfig(seed=seed, exclude=[] if with_prior else ["prior_count", "prior_gain"])
    out: dict[str, Any] = {"rrf": rrf, "lexical_rerank": lexical_rerank}
    variants = [("hybrid", config, None)] + ([("hybrid_prior", config, prior_for)] if with_prior else [])
    if with_prior:
        variants[0] = ("hybrid", BlendConfig(seed=seed, exclude=["prior_count", "prior_gain"]), None)
    for name, cfg, prior in variants:
        result = EngineResult(name)
        result.full = [None] * len(queries)
        result.rerank = [None] * len(queries)
        result.latency = [0.0] * len(retrieve_s)
        result.cpu = [0.0] * len(retrieve_s)
        importances = []
        t_train = 0.0
        for fold in sorted(set(folds.tolist())):
            train = np.flatnonzero(folds != fold).tolist()
            test = np.flatnonzero(folds == fold).tolist()
            prior_of = prior(fold) if prior is not None else None

            def rows(q: int, cs) -> np.ndarray:
                if prior_of is None:
                    return cs.features
                x = cs.features.copy()
                x[:, PRIOR_COLUMNS] = prior_of(q, cs.ids)
                return x

            t = time.perf_counter()
            blend = LearnedBlend(cfg).fit([rows(q, full_sets[q]) for q in train], [gains[q] for q in train])
            t_train += time.perf_counter() - t
            importances.append(blend.feature_importance())
            for q in test:
                x = rows(q, full_sets[q])
                t, c = time.perf_counter(), time.process_time()
                scores = blend.predict(x)
                order = np.argsort(-scores, kind="stable")
                top = [full_sets[q].ids[i] for i in order[:10]]
                if q < len(retrieve_s):
                    result.latency[q] = retrieve_s[q] + time.perf_counter() - t
                    result.cpu[q] = retrieve_cpu[q] + time.process_time() - c
                result.full[q] = full_ndcg(top, judged[queries[q]])
                rs = rerank_sets[q]
                result.rerank[q] = rerank_ndcg(blend.predict(rows(q, rs)), [judged[queries[q]][p] for p in rs.ids])
        mean_importance: dict[str, float] = defaultdict(float)
        for imp in importances:
            for key, value in imp.items():
                mean_importance[key] += value / len(importances)
        result.build_s = t_train
        out[name] = result
        out[f"{name}_importance"] = dict(sorted(mean_importance.items(), key=lambda p: -p[1]))
    out["spelling_corrected"] = corrected
    out["candidates_mean"] = float(np.mean([len(cs.ids) for cs in full_sets]))
    out["candidate_recall"] = mean_of([
        (sum(g for pid, g in judged[q].items() if pid in set(cs.ids)) / s) if (s := sum(judged[q].values())) > 0 else None
        for q, cs in zip(queries, full_sets)])
    return out


# -- command ---------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--products", type=Path, default=DEFAULT_DATA / "products.csv")
    parser.add_argument("--judgments", type=Path, default=DEFAULT_DATA / "judgments_dev.csv")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: settings.embedding_cache_dir)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the search artifacts are built (default: a temp dir)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-queries", type=int, default=None, help="evaluate a seeded sample of this many queries")
    parser.add_argument("--limit-products", type=int, default=None,
                        help="development only: keep the first N products (judgments of others are left out)")
    parser.add_argument("--latency-queries", type=int, default=1000,
                        help="time single queries on the first N evaluated queries (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="embedding worker processes")
    parser.add_argument("--depth", type=int, default=100, help="lexical and semantic candidates per query for the hybrid")
    parser.add_argument("--prior", action="store_true",
                        help="also report hybrid_prior: the blend plus a product prior from training-fold judgments")
    parser.add_argument("--no-spelling", action="store_true", help="hybrid: do not spell-correct queries")
    parser.add_argument("--skip-rebuild", action="store_true", help="skip the 1%%-changed rebuild timing")
    parser.add_argument("--record", type=Path, default=None, help="also write the JSON record to this file")


def run(args: argparse.Namespace) -> int:
    from shoprec.search.hybrid import query_folds
    from shoprec.search.searcher import Searcher, SearcherConfig
    from shoprec.settings import get_settings
    from shoprec.text.encoder import CachedEncoder, get_encoder

    if not args.products.exists() or not args.judgments.exists():
        print(f"bench search: data not found ({args.products}, {args.judgments}); skipped", file=sys.stderr)
        return 0
    settings = get_settings()
    started = time.perf_counter()
    products = load_products(args.products)
    if args.limit_products:
        products = products[: args.limit_products]
    ids = [p.id for p in products]
    judged, unknown = load_judgments(args.judgments, set(ids))
    queries = list(judged)
    if args.limit_queries and args.limit_queries < len(queries):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(queries), args.limit_queries, replace=False))
        queries = [queries[i] for i in pick]
    print(f"dataset: Home Depot, {len(products)} products, {len(queries)} queries "
          f"({sum(len(judged[q]) for q in queries)} judgments; {unknown} rows for unknown products left out); "
          f"seed {args.seed}, {args.folds}-fold query-grouped CV for the blend", file=sys.stderr)

    results: dict[str, EngineResult] = {}
    results["bm25s"] = run_bm25s([p.title for p in products], ids, queries, judged, args.latency_queries)
    print(f"  bm25s done ({results['bm25s'].build_s:.1f}s index)", file=sys.stderr, flush=True)

    cache_dir = args.cache_dir or settings.embedding_cache_dir
    encoder = CachedEncoder(get_encoder(settings.encoder), cache_dir, workers=args.workers)
    config = SearcherConfig.from_settings(settings).model_copy(update={"lexical_k": args.depth, "semantic_k": args.depth})
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="shoprec-bench-search-"))
    t = time.perf_counter()
    searcher = Searcher.build(products, work / "build1", encoder=encoder, settings=settings, config=config)
    build_s = time.perf_counter() - t
    build_info = searcher.build_info()
    print(f"  build: {build_s:.1f}s ({build_info['embedded']} texts embedded; steps {build_info['timings']})",
          file=sys.stderr, flush=True)
    rebuild: dict[str, Any] = {}
    if not args.skip_rebuild:
        changed = [p.model_copy(update={"title": p.title + " (new model)"}) if i % 100 == 0 else p
                   for i, p in enumerate(products)]
        t = time.perf_counter()
        rebuilt = Searcher.build(changed, work / "build2", encoder=encoder, settings=settings, config=config)
        rebuild = {"seconds": round(time.perf_counter() - t, 2), "changed": sum(1 for i in range(len(products)) if i % 100 == 0),
                   "embedded": rebuilt.build_info()["embedded"], "steps": rebuilt.build_info()["timings"]}
        del rebuilt
        print(f"  rebuild with 1% changed: {rebuild}", file=sys.stderr, flush=True)

    results["lexical"] = run_lexical(searcher, queries, judged, args.latency_queries)
    results["lexical"].build_s = build_info["timings"].get("lexical_s")
    print("  lexical done", file=sys.stderr, flush=True)
    query_encoder = CachedEncoder(encoder.inner, cache_dir, workers=args.workers, persist_queries=True)
    semantic, query_vectors, encode_s = run_semantic(searcher, queries, judged, args.latency_queries, query_encoder)
    semantic.build_s = build_info["timings"].get("embed_s", 0) + build_info["timings"].get("vector_index_s", 0)
    results["semantic"] = semantic
    print("  semantic done", file=sys.stderr, flush=True)
    folds = query_folds(queries, args.folds, args.seed)
    hybrid = run_hybrid(searcher, queries, judged, query_vectors, encode_s, folds, args.seed, args.prior,
                        spelling=not args.no_spelling)
    results["lexical"].rerank = hybrid["lexical_rerank"]
    results["rrf"] = hybrid["rrf"]
    results["hybrid"] = hybrid["hybrid"]
    if args.prior:
        results["hybrid_prior"] = hybrid["hybrid_prior"]

    summaries = {name: r.summary() for name, r in results.items()}
    n_full = sum(1 for v in results["bm25s"].full if v is not None)
    n_rerank = sum(1 for v in results["bm25s"].rerank if v is not None)
    print(f"\nHome Depot product search, {len(queries)} queries (full: {n_full} with a positive ideal DCG; "
          f"rerank: {n_rerank} with >= 2 judged of differing relevance); seed {args.seed}")
    print("hybrid = LightGBM LambdaRank blend scored ONLY on held-out queries "
          f"({args.folds}-fold query-grouped cross-validation; each fold's model never saw its queries)")
    if args.prior:
        print("hybrid_prior = same, plus a product prior (judgment count, mean gain) from the TRAINING folds' judgments only")
    print(f"{'engine':14s} {'full nDCG@10':>13s} {'rerank nDCG@10':>15s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'cpu p50':>8s} {'cpu p99':>8s}")
    for name, s in summaries.items():
        print(f"{name:14s} {s['full']:13.4f} {s['rerank']:15.4f} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} "
              f"{s['cpu_p50_ms']:8.2f} {s['cpu_p99_ms']:8.2f}")
    print(f"hybrid / bm25s full nDCG@10: {summaries['hybrid']['full'] / summaries['bm25s']['full']:.3f}x; "
          f"candidates per query {hybrid['candidates_mean']:.0f}, judged-gain recall of candidates {hybrid['candidate_recall']:.3f}, "
          f"{hybrid['spelling_corrected']} queries spell-corrected (speller fitted on catalog text only)")
    top_features = list(hybrid["hybrid_importance"].items())[:10]
    print("blend feature importance (gain share, mean over folds): " + ", ".join(f"{k} {v:.3f}" for k, v in top_features))
    print(f"build: {build_s:.1f}s first build ({build_info['embedded']} embedded), rebuild 1% changed: "
          f"{rebuild.get('seconds', 'skipped')}s; latencies are single-query wall times on this machine "
          f"({os.cpu_count()} cores, shared) and include query embedding for semantic/hybrid")

    engines = ["bm25s", "lexical", "semantic", "hybrid"]
    record = {
        "full_ndcg10": {e: round(summaries[e]["full"], 4) for e in engines},
        "rerank_ndcg10": {e: round(summaries[e]["rerank"], 4) for e in engines},
        "p50_ms": {e: round(summaries[e]["p50_ms"], 2) for e in engines},
        "p99_ms": {e: round(summaries[e]["p99_ms"], 2) for e in engines},
        "cpu_p50_ms": {e: round(summaries[e]["cpu_p50_ms"], 2) for e in engines},
        "cpu_p99_ms": {e: round(summaries[e]["cpu_p99_ms"], 2) for e in engines},
        "latency_queries": min(args.latency_queries, len(queries)),
        "rrf": {"full_ndcg10": round(summaries["rrf"]["full"], 4), "rerank_ndcg10": round(summaries["rrf"]["rerank"], 4)},
        "build_s": {"first": round(build_s, 2), **{k: round(v, 2) for k, v in build_info["timings"].items()},
                    "bm25s_index": round(results["bm25s"].build_s or 0, 2), "rebuild_1pct": rebuild.get("seconds")},
        "hybrid_vs_bm25s": round(summaries["hybrid"]["full"] / summaries["bm25s"]["full"], 3),
        "n_queries": len(queries), "folds": args.folds, "seed": args.seed, "depth": args.depth,
        "heldout_only": True, "spelling_corrected": hybrid["spelling_corrected"], "vector_index": build_info["vector_index"],
        "feature_importance": dict(list(hybrid["hybrid_importance"].items())[:12]),
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    if args.prior:
        record["hybrid_prior"] = {"full_ndcg10": round(summaries["hybrid_prior"]["full"], 4),
                                  "rerank_ndcg10": round(summaries["hybrid_prior"]["rerank"], 4),
                                  "note": "product prior from training-fold judgments only"}
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(registry_records(record), indent=2))
    print(json.dumps(record))
    return 0


def registry_records(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One run per engine for `shoprec report --import` (kind bench_search), with provenance."""
    from shoprec.evaluation.registry import provenance

    config = {k: record[k] for k in ("n_queries", "folds", "seed", "depth", "heldout_only", "vector_index") if k in record}
    stamp = provenance()
    return [{"kind": "bench_search", "name": engine, "config": config,
             "metrics": {key: record[key][engine] for key in ("full_ndcg10", "rerank_ndcg10", "p50_ms", "p99_ms",
                                                              "cpu_p50_ms", "cpu_p99_ms")},
             "timings": {"wall_s": record.get("wall_s")},
             "extra": {"hybrid_vs_bm25s": record.get("hybrid_vs_bm25s")}, **stamp}
            for engine in record["full_ndcg10"]]
