"""End to end on a small demo shop: ingest -> store -> build -> Engine (search, scenarios, online loop)."""

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from shoprec.data.schemas import Event, Product
from shoprec.engine import Engine
from shoprec.result_cache import ResultCache


@pytest.fixture(scope="module")
def demo_engine(demo_shop):
    shop, settings = demo_shop
    engine = Engine.open(settings)
    yield shop, engine
    engine.close()


def _now():
    return datetime.now(timezone.utc)


def test_manifest_records_every_step(demo_engine):
    _, engine = demo_engine
    from shoprec.artifacts import ArtifactStore

    manifest = ArtifactStore(engine.settings.artifacts_dir).manifest()
    for step in ("catalog", "interactions", "search", "model:sasrec", "graph_and_profiles", "ranker"):
        assert step in manifest["steps"], step
    assert manifest["counts"]["products"] == 400
    assert engine.version == manifest["version"]
    # every build is a run in the experiment registry
    from shoprec.evaluation.registry import list_runs

    runs = [r for r in list_runs(engine.store, "build") if r["name"] == engine.version]
    assert len(runs) == 1 and "ranker" in runs[0]["metrics"] and runs[0]["timings"]["search"] > 0
    # the search blend is learned from clicks on results when it beats reciprocal-rank fusion
    blend = manifest["steps"]["search"]["learned_blend"]
    if blend["used"]:
        assert blend["heldout_ndcg10_blend"] > blend["heldout_ndcg10_rrf"]
        assert (engine.settings.artifacts_dir / "current" / "search" / "blend" / "blend.lgb").exists()
    else:
        assert blend["why"] or blend["heldout_ndcg10_blend"] <= blend["heldout_ndcg10_rrf"]


def _fresh_precomputed_user(shop, engine) -> str:
    rows = engine._served.precomputed["home"].rows
    return next(u.id for u in shop.users
                if engine.pseudonym(u.id) in rows and engine.pseudonym(u.id) not in engine._user_state)


def _assert_same_lists(answer, live):
    # The build scored with its own thread count, so near-ties may come out in another order.
    assert len(set(answer.ids) & set(live.ids)) >= 0.9 * len(live.ids) and abs(answer.total - live.total) <= 2
    ours, theirs = {h.id: h for h in answer.hits}, {h.id: h for h in live.hits}
    for item in set(ours) & set(theirs):
        a, b = ours[item], theirs[item]
        assert a.score == pytest.approx(b.score, rel=1e-3) and a.reason == b.reason
        assert a.sources == pytest.approx({k: v for k, v in b.sources.items() if v}, rel=1e-3)


def test_precomputed_lists_are_what_the_live_path_answers(demo_engine):
    shop, engine = demo_engine
    served = engine._served
    home, similar = served.precomputed["home"], served.precomputed["similar"]
    assert len(home.subjects) >= 10 and len(similar.subjects) >= 10
    assert home.k == similar.k == engine.settings.recommend.default_k
    user = _fresh_precomputed_user(shop, engine)
    answer = engine.recommend(user, "home", k=home.k)
    assert answer.info.get("precomputed") is True
    pid = engine.pseudonym(user)
    _assert_same_lists(answer, engine._rank(served, engine.scenarios["home"], engine._request(served, pid, [], None),
                                            pid, home.k))
    item = similar.subjects[0]
    answer = engine.recommend(None, "similar", item=item, k=similar.k)
    assert answer.info.get("precomputed") is True
    _assert_same_lists(answer, engine._rank(served, engine.scenarios["similar"],
                                            engine._request(served, None, [item], None), None, similar.k))
    assert not engine.recommend(user, "similar", item=item, k=similar.k).info.get("precomputed")  # a shopper's own

def test_every_scenario_answers_with_reasons(demo_engine):
    shop, engine = demo_engine
    user = shop.users[0].id
    item = shop.products[0].id
    for scenario, kwargs in [("home", {}), ("welcome", {}), ("cross_category", {}),
                             ("similar", {"item": item}), ("frequently_bought_together", {"item": item}),
                             ("cart", {"cart": [item]})]:
        result = engine.recommend(user, scenario, k=10, **kwargs)
        ids = result.ids
        assert ids, scenario
        assert len(ids) == len(set(ids)), f"{scenario} repeats items"
        assert all(h.reason for h in result.hits), scenario
        if "item" in kwargs:
            assert item not in ids


def test_reasons_name_the_evidence(demo_engine):
    shop, engine = demo_engine
    item = shop.products[0]
    hits = engine.recommend(None, "frequently_bought_together", k=10, item=item.id).hits
    assert hits
    for hit in hits:
        strongest = max(hit.sources, key=hit.sources.get)
        expected = {"graph:co_buy": "frequently bought together with", "seeds:itemknn": "also liked this"}.get(strongest)
        if expected:
            assert expected in hit.reason and item.title in hit.reason, (strongest, hit.reason)


