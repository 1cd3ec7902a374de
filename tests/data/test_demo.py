"""The demo shop generator: determinism, schema validity, bilingual text, a sane catalog, and
hidden preferences that can be recovered from the simulated behaviour."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import numpy as np
import pytest

from shoprec import cli
from shoprec.data.demo import DemoShop, generate_demo
from shoprec.data.demo.sessions import T_CART, T_PURCHASE, T_SEARCH, T_VIEW
from shoprec.data.schemas import Event, Product, User

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    return generate_demo(n_products=1500, n_users=400, seed=11)


def _item_events(shop: DemoShop) -> tuple[np.ndarray, np.ndarray]:
    c = shop.columns
    mask = np.isin(c.type, [T_VIEW, T_CART, T_PURCHASE])
    return c.user[mask], c.item[mask]


def test_same_seed_same_shop_and_other_seed_differs():
    a = generate_demo(n_products=300, n_users=60, seed=5)
    b = generate_demo(n_products=300, n_users=60, seed=5)
    c = generate_demo(n_products=300, n_users=60, seed=6)
    assert [p.model_dump() for p in a.products] == [p.model_dump() for p in b.products]
    assert [u.model_dump() for u in a.users] == [u.model_dump() for u in b.users]
    assert list(a.iter_event_dicts()) == list(b.iter_event_dicts())
    assert a.hidden_preferences() == b.hidden_preferences()
    assert [p.title for p in a.products] != [p.title for p in c.products]
    assert len(a) != len(c) or list(a.iter_event_dicts()) != list(c.iter_event_dicts())


def test_counts_ids_and_time_order(shop):
    assert len(shop.products) == 1500 and len(shop.users) == 400
    assert len(shop) > 400 * 20  # activity gives tens of events per shopper
    assert len({p.id for p in shop.products}) == 1500
    assert all(re.fullmatch(r"user_\d{6}", u.id) for u in shop.users)
    records = list(shop.iter_event_dicts())
    assert len({r["event_id"] for r in records}) == len(records)
    stamps = shop.columns.timestamp
    assert np.all(np.diff(stamps) >= 0)
    assert shop.start.timestamp() <= stamps.min() and stamps.max() < shop.end.timestamp()
    # Sessions interleave: consecutive events often belong to different sessions.
    assert (np.diff(shop.columns.session) != 0).mean() > 0.3
    # Every session belongs to one user.
    sessions = shop.columns.session
    first_user = np.full(sessions.max() + 1, -1)
    first_user[sessions] = shop.columns.user
    assert np.array_equal(first_user[sessions], shop.columns.user)


def test_exact_event_count_when_asked():
    small = generate_demo(n_products=400, n_users=100, n_events=5000, seed=2)
    assert len(small) == 5000
    assert len({r["event_id"] for r in small.iter_event_dicts()}) == 5000


def test_written_files_validate_against_the_models(shop, tmp_path):
    paths = shop.write(tmp_path / "demo")
    n_lines = {}
    for name, model in (("products", Product), ("users", User), ("events", Event)):
        lines = paths[name].read_text(encoding="utf-8").splitlines()
        n_lines[name] = len(lines)
        for line in lines:
            model.model_validate_json(line)
    assert n_lines == {"products": 1500, "users": 400, "events": len(shop)}
    events = [json.loads(line) for line in paths["events"].read_text(encoding="utf-8").splitlines()[:50]]
    assert all(e["timestamp"].endswith("Z") for e in events)
    assert all(set(e["context"]) == {"device", "locale", "referrer"} for e in events)
    summary = json.loads(paths["summary"].read_text())
    assert summary["events"] == len(shop) and summary["products"] == 1500 and summary["users"] == 400
    assert sum(summary["events_by_type"].values()) == len(shop)
    truth = json.loads(paths["hidden_preferences"].read_text())
    assert len(truth["users"]) == 400 and len(truth["items"]) == 1500
    first = truth["users"][0]
    assert {"top_categories", "favourite_brands", "price_band", "locale"} <= set(first)
    assert 1 <= len(first["top_categories"]) <= 3


def test_event_models_carry_the_expected_fields(shop):
    events = shop.events[:2000]
    assert all(isinstance(e, Event) for e in events)
    types = {e.type.value for e in shop.events}
    assert {"view", "add_to_cart", "purchase", "remove_from_cart", "search"} <= types
    for e in events:
        assert e.timestamp.tzinfo is not None and e.timestamp.utcoffset().total_seconds() == 0
        if e.type.value == "search":
            assert e.query and e.item_id is None
        else:
            assert e.item_id is not None and e.price is not None and e.price > 0


def test_bilingual_text_and_translation_attributes(shop):
    zh = [p for p in shop.products if p.language == "zh"]
    en = [p for p in shop.products if p.language == "en"]
    assert 0.2 < len(zh) / len(shop.products) < 0.45
    for p in shop.products:
        for key in ("title_en", "title_zh", "description_en", "description_zh"):
            assert p.attributes[key], (p.id, key)
        assert CJK.search(p.attributes["title_zh"]) and CJK.search(p.attributes["description_zh"])
        assert not CJK.search(p.attributes["title_en"]) and not CJK.search(p.attributes["description_en"])
        assert p.title == p.attributes[f"title_{p.language}"]
        assert p.description == p.attributes[f"description_{p.language}"]
        assert p.description.count("." if p.language == "en" else "。") >= 2
    assert all(CJK.search(p.title) for p in zh) and not any(CJK.search(p.title) for p in en)
    all_zh = " ".join(p.attributes["title_zh"] for p in shop.products)
    for word in ("无线", "蓝牙", "耳机", "跑步鞋", "不粘锅", "精华液"):
        assert word in all_zh, word
    earbuds = [p for p in shop.products if p.category[-1] == "Earbuds"]
    assert earbuds and all("耳机" in p.attributes["title_zh"] for p in earbuds)
    assert all(re.search(r"earbuds|earphones", p.attributes["title_en"], re.I) for p in earbuds)
    assert len({p.title for p in shop.products}) > 0.8 * len(shop.products)


def test_category_tree_prices_and_catalog_fields(shop):
    paths = {tuple(p.category) for p in shop.products}
    assert all(len(path) == 3 for path in paths)
    assert len({path[0] for path in paths}) >= 8
    assert len(paths) >= 40
    for expected in (("Electronics", "Audio", "Earbuds"), ("Home & Kitchen", "Kitchen", "Cookware"),
                     ("Sports & Outdoors", "Running", "Running Shoes"), ("Beauty & Personal Care", "Skincare", "Serum")):
        assert expected in paths
    median = {leaf: np.median([p.price for p in shop.products if p.category[-1] == leaf])
              for leaf in ("Laptops", "Earbuds", "Serum", "Shampoo", "Smartphones")}
    assert median["Laptops"] > median["Smartphones"] > median["Earbuds"] > median["Serum"] > median["Shampoo"]
    assert 400 < median["Laptops"] < 2000 and 5 < median["Shampoo"] < 25
    prices = np.array([p.price for p in shop.products])
    assert prices.min() > 0 and prices.max() < 10_000
    out_of_stock = np.mean([not p.available for p in shop.products])
    assert 0.02 < out_of_stock < 0.09
    ratings = [p.rating for p in shop.products if p.rating is not None]
    assert len(ratings) > 0.85 * len(shop.products) and 1 <= min(ratings) and max(ratings) <= 5
    assert all(p.image_url.startswith("/static/img/") and p.image_url.endswith(".svg") for p in shop.products)
    created = [p.created_at for p in shop.products]
    assert min(created) < shop.start < max(created) < shop.end
    brands_per_dept: dict[str, set[str]] = {}
    for p in shop.products:
        brands_per_dept.setdefault(p.category[0], set()).add(p.brand)
    assert all(len(b) >= 3 for b in brands_per_dept.values())
    shared = [b for b in shop.catalog.brands if sum(b in s for s in brands_per_dept.values()) >= 2]
    assert shared  # some brands sell in several departments
    colors = {p.attributes.get("color") for p in shop.products if p.category[-1] == "Earbuds"}
    assert len(colors) >= 3


def test_most_frequent_category_is_a_hidden_top_category(shop):
    users, items = _item_events(shop)
    counts = np.zeros((len(shop.users), len(shop.catalog.leaves)))
    np.add.at(counts, (users, shop.catalog.leaf[items]), 1)
    active = counts.sum(1) >= 20
    assert active.sum() >= 100
    hit = (shop.truth.top_leaves == counts.argmax(1)[:, None]).any(1)
    assert hit[active].mean() >= 0.7
    # and the public API gives the same paths
    u = int(np.flatnonzero(active)[0])
    assert shop.leaf_path(int(counts[u].argmax())) in shop.top_categories(u) or not hit[u]


def test_favourite_brands_are_over_represented(shop):
    users, items = _item_events(shop)
    catalog, truth = shop.catalog, shop.truth
    ratios = []
    for u in np.unique(users):
        mine = items[users == u]
        if len(mine) < 20:
            continue
        favourite = np.isin(catalog.brand, truth.favourite_brands[u][truth.favourite_brands[u] >= 0])
        in_my_leaves = np.isin(catalog.leaf, np.unique(catalog.leaf[mine]))
        base = favourite[in_my_leaves].mean()
        if base > 0:
            ratios.append(favourite[mine].mean() / base)
    assert len(ratios) >= 100
    assert np.median(ratios) > 1.5
    assert np.mean(np.array(ratios) > 1.0) > 0.75


def test_purchase_prices_concentrate_in_the_price_band(shop):
    c, catalog, truth = shop.columns, shop.catalog, shop.truth
    bought = c.type == T_PURCHASE
    users, items = c.user[bought], c.item[bought]
    per_band = [catalog.price_z[items[truth.price_band[users] == b]].mean() for b in range(3)]
    assert per_band[0] < per_band[1] < per_band[2]
    assert per_band[2] - per_band[0] > 0.6
    in_band = np.abs(catalog.price_z[items] - truth.price_pref[users]) <= 0.75
    # chance: the share of the same leaf's catalog inside the user's band
    chance = np.mean([np.mean(np.abs(catalog.price_z[catalog.leaf == catalog.leaf[i]] - truth.price_pref[u]) <= 0.75)
                      for u, i in zip(users[:1500], items[:1500])])
    assert in_band.mean() > chance + 0.1
    # the published USD range agrees with the positions (rounding aside)
    u, i = int(users[0]), int(items[0])
    lo, hi = shop.price_range(u, int(catalog.leaf[i]))
    assert (lo <= catalog.price[i] <= hi) == bool(in_band[0]) or abs(catalog.price[i] - lo) < 1 or abs(catalog.price[i] - hi) < 1


def test_searches_use_the_shoppers_language_and_lead_to_the_category(shop):
    c, q = shop.columns, shop.queries
    searches = np.flatnonzero(c.type == T_SEARCH)
    assert len(searches) > 0.1 * (c.session.max() + 1)
    texts = [c.queries[k] for k in c.query[searches]]
    chinese = np.array([bool(CJK.search(t)) for t in texts])
    zh_user = shop.truth.language[c.user[searches]] == 1
    assert chinese[zh_user].all() and not chinese[~zh_user].any()
    typo_share = q.typo[c.query[searches]].mean()
    assert 0.02 < typo_share < 0.2
    assert any(q.clean[k] != q.texts[k] for k in c.query[searches])
    # the first view after a search is in the searched leaf
    order = np.lexsort((c.timestamp, c.session))
    nxt = {}
    for idx in order[::-1]:
        if c.type[idx] == T_VIEW:
            nxt[c.session[idx]] = idx
    same = [shop.catalog.leaf[c.item[nxt[c.session[s]]]] == q.leaf[c.query[s]] for s in searches if c.session[s] in nxt]
    assert np.mean(same) > 0.95


def test_consumables_are_bought_again(shop):
    c = shop.columns
    bought = c.type == T_PURCHASE
    pairs = c.user[bought].astype(np.int64) * len(shop.products) + c.item[bought]
    _, counts = np.unique(pairs, return_counts=True)
    assert (counts >= 2).sum() >= 20
    repeated_items = np.unique(pairs[np.isin(pairs, _[counts >= 2])] % len(shop.products))
    consumable = np.array([shop.catalog.leaves[k].consumable for k in shop.catalog.leaf[repeated_items]])
    assert consumable.mean() > 0.9


def test_lapsed_users_stop_and_new_users_start_after_signup(shop):
    c, truth = shop.columns, shop.truth
    assert np.all(c.timestamp <= truth.active_until[c.user] + 3600)
    assert np.all(c.timestamp >= truth.signup_at[c.user])
    lapsed = np.flatnonzero(truth.lapsed)
    assert len(lapsed) > 20
    last = np.zeros(len(shop.users))
    np.maximum.at(last, c.user, c.timestamp)
    active_last = last[~truth.lapsed & (last > 0)]
    assert np.median(last[lapsed][last[lapsed] > 0]) < np.median(active_last)


def test_activity_is_heavy_tailed(shop):
    per_user = np.bincount(shop.columns.user, minlength=len(shop.users))
    assert per_user.max() > 5 * np.median(per_user)
    views = np.bincount(shop.columns.item[shop.columns.type == T_VIEW], minlength=len(shop.products))
    top = np.sort(views)[::-1]
    assert top[: len(top) // 100].sum() > 0.04 * top.sum()  # bestsellers: top 1% of items > 4% of views


def test_utility_shapes_and_lookups(shop):
    u = shop.user_index("user_000007")
    assert u == 7 and shop.item_index(shop.products[3].id) == 3
    items = np.array([0, 5, 9, 5])
    util = shop.utility(u, items)
    assert util.shape == (4,) and util.dtype == np.float64 and np.isfinite(util).all()
    assert util[1] == util[3]
    assert shop.utility(u, np.array([], dtype=np.int64)).shape == (0,)
    full = shop.utility(u, np.arange(len(shop.products)))
    assert full.shape == (len(shop.products),)
    top_leaf = shop.truth.top_leaves[u, 0]
    in_top = shop.catalog.leaf == top_leaf
    assert full[in_top].mean() > full[~in_top].mean() + 1.0
    with pytest.raises(KeyError, match="user_999999"):
        shop.user_index("user_999999")
    with pytest.raises(KeyError):
        shop.item_index("nope")
    with pytest.raises(IndexError):
        shop.utility(u, np.array([len(shop.products)]))


def test_simulate_session_rewards_a_ranking_by_true_utility(shop):
    rng = np.random.default_rng(0)
    n = len(shop.products)
    clicks = {"best": 0, "random": 0}
    revenue = {"best": 0.0, "random": 0.0}
    first_position_clicks = 0
    for u in range(0, 400, 4):
        util = shop.utility(u, np.arange(n))
        rankings = {"best": np.argsort(-util)[:20], "random": rng.choice(n, 20, replace=False)}
        for name, ranking in rankings.items():
            result = shop.simulate_session(u, [shop.item_ids[i] for i in ranking], rng)
            assert set(result) == {"clicks", "purchases", "revenue"}
            assert set(result["purchases"]) <= set(result["clicks"])
            assert all(0 <= k < 20 for k in result["clicks"])
            expected = sum(shop.catalog.price[ranking[k]] for k in result["purchases"])
            assert result["revenue"] == pytest.approx(expected)
            clicks[name] += len(result["clicks"])
            revenue[name] += result["revenue"]
            first_position_clicks += name == "best" and 0 in result["clicks"]
    assert clicks["best"] > 3 * clicks["random"]
    assert revenue["best"] > revenue["random"]
    # position bias: a list with the best item last gets fewer clicks on it than when it is first
    util = shop.utility(0, np.arange(n))
    best = int(np.argmax(util))
    filler = [shop.item_ids[i] for i in np.argsort(util)[:19]]
    first = sum(0 in shop.simulate_session(0, [shop.item_ids[best]] + filler, rng)["clicks"] for _ in range(300))
    last = sum(19 in shop.simulate_session(0, filler + [shop.item_ids[best]], rng)["clicks"] for _ in range(300))
    assert first > 2 * last
    a = shop.simulate_session(3, shop.item_ids[:10], np.random.default_rng(7))
    b = shop.simulate_session(3, shop.item_ids[:10], np.random.default_rng(7))
    assert a == b
    assert shop.simulate_session(3, [], rng) == {"clicks": [], "purchases": [], "revenue": 0.0}


def test_to_interactions(shop):
    data = shop.to_interactions()
    assert data.n_users == 400 and data.n_items == 1500
    n_item_events = int((shop.columns.item >= 0).sum())
    assert len(data) == n_item_events
    assert np.all(np.diff(data.users) >= 0)
    assert data.csr.shape == (400, 1500)


def test_fixed_window_end():
    shop = generate_demo(n_products=100, n_users=20, seed=1, days=10, end=datetime(2025, 1, 31, tzinfo=timezone.utc))
    assert shop.end == datetime(2025, 1, 31, tzinfo=timezone.utc)
    assert shop.columns.timestamp.max() < shop.end.timestamp()
    assert shop.columns.timestamp.min() >= datetime(2025, 1, 21, tzinfo=timezone.utc).timestamp()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        generate_demo(n_products=0)
    with pytest.raises(ValueError, match="n_events"):
        generate_demo(n_products=10, n_users=5, n_events=-1)


def test_cli_writes_the_files_and_prints_paths(tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli.main(["demo-data", "--out", str(out), "--products", "300", "--users", "50", "--events", "2000", "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "300 products, 50 users, 2000 events" in printed
    for name in ("products.jsonl", "users.jsonl", "events.jsonl", "hidden_preferences.json", "summary.json"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    assert len((out / "events.jsonl").read_text().splitlines()) == 2000
    assert json.loads((out / "summary.json").read_text())["seed"] == 3


def test_impressions_cover_views_and_leave_other_events_unchanged():
    plain = generate_demo(n_products=600, n_users=120, seed=4)
    shown = generate_demo(n_products=600, n_users=120, seed=4, impressions=True)
    assert not (plain.columns.type == 0).any()
    impression = shown.columns.type == 0
    assert impression.sum() > (shown.columns.type == T_VIEW).sum()
    rest = shown.columns.take(np.flatnonzero(~impression))
    for name in ("user", "item", "type", "timestamp"):
        assert np.array_equal(getattr(plain.columns, name), getattr(rest, name)), name
    c = shown.columns
    impressed = set(zip(c.session[impression].tolist(), c.item[impression].tolist()))
    browsing_views = [(s, i) for s, i in zip(c.session[c.type == T_VIEW].tolist(), c.item[c.type == T_VIEW].tolist())]
    # every view of a browsing session was on screen first (repeat-purchase sessions show no list)
    assert np.mean([pair in impressed for pair in browsing_views]) > 0.9


def test_utility_follows_the_documented_formula(shop):
    from shoprec.data.demo import shoppers as s

    truth, catalog = shop.truth, shop.catalog
    u = 5
    items = np.arange(0, len(shop.products), 7)
    taste = truth.taste[u] / truth.taste[u].max()
    dept_of_leaf = np.array([[d.key for d in catalog.departments].index(leaf.department) for leaf in catalog.leaves])
    dept_taste = np.array([truth.taste[u, dept_of_leaf == d].sum() for d in range(len(catalog.departments))])
    favourite = truth.favourite_brands[u][truth.favourite_brands[u] >= 0]
    expected = (s.W_CATEGORY * taste[catalog.leaf[items]]
                + s.W_DEPARTMENT * (dept_taste / dept_taste.max())[catalog.department[items]]
                + s.W_BRAND * np.isin(catalog.brand[items], favourite)
                - s.W_PRICE * truth.price_sensitivity[u] * (catalog.price_z[items] - truth.price_pref[u]) ** 2
                + s.W_QUALITY * catalog.quality[items] + s.W_POPULARITY * catalog.popularity[items]
                + s.W_LANGUAGE * (catalog.language[items] == truth.language[u]) + s.OFFSET)
    assert np.allclose(shop.utility(u, items), expected, atol=1e-5)
