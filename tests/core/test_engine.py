"""End to end on a small demo shop: ingest -> store -> build -> Engine (search, scenarios, online loop)."""

from datetime import datetime, timezone

import numpy as np
import pytest

from shoprec.data.schemas import Event, Product
from shoprec.engine import Engine


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
    engine.upsert_products([twin])
    assert "cold-start-1" in engine.search(twin.title, k=10).ids
    assert "cold-start-1" in engine.recommend(None, "similar", item=base.id, k=20).ids


def test_search_finds_products_and_forget_user_removes_everything(demo_engine):
    shop, engine = demo_engine
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