def test_home_excludes_seen_and_unavailable(demo_engine):
    shop, engine = demo_engine
    served = engine._served
    user = shop.users[1].id
    seen = {served.item_ids[i] for i in served.sequences[served.user_index[engine.pseudonym(user)]]}
    ids = engine.recommend(user, "home", k=20).ids
    assert not seen & set(ids)
    unavailable = {p.id for p in shop.products if not p.available}
    assert not unavailable & set(ids)


def test_an_event_changes_the_next_response(demo_engine):
    shop, engine = demo_engine
    newcomer = "brand-new-visitor"
    before = engine.recommend(newcomer, "welcome", k=10).ids
    clicked = shop.products[5].id
    engine.record_events([Event(event_id="e2e-click-1", user_id=newcomer, item_id=clicked, type="click", timestamp=_now())])
    after = engine.recommend(newcomer, "welcome", k=10)
    assert after.ids != before
    assert clicked not in after.ids
    assert engine.profile(newcomer)["session_items"] == [clicked]
    assert any("because you viewed" in h.reason for h in after.hits)


def test_new_product_is_searchable_and_recommendable_at_once(demo_engine):
    shop, engine = demo_engine
    base = shop.products[7]
    twin = Product(id="cold-start-1", title=base.title + " Pro", description=base.description, category=base.category,
                   brand=base.brand, price=base.price, language=base.language)
    assert "cold-start-1" not in engine.search(twin.title, k=10).ids  # now a reusable answer...
    precomputed = engine._served.precomputed["similar"]
    assert base.id in precomputed.rows and engine.recommend(None, "similar", item=base.id, k=20).info.get("precomputed")
    vectors = engine._served.item_vectors
    unrelated = min(precomputed.subjects, key=lambda i: float(vectors[engine._served.item_index[i]]
                                                              @ vectors[engine._served.item_index[base.id]]))
    engine.upsert_products([twin])
    assert "cold-start-1" in engine.search(twin.title, k=10).ids  # ...that the upsert retired
    similar = engine.recommend(None, "similar", item=base.id, k=20)
    assert "cold-start-1" in similar.ids and not similar.info.get("precomputed")  # the twin's neighbourhood is live
    assert engine.recommend(None, "similar", item=unrelated, k=20).info.get("precomputed")  # the rest stays precomputed


def test_search_finds_products_and_forget_user_removes_everything(demo_engine):
    shop, engine = demo_engine
    feeds = engine._served.precomputed["home"]
    forgotten = next(u.id for u in shop.users if engine.pseudonym(u.id) in feeds.rows)
    row = feeds.rows[engine.pseudonym(forgotten)]
    engine.forget_user(forgotten)
    assert engine.pseudonym(forgotten) not in feeds.rows and (feeds.items[row] == -1).all()
    product = shop.products[11]
    assert product.id in engine.search(product.title, k=5).ids
    user = shop.users[2].id
    engine.record_events([Event(event_id="e2e-view-2", user_id=user, item_id=product.id, type="view", timestamp=_now())])
    report = engine.forget_user(user)
    assert report["rows_removed"] > 0
    profile = engine.profile(user)
    assert profile["session_items"] == [] and profile.get("interactions", 0) == 0
    events = engine.store.read_events()
    assert engine.pseudonym(user) not in set(events.column("user_id").to_pylist())


def test_reused_answers_end_with_the_users_next_event(demo_engine):
    shop, engine = demo_engine
    user = _fresh_precomputed_user(shop, engine)
    cache = engine._served.results

    def reused(call) -> tuple[object, bool]:
        hits = cache.hits
        return call(), cache.hits == hits + 1

    first = engine.recommend(user, "home", k=7)
    again, was_reused = reused(lambda: engine.recommend(user, "home", k=7))
    assert was_reused and again.ids == first.ids and [h.reason for h in again.hits] == [h.reason for h in first.hits]
    assert again.hits[0].product == engine._served.products[first.ids[0]]  # products come back with the answer
    query = shop.products[3].title
    searched = engine.search(query, user=user, k=5)
    again, was_reused = reused(lambda: engine.search(query, user=user, k=5))
    assert was_reused and again.ids == searched.ids and again.facets == searched.facets
    clicked = first.ids[0]
    engine.record_events([Event(event_id="reuse-click-1", user_id=user, item_id=clicked, type="click", timestamp=_now())])
    after, was_reused = reused(lambda: engine.recommend(user, "home", k=7))
    assert not was_reused and clicked not in after.ids
    assert not reused(lambda: engine.search(query, user=user, k=5))[1]
    other = next(u.id for u in shop.users if u.id != user)
    engine.recommend(other, "home", k=7)
    assert reused(lambda: engine.recommend(other, "home", k=7))[1]  # other shoppers keep theirs


def test_past_queries_are_embedded_at_build(demo_engine, monkeypatch):
    _, engine = demo_engine
    encoder = engine._served.searcher.encoder
    known = encoder._known_queries
    assert len(known) >= 10
    query, vector = next(iter(known.items()))
    np.testing.assert_allclose(vector, encoder.inner.encode_queries([query])[0], atol=1e-5)
    calls = []
    monkeypatch.setattr(encoder.inner, "encode_queries", lambda texts: calls.append(list(texts)))
    engine._served.searcher.search(query, k=5)
    assert not calls  # served from the build's vectors, without the language model
    fresh = Engine.open(engine.settings)  # (earlier tests changed the catalog, which retires warmed candidates)
    try:
        searcher = fresh._served.searcher
        assert searcher.frequent_queries[0] in known and len(searcher._retrieved) >= len(searcher.frequent_queries)
        searcher.search(searcher.frequent_queries[0], k=5)
        assert searcher._retrieved.stats()["hits"] == 1  # retrieved before the version was served
    finally:
        fresh.close()


def test_a_retired_version_is_freed_without_the_garbage_collector(demo_engine):
    """A swap freezes the new version and never collects (a full collection pauses a worker for
    seconds at 100,000 products): the previous version must die by reference counting alone, so
    nothing in it may sit in a reference cycle."""
    import gc
    import weakref

    from shoprec.engine import Served

    shop, _ = demo_engine
    engine = Engine.open(demo_engine[1].settings)
    try:
        assert gc.get_freeze_count() > 0  # the loaded version is out of the collector's way
        user = shop.users[0].id
        engine.search("shoes", user=user)
        engine.recommend(user, "home")
        engine.recommend(None, "similar", item=engine._served.item_ids[0])
        served = engine._served
        alive = [weakref.ref(x) for x in (served, served.searcher, served.personalisation, served.item_vectors,
                                          served.generators["model:sasrec"].model.network,
                                          served.generators["model:sasrec"].model.network.items)]
        del served
        gc.disable()
        try:
            engine._served = Served.empty()  # what a swap does
            assert [ref() is None for ref in alive] == [True] * len(alive)
        finally:
            gc.enable()
    finally:
        engine.close()


def test_a_swap_retires_the_previous_version_piecemeal_and_frees_it(demo_engine):
    import weakref

    _, settings = demo_engine[0], demo_engine[1].settings
    engine = Engine.open(settings)
    try:
        engine.retire_grace_s = 0.0
        old = engine._served
        engine.search("shoes", k=5)  # something in the old version's candidate cache
        alive = [weakref.ref(x) for x in (old, old.searcher, old.searcher._retrieved)]
        old.version = "an older version"  # the next reload swaps in `current` again
        del old
        assert engine.reload()
        assert engine._retiring is not None
        engine._retiring.join(30)
        assert [ref() is None for ref in alive] == [True] * len(alive)
        assert engine.search("shoes", k=5).ids  # the new version serves
    finally:
        engine.close()


def _with_hnsw_graphs(engine, folder: Path):
    """A copy of the served version with HNSW graphs forced over its item tables (as above
    `ann_min_items`), loaded; and the graph step's report."""
    import shutil

    from shoprec.build import _build_item_graphs
    from shoprec.engine import Served

    settings = engine.settings.model_copy(update={"recommend": engine.settings.recommend.model_copy(
        update={"ann_min_items": 100})})
    version = folder / "version"
    shutil.copytree(engine._served.path, version)
    report: dict = {}
    _build_item_graphs(version, settings, report)
    return Served.load(version), report


def test_large_catalogs_retrieve_from_hnsw_graphs_with_the_exact_answers(demo_engine, tmp_path):
    """Above `ann_min_items` the build writes HNSW graphs over the item tables the scenarios search;
    serving then retrieves from them. Forced on the 400-product shop, they find what exact
    scoring finds."""
    _, engine = demo_engine
    approximate, report = _with_hnsw_graphs(engine, tmp_path)
    assert {"content_profile", "model-sasrec", "model-als", "unit-content"} <= set(report)
    for name, figures in report.items():
        recall = next(v for k, v in figures.items() if k.startswith("recall@"))
        assert figures["items"] >= 100 and recall >= 0.95, (name, figures)

    exact = engine._served
    gens = approximate.generators
    assert gens["model:sasrec"].index.approximate and gens["model:als"].index.approximate
    assert gens["seeds:content"].index.approximate and gens["content_profile"].index.approximate
    assert gens["model:itemknn"].index is None  # sparse scores: nothing to search
    assert exact.generators["model:sasrec"].index is None  # the built version: 400 items, exact

    users = list(exact.user_index)[:40]
    overlap = []
    for scenario, subjects in (("home", users), ("similar", exact.item_ids[:40])):
        spec = engine.scenarios[scenario]
        for subject in subjects:
            pid, seeds = (None, [subject]) if spec.needs else (subject, [])
            lists = [engine._rank(served, spec, engine._request(served, pid, seeds, None), pid, 20).ids
                     for served in (approximate, exact)]
            overlap.append(len(set(lists[0]) & set(lists[1])) / max(len(lists[1]), 1))
    assert np.mean(overlap) >= 0.95, np.mean(overlap)


def _assert_same_up_to_near_ties(name: str, ids, scores, alone_ids, alone_scores, tol: float = 1e-4) -> None:
    """The same candidates and scores, except that items whose scores differ by float rounding (a
    batched model pass sums in another order) may trade places, or places at the cut."""
    np.testing.assert_allclose(scores, alone_scores, rtol=tol, atol=tol, err_msg=name)
    alone = dict(zip(alone_ids.tolist(), alone_scores.tolist()))
    for item, score in zip(ids.tolist(), scores.tolist()):
        assert abs(score - alone.get(item, alone_scores[-1])) <= tol * max(abs(score), 1.0), (name, item)


def test_generators_retrieve_for_many_requests_at_once_what_they_retrieve_for_each(demo_engine, tmp_path):
    """The build's precompute step asks each generator for a block of subjects at once (one model
    pass, one index search): every generator of every scenario, exact and over HNSW graphs, gives
    each request the candidates it gives that request alone (near-ties aside)."""
    from shoprec.recommend.generators import candidates_many

    _, engine = demo_engine
    approximate, _ = _with_hnsw_graphs(engine, tmp_path)
    checked = set()
    for served in (engine._served, approximate):
        requests = []
        for j, pid in enumerate(list(served.user_index)[:30]):
            req = engine._request(served, pid, [served.item_ids[j]] if j % 3 == 0 else [], None)
            if j % 2:  # a session under way: the latest items are this session's
                req.history, req.recent = req.history[:-3], req.history[-3:]
            requests.append(req)
        requests.append(engine._request(served, None, [], None))  # anonymous, nothing known
        for spec in engine.scenarios.values():
            k = spec.candidates_per_generator
            for req, found in zip(requests, candidates_many(served.generators, list(spec.generators), requests, k)):
                assert set(found) == set(spec.generators) & set(served.generators)
                for name, (ids, scores) in found.items():
                    _assert_same_up_to_near_ties(name, ids, scores, *served.generators[name].candidates(req, k))
                    checked.add((name, len(ids) > 0))
    assert {("model:sasrec", True), ("model:als", True), ("seeds:content", True), ("recent:content", True),
            ("content_profile", True), ("graph:co_buy", True)} <= checked


def test_every_serving_process_follows_what_the_others_stored(demo_engine):
    """Two processes on one store (as with `--workers 2`): events, catalog changes and forgotten
    users written through one reach the other at its next `follow()`, and a process started later."""
    shop, a = demo_engine
    b = Engine.open(a.settings)
    try:
        user = _fresh_precomputed_user(shop, a)
        before = b.recommend(user, "home", k=20)
        assert before.info.get("precomputed")
        click = Event(event_id="follow-click-1", user_id=user, item_id=before.ids[0], type="click", timestamp=_now())
        assert a.record_events([click]) == 1
        assert b.recommend(user, "home", k=20).info.get("precomputed")  # not followed yet
        assert b.follow() == 1
        after = b.recommend(user, "home", k=20)
        assert not after.info.get("precomputed") and before.ids[0] not in after.ids
        assert b.profile(user)["session_items"] == [before.ids[0]]
        assert a.record_events([click]) == 0 and b.follow() == 0  # a resent event counts once, everywhere
        assert a.profile(user)["session_items"] == b.profile(user)["session_items"] == [before.ids[0]]

        base = shop.products[21]
        twin = Product(id="follow-new-1", title=base.title + " Max", description=base.description,
                       category=base.category, brand=base.brand, price=base.price, language=base.language)
        gone = Product(id="follow-new-2", title=base.title + " Mini", category=base.category, price=base.price)
        a.upsert_products([twin, gone])
        a.delete_products(["follow-new-2"])
        assert "follow-new-1" not in b.search(twin.title, k=10).ids
        assert b.follow() == 2
        assert "follow-new-1" in b.search(twin.title, k=10).ids
        assert "follow-new-2" not in b.search(gone.title, k=10).ids

        a.forget_user(user)
        b.follow()
        pid = b.pseudonym(user)
        assert b.profile(user)["session_items"] == [] and pid not in b._served.user_index
        assert pid not in b._served.precomputed["home"].rows

        visitor = Event(event_id="follow-view-1", user_id="follow-visitor", item_id=shop.products[4].id, type="view",
                        timestamp=_now())
        a.record_events([visitor])
        c = Engine.open(a.settings)  # a restarted worker: the version lacks all of the above
        try:
            assert "follow-new-1" in c.search(twin.title, k=10).ids and "follow-new-2" not in c._served.products
            assert pid not in c._served.user_index and pid not in c._served.precomputed["home"].rows
            assert c.profile("follow-visitor")["session_items"] == [shop.products[4].id]  # sessions survive it
        finally:
            c.close()
    finally:
        b.close()


def test_command_line_imports_and_forgets_reach_running_serving_processes(demo_engine, tmp_path):
    """`shoprec ingest catalog` and `shoprec forget-user` write to the store beside a running service:
    the products they change become searchable and the shopper they forget leaves the served version
    at the service's next `follow()`, as after the API's upsert and delete."""
    import json

    from shoprec.data.ingest import ingest_file
    from shoprec.data.privacy import forget_user
    from shoprec.data.store import open_store

    shop, engine = demo_engine
    base = shop.products[33]
    title = base.title + " Ultra"
    row = {"id": "cli-new-1", "title": title, "description": base.description, "category": base.category,
           "brand": base.brand, "price": base.price}
    (tmp_path / "catalog.jsonl").write_text(json.dumps(row) + "\n")
    assert ingest_file(tmp_path / "catalog.jsonl", "catalog", settings=engine.settings).journaled == 1
    assert "cli-new-1" not in engine.search(title, k=10).ids
    engine.follow()
    assert "cli-new-1" in engine.search(title, k=10).ids

    user = _fresh_precomputed_user(shop, engine)
    pid = engine.pseudonym(user)
    assert pid in engine._served.user_index
    with open_store(engine.settings.store_url) as store:
        forget_user(store, user, engine.settings.pseudonym_key)
    engine.follow()
    assert pid not in engine._served.user_index and pid not in engine._served.precomputed["home"].rows


def test_serving_processes_share_answers_computed_in_the_same_state(demo_engine, tmp_path):
    """Workers following one store reach the same state, so an answer one computed serves the others
    (`SharedAnswers`); after the shopper's next event neither serves the old one."""
    from shoprec.result_cache import SharedAnswers

    shop, engine = demo_engine
    a = Engine.open(engine.settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    b = Engine.open(engine.settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    try:
        user = _fresh_precomputed_user(shop, a)
        a.record_events([Event(event_id="share-view-1", user_id=user, item_id=shop.products[3].id, type="view",
                               timestamp=_now())])
        b.follow()
        computed = a.recommend(user, "home", k=20)
        assert not computed.info.get("precomputed")
        shared = b.recommend(user, "home", k=20)
        assert b._served.results.stats()["shared_hits"] == 1
        assert [(h.id, h.score, h.reason) for h in shared.hits] == [(h.id, h.score, h.reason) for h in computed.hits]
        b._served.results = ResultCache(10)  # what b computes itself in that state: the same list
        assert b.recommend(user, "home", k=20).ids == shared.ids

        first_pick = computed.ids[0]
        b.record_events([Event(event_id="share-click-1", user_id=user, item_id=first_pick, type="click",
                               timestamp=_now())])
        a.follow()
        assert first_pick not in a.recommend(user, "home", k=20).ids  # not the answer from before the click

        before = b._served.changes_digest
        a.reload_rules()  # journaled like catalog changes: every process re-reads the rules
        assert a._served.changes_digest != before and b.follow() == 1
        assert b._served.changes_digest == a._served.changes_digest
    finally:
        a.close()
        b.close()


def test_a_serving_process_computes_active_shoppers_feeds_before_it_serves(demo_engine):
    """Shoppers with events since the build have stale precomputed lists: a starting (or swapping)
    serving process computes their home feeds first instead of all at once on their next requests."""
    shop, engine = demo_engine
    user = _fresh_precomputed_user(shop, engine)
    engine.record_events([Event(event_id="warm-view-1", user_id=user, item_id=shop.products[5].id, type="view",
                                timestamp=_now())])
    one_off = Engine.open(engine.settings)  # a one-off command: nothing computed ahead
    serving = Engine.open(engine.settings, warm_answers=True)
    try:
        assert len(one_off._served.results) == 0 and one_off.stats()["warmed_answers"] == 0
        assert len(serving._served.results) >= 1
        stats = serving.stats()
        assert 1 <= stats["warmed_answers"] == stats["shoppers_since_build"]
        hits_before = serving._served.results.hits
        warmed = serving.recommend(user, "home", k=serving.settings.recommend.default_k)
        assert serving._served.results.hits == hits_before + 1  # answered from what was computed ahead
        assert not warmed.info.get("precomputed") and shop.products[5].id not in warmed.ids
        assert warmed.ids == one_off.recommend(user, "home", k=one_off.settings.recommend.default_k).ids
    finally:
        one_off.close()
        serving.close()


def test_the_pacer_rests_in_proportion_to_the_work_it_runs(monkeypatch):
    import shoprec.engine as engine_module

    class Clock:
        now, slept = 0.0, []

        def perf_counter(self):
            return self.now

        def sleep(self, s):
            self.slept.append(s)
            self.now += s

    clock = Clock()
    monkeypatch.setattr(engine_module, "time", clock)

    def step(seconds):
        clock.now += seconds
        return seconds

    pace = engine_module.Pacer(0.25)
    assert [pace(lambda: step(0.01)), pace(lambda: step(0.03))] == [0.01, 0.03]
    assert pace.busy_s == pytest.approx(0.04) and clock.slept == pytest.approx([0.03, 0.09])  # 3x the work
    full = engine_module.Pacer(1.0)
    full(lambda: step(0.05))
    assert full.busy_s == pytest.approx(0.05) and len(clock.slept) == 2  # no pause at a whole core
    with pytest.raises(ValueError):
        engine_module.Pacer(0)


def test_a_swap_warms_at_the_background_share_and_a_start_at_full_speed(demo_engine, monkeypatch):
    import shoprec.engine as engine_module

    shop, engine = demo_engine
    user = _fresh_precomputed_user(shop, engine)
    engine.record_events([Event(event_id="paced-view-1", user_id=user, item_id=shop.products[7].id, type="view",
                                timestamp=_now())])
    paces = []

    class Recording(engine_module.Pacer):
        def __init__(self, share=1.0):
            super().__init__(share)
            self.steps = 0
            paces.append(self)

        def __call__(self, step):
            self.steps += 1
            return super().__call__(step)

    loads = []  # (share, parts) of each version loaded
    real_load = engine_module.Served.load.__func__

    def recording_load(cls, path, ef_search=256, pace=None):
        before = pace.steps
        served = real_load(cls, path, ef_search, pace)
        loads.append((pace.share, pace.steps - before))
        return served

    monkeypatch.setattr(engine_module, "Pacer", Recording)
    monkeypatch.setattr(engine_module.Served, "load", classmethod(recording_load))
    settings = engine.settings.model_copy(update={"service": engine.settings.service.model_copy(
        update={"background_share": 0.9})})
    serving = Engine.open(settings, warm_answers=True)
    try:
        assert [p.share for p in paces if p.steps] == [1.0]  # starting: nothing is served yet
        started = paces[0].steps  # the version's parts, the frequent queries' searches, the active shoppers' feeds
        stats = serving.stats()
        parts = loads[0][1]  # catalog and ids, content index, each model, searcher, personalisation, precomputed lists
        assert parts >= 6 + len(engine._served.precomputed) and started >= parts + 2
        assert 1 <= stats["warmed_answers"] == stats["computed_answers"]["recommend"]
        serving._served.version = "an older version"  # the next reload swaps in `current` again
        assert serving.reload()
        swap = [p for p in paces if p.share == 0.9]
        assert len(swap) == 1 and swap[0].steps == started  # the same work, at the background share
        assert loads == [(1.0, parts), (0.9, parts)]
        assert serving.stats()["warmed_answers"] >= 1
    finally:
        serving.close()


def test_precomputed_lists_come_back_once_a_build_has_read_the_shoppers_events(demo_engine):
    shop, engine = demo_engine
    user = _fresh_precomputed_user(shop, engine)
    assert engine.recommend(user, "home", k=20).info.get("precomputed")
    engine.record_events([Event(event_id="in-build-view-1", user_id=user, item_id=shop.products[9].id, type="view",
                                timestamp=_now())])
    assert not engine.recommend(user, "home", k=20).info.get("precomputed")  # newer than the build: live
    served = engine._served
    built_from = served.events_seq
    served.events_seq = engine.store.last_event_seq()  # as a version built after the event records it
    served.results.clear()  # (a new version starts with no reused answers)
    try:
        assert engine.recommend(user, "home", k=20).info.get("precomputed")
    finally:
        served.events_seq = built_from


def test_the_feed_keeper_keeps_feeds_for_the_version_the_workers_still_serve(demo_engine, tmp_path, monkeypatch):
    """A worker serves the previous version for minutes while it loads and warms a new one. The
    keeper holds both (`hold_previous`) and computes feeds for the versions the workers announce,
    so a worker reads them before and after its own swap; it retrieves the new version's frequent
    queries first, and the worker warms them from what it retrieved."""
    import shutil

    from shoprec.artifacts import ArtifactStore
    from shoprec.engine import Pacer
    from shoprec.result_cache import SharedAnswers
    from shoprec.search.searcher import Searcher

    shop, engine = demo_engine
    artifacts = ArtifactStore(tmp_path / "artifacts")
    shutil.copytree(engine._served.path, artifacts.versions_dir / "v1")
    artifacts._point_current("v1")
    settings = engine.settings.model_copy(update={"artifacts_dir": artifacts.root})
    worker = Engine.open(settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    keeper = Engine.open(settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"),
                         warm_searches_at_start=False, hold_previous=True)
    try:
        assert len(keeper._served.searcher._retrieved) == 0  # at start the workers search the frequent queries
        shutil.copytree(artifacts.versions_dir / "v1", artifacts.versions_dir / "v2")
        artifacts._point_current("v2")  # a build published v2: the keeper loads it first
        assert keeper.reload() and (keeper.version, keeper.previous_version) == ("v2", "v1")
        assert worker.version == "v1"
        frequent = len(keeper._served.searcher.frequent_queries)
        assert frequent > 0 and len(keeper._served.searcher._retrieved) == frequent

        def viewed(n: int) -> str:
            user = _fresh_precomputed_user(shop, worker)
            worker.record_events([Event(event_id=f"keep-held-{n}", user_id=user, item_id=shop.products[n].id,
                                        type="view", timestamp=_now())])
            return user

        def read_not_computed(user: str) -> None:
            computed_before = worker.computed_answers["recommend"]
            worker.recommend(user, "home", k=worker.settings.recommend.default_k)
            assert worker.computed_answers["recommend"] == computed_before

        user = viewed(11)
        # For v1, which the worker serves, and for v2, which it is about to serve.
        assert keeper.keep_feeds(Pacer(1.0), {"v1"}) == 2 and keeper.computed_answers["recommend"] == 2
        read_not_computed(user)
        retrieved: list[str] = []
        real_retrieve = Searcher.retrieve
        monkeypatch.setattr(Searcher, "retrieve", lambda self, query, *args, **kwargs:
                            retrieved.append(query) or real_retrieve(self, query, *args, **kwargs))
        assert worker.reload() and worker.version == "v2"
        assert retrieved == [] and len(worker._served.searcher._retrieved) == frequent  # read, not retrieved
        read_not_computed(user)  # the feed is ready at the swap, although the event came before it

        user = viewed(12)
        assert keeper.keep_feeds(Pacer(1.0), {"v2"}) == 1  # v1 is held but no longer served
        keeper.release_previous()
        assert keeper.previous_version is None
        read_not_computed(user)
        user = viewed(13)
        assert keeper.keep_feeds(Pacer(1.0), {"v1", "v2"}) == 1
        read_not_computed(user)
    finally:
        worker.close()
        keeper.close()


def test_the_feed_keeper_computes_a_shoppers_feed_after_their_event_for_the_workers(demo_engine, tmp_path):
    """`keep_feeds` (the keeper process's loop) follows the store and computes the home feed of each
    shopper whose events changed it into the shared answers: the worker that took the event then
    reads the feed instead of computing it, and it is the list the worker would have computed."""
    from shoprec.engine import Pacer
    from shoprec.result_cache import SharedAnswers

    shop, engine = demo_engine
    worker = Engine.open(engine.settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    keeper = Engine.open(engine.settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    try:
        user, other = _fresh_precomputed_user(shop, worker), "keeper-bystander"
        assert keeper.keep_feeds(Pacer(1.0)) == 0  # nothing new stored
        worker.record_events([
            Event(event_id="keep-view-1", user_id=user, item_id=shop.products[6].id, type="view", timestamp=_now()),
            Event(event_id="keep-impression-1", user_id=other, item_id=shop.products[7].id, type="impression",
                  timestamp=_now()),
        ])
        pace = Pacer(1.0)
        assert keeper.keep_feeds(pace) == 1  # the view changes a feed; an impression changes none
        assert pace.busy_s > 0 and keeper.computed_answers["recommend"] == 1

        computed_before = worker.computed_answers["recommend"]
        kept = worker.recommend(user, "home", k=worker.settings.recommend.default_k)
        assert worker.computed_answers["recommend"] == computed_before  # read, not computed
        assert worker._served.results.stats()["shared_hits"] == 1
        assert shop.products[6].id not in kept.ids and not kept.info.get("precomputed")
        worker._served.results = ResultCache(10)  # what the worker computes itself: the same list
        assert worker.recommend(user, "home", k=worker.settings.recommend.default_k).ids == kept.ids
    finally:
        worker.close()
        keeper.close()


def test_a_worker_answers_the_feed_from_before_an_event_while_the_keeper_computes_it(demo_engine, tmp_path):
    """With a feed keeper alive (`AnswersKeeper` sets `feed_grace_s`), a shopper's home feed right
    after their event is the one from before it (the build's list, else the last one computed under
    the same catalog changes), marked pending; once the keeper has it, the new one; past the grace,
    the worker computes it itself."""
    from shoprec.engine import Pacer
    from shoprec.result_cache import SharedAnswers
    from shoprec.service.builds import AnswersKeeper

    shop, engine = demo_engine
    worker = Engine.open(engine.settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    keeper = Engine.open(engine.settings, shared_answers=SharedAnswers(tmp_path / "answers.sqlite"))
    try:
        housekeeping = AnswersKeeper(lambda: worker, 1.0, feed_grace_s=0.75)
        housekeeping.tick()
        assert worker.feed_grace_s == 0  # no keeper on this machine: nobody computes the feed but the worker
        keeper.shared_answers.announce_keeper()
        housekeeping.tick()
        assert worker.feed_grace_s == 0.75

        k = worker.settings.recommend.default_k
        user = _fresh_precomputed_user(shop, worker)
        built = worker.recommend(user, "home", k=k)
        assert built.info.get("precomputed")

        def view(n: int) -> str:
            item = shop.products[20 + n].id
            worker.record_events([Event(event_id=f"pending-view-{n}", user_id=user, item_id=item, type="view",
                                        timestamp=_now())])
            return item

        computed = worker.computed_answers["recommend"]
        view(1)
        pending = worker.recommend(user, "home", k=k)
        assert pending.info.get("pending_events") and pending.ids == built.ids
        assert worker.computed_answers["recommend"] == computed and worker.pending_answers == 1

        assert keeper.keep_feeds(Pacer(1.0)) == 1
        kept = worker.recommend(user, "home", k=k)
        assert not kept.info.get("pending_events") and kept.ids != built.ids
        assert worker.computed_answers["recommend"] == computed  # the keeper's, read back

        view(2)
        assert worker.recommend(user, "home", k=k).ids == kept.ids  # the last feed before the event
        assert worker.recommend(user, "home", k=k, context={"device": "mobile"}).info.get("pending_events") is None
        assert worker.computed_answers["recommend"] == computed + 1  # the keeper keeps the default feed only

        worker.feed_grace_s = 0.05
        time.sleep(0.1)
        live = worker.recommend(user, "home", k=k)
        assert not live.info.get("pending_events") and worker.computed_answers["recommend"] == computed + 2
    finally:
        worker.close()
        keeper.close()


def test_the_processes_of_a_machine_swap_versions_one_at_a_time(demo_engine, tmp_path):
    """A swap holds two versions until the previous one is freed, so the processes serving one
    artifact root take turns (`<artifacts>/.loading.lock`): a reload waits while another process
    has the turn, and keeps it until its previous version is dismantled."""
    import fcntl
    import shutil
    import subprocess
    import sys

    from shoprec.artifacts import ArtifactStore

    _, engine = demo_engine
    artifacts = ArtifactStore(tmp_path / "artifacts")
    shutil.copytree(engine._served.path, artifacts.versions_dir / "v1")
    artifacts._point_current("v1")
    settings = engine.settings.model_copy(update={"artifacts_dir": artifacts.root})
    worker = Engine.open(settings)
    lock = artifacts.root / ".loading.lock"
    script = ("import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
              "print('turn', flush=True); time.sleep(float(sys.argv[2]))")
    other = subprocess.Popen([sys.executable, "-c", script, str(lock), "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "turn"  # another process is loading
        shutil.copytree(artifacts.versions_dir / "v1", artifacts.versions_dir / "v2")
        artifacts._point_current("v2")
        worker.retire_grace_s = 1.0
        assert worker.reload() and worker.version == "v2"
        assert other.poll() is not None  # it loaded only after the other process's turn ended
        probe = open(lock, "a+")
        with pytest.raises(BlockingIOError):  # still its turn: v1 is being dismantled
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        worker._retiring.join(30)
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # v1 is freed: the next process may load
        probe.close()
        assert worker.search("shoes", k=5).ids
    finally:
        other.kill()
        other.wait()
        worker.close()
