"""`generate_demo` and `DemoShop`: the generated shop, its hidden truth, and a click simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import cached_property
from math import erf, sqrt
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.data.demo import vocab
from shoprec.data.demo.catalog import Catalog, build_catalog
from shoprec.data.demo.sessions import (
    EVENT_TYPES,
    EVENTS_PER_SESSION,
    IMPRESSIONS_PER_SESSION,
    EventColumns,
    QueryTable,
    build_query_table,
    finalize,
    simulate_events,
    trim_to,
)
from shoprec.data.demo.shoppers import (
    BAND_HALF_WIDTH,
    PRICE_BANDS,
    ShopperTruth,
    UtilityModel,
    draw_shoppers,
)
from shoprec.data.schemas import EVENT_WEIGHTS, Event, Product, User

# A fixed end of the behaviour window keeps the output identical from one day to the next.
DEFAULT_END = datetime(2026, 11, 1, tzinfo=timezone.utc)
# Sessions per user over 60 days that give 100k-200k events for 2,000 users.
DEFAULT_SESSIONS_PER_USER = 16.0
EXAMINATION_DECAY = 0.8  # examination probability at 0-based position k: 1 / (1 + k) ** 0.8
PURCHASE_OFFSET = -1.0  # purchase probability after a click: sigmoid(utility - 1)
STOP_AFTER_PURCHASE = 0.5  # cascade: after buying, the shopper leaves the list with this probability


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class DemoShop:
    """A generated shop: products, users, events (columnar, with Event iterators) and the hidden truth.

    `truth` holds the shoppers' hidden preferences (see `ShopperTruth`); item truth (quality,
    popularity, within-category price position) lives in `catalog`.
    """

    def __init__(self, catalog: Catalog, users: list[User], truth: ShopperTruth, columns: EventColumns,
                 queries: QueryTable, seed: int, start: datetime, end: datetime):
        self.catalog = catalog
        self.products: list[Product] = catalog.products
        self.users = users
        self.truth = truth
        self.columns = columns
        self.queries = queries
        self.seed = seed
        self.start = start
        self.end = end
        self.model = UtilityModel(truth, catalog)
        self.item_ids: list[str] = [p.id for p in self.products]
        self.user_ids: list[str] = [u.id for u in users]
        self._item_index = {k: i for i, k in enumerate(self.item_ids)}
        self._user_index = {k: i for i, k in enumerate(self.user_ids)}

    # -- lookups ---------------------------------------------------------------------------
    def user_index(self, user_id: str) -> int:
        try:
            return self._user_index[user_id]
        except KeyError:
            raise KeyError(f"unknown demo user id {user_id!r}") from None

    def item_index(self, item_id: str) -> int:
        try:
            return self._item_index[item_id]
        except KeyError:
            raise KeyError(f"unknown demo item id {item_id!r}") from None

    # -- truth -----------------------------------------------------------------------------
    def utility(self, user_index: int, item_indices: np.ndarray) -> np.ndarray:
        """True expected utility of items for one user: (n_items,) float64 (noise-free; see shoppers.py)."""
        items = np.asarray(item_indices, np.int64).reshape(-1)
        if len(items) and (items.min() < 0 or items.max() >= len(self.products)):
            raise IndexError(f"item index out of range 0..{len(self.products) - 1}")
        if not 0 <= int(user_index) < len(self.users):
            raise IndexError(f"user index {user_index} out of range 0..{len(self.users) - 1}")
        return self.model.pairs(np.array([int(user_index)]), items)[0]

    def simulate_session(self, user_index: int, ranked_item_ids: list[str], rng: np.random.Generator) -> dict:
        """Show a ranked list to a user; returns {"clicks": [positions], "purchases": [positions], "revenue": float}.

        Position-biased examination with a cascade stop: position k (0-based) is examined with
        probability 1 / (1 + k) ** 0.8 while the shopper is still on the list; an examined item is
        clicked with probability sigmoid(utility); a clicked, in-stock item is bought with
        probability sigmoid(utility - 1); after a purchase the shopper leaves with probability 0.5.
        """
        n = len(ranked_item_ids)
        if n == 0:
            return {"clicks": [], "purchases": [], "revenue": 0.0}
        items = np.fromiter((self.item_index(i) for i in ranked_item_ids), np.int64, count=n)
        util = self.utility(user_index, items)
        position = np.arange(n)
        draws = rng.random((4, n))
        examined = draws[0] < 1.0 / (1.0 + position) ** EXAMINATION_DECAY
        clicked = examined & (draws[1] < _sigmoid(util))
        bought = clicked & self.catalog.available[items] & (draws[2] < _sigmoid(util + PURCHASE_OFFSET))
        leaves = bought & (draws[3] < STOP_AFTER_PURCHASE)
        if leaves.any():
            last = int(np.argmax(leaves))
            clicked[last + 1:] = False
            bought[last + 1:] = False
        purchases = np.flatnonzero(bought)
        return {
            "clicks": np.flatnonzero(clicked).tolist(),
            "purchases": purchases.tolist(),
            "revenue": float(self.catalog.price[items[purchases]].sum()),
        }

    def top_categories(self, user_index: int) -> list[str]:
        """The user's hidden top leaf categories as "Department > Sub > Leaf" paths, strongest first."""
        leaves = [int(k) for k in self.truth.top_leaves[user_index] if k >= 0]
        leaves.sort(key=lambda k: -self.truth.taste[user_index, k])
        return [self.leaf_path(k) for k in leaves]

    def favourite_brands(self, user_index: int) -> list[str]:
        return [self.catalog.brands[b] for b in self.truth.favourite_brands[user_index] if b >= 0]

    def leaf_path(self, leaf: int) -> str:
        lf = self.catalog.leaves[leaf]
        dept = next(d for d in self.catalog.departments if d.key == lf.department)
        return " > ".join((dept.name[0], lf.sub[0], lf.name[0]))

    def price_range(self, user_index: int, leaf: int) -> tuple[float, float]:
        """The user's preferred price band inside one leaf category, in USD."""
        lf = self.catalog.leaves[leaf]
        pref = self.truth.price_pref[user_index]
        lo, hi = pref - BAND_HALF_WIDTH, pref + BAND_HALF_WIDTH
        return (round(lf.price_median * float(np.exp(lf.price_sigma * lo)), 2),
                round(lf.price_median * float(np.exp(lf.price_sigma * hi)), 2))

    def hidden_preferences(self) -> dict[str, Any]:
        """The truth as plain JSON: per-user preferences, per-item quality, the search query table."""
        t = self.truth

        def percentile(z: float) -> float:
            return round(0.5 * (1.0 + erf(z / sqrt(2.0))), 4)

        users = []
        for u, uid in enumerate(self.user_ids):
            leaves = [int(k) for k in t.top_leaves[u] if k >= 0]
            pref = float(t.price_pref[u])
            users.append({
                "user_id": uid,
                "top_categories": self.top_categories(u),
                "category_weights": {self.leaf_path(k): round(float(t.taste[u, k]), 4) for k in leaves},
                "favourite_brands": self.favourite_brands(u),
                "price_band": {
                    "label": PRICE_BANDS[int(t.price_band[u])],
                    "position": [round(pref - BAND_HALF_WIDTH, 3), round(pref + BAND_HALF_WIDTH, 3)],
                    "percentile": [percentile(pref - BAND_HALF_WIDTH), percentile(pref + BAND_HALF_WIDTH)],
                    "usd": {self.leaf_path(k): list(self.price_range(u, k)) for k in leaves},
                },
                "price_sensitivity": round(float(t.price_sensitivity[u]), 3),
                "locale": vocab.LOCALES[int(t.locale[u])][0],
                "language": "zh" if t.language[u] else "en",
                "activity": round(float(t.activity[u]), 4),
                "lapsed": bool(t.lapsed[u]),
                "active_until": _iso(float(t.active_until[u])),
                "devices": {d: round(float(p), 3) for d, p in zip(vocab.DEVICES, t.device_mix[u])},
                "search_rate": round(float(t.search_rate[u]), 3),
                "checkout_rate": round(float(t.checkout_rate[u]), 3),
            })
        c = self.catalog
        items = [{"item_id": iid, "quality": round(float(c.quality[i]), 4), "popularity": round(float(c.popularity[i]), 4),
                  "price_position": round(float(c.price_z[i]), 4)} for i, iid in enumerate(self.item_ids)]
        q = self.queries
        queries = [{"query": text, "intended": q.clean[k], "category": self.leaf_path(int(q.leaf[k])),
                    "language": "zh" if q.language[k] else "en", "typo": bool(q.typo[k])} for k, text in enumerate(q.texts)]
        model = {"utility": "3.0*category + 0.6*department + 1.2*favourite_brand - 0.5*sensitivity*(price_position - preferred)^2"
                            " + 0.6*quality + 0.7*popularity + 0.3*same_language - 3.5",
                 "click": "examined (1/(1+position)^0.8) and sigmoid(utility)",
                 "purchase": "clicked, in stock and sigmoid(utility - 1); leaves after a purchase with p=0.5"}
        return {"seed": self.seed, "model": model, "users": users, "items": items, "queries": queries}

    # -- events ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.columns)

    def iter_event_dicts(self, chunk_size: int = 100_000) -> Iterator[dict[str, Any]]:
        """Events as JSON-ready dicts in time order (timestamps ISO 8601 UTC, "Z" suffix)."""
        c = self.columns
        width = max(8, len(str(len(c))))
        n_sessions = int(c.session.max()) + 1 if len(c) else 0
        session_width = max(7, len(str(n_sessions)))
        locales = [l[0] for l in vocab.LOCALES]
        user_locale = [locales[k] for k in self.truth.locale]
        for lo in range(0, len(c), chunk_size):
            hi = min(lo + chunk_size, len(c))
            stamps = np.datetime_as_string((c.timestamp[lo:hi] * 1000.0).astype("datetime64[ms]"), unit="ms")
            users, sessions, items = c.user[lo:hi].tolist(), c.session[lo:hi].tolist(), c.item[lo:hi].tolist()
            types, prices, quantities = c.type[lo:hi].tolist(), c.price[lo:hi].tolist(), c.quantity[lo:hi].tolist()
            queries, devices, referrers = c.query[lo:hi].tolist(), c.device[lo:hi].tolist(), c.referrer[lo:hi].tolist()
            for k in range(hi - lo):
                item = items[k]
                yield {
                    "event_id": f"demo{self.seed}-e{lo + k:0{width}d}",
                    "user_id": self.user_ids[users[k]],
                    "session_id": f"demo{self.seed}-s{sessions[k]:0{session_width}d}",
                    "item_id": self.item_ids[item] if item >= 0 else None,
                    "type": EVENT_TYPES[types[k]],
                    "price": prices[k] if item >= 0 else None,
                    "quantity": quantities[k],
                    "query": c.queries[queries[k]] if queries[k] >= 0 else None,
                    "timestamp": stamps[k] + "Z",
                    "context": {"device": vocab.DEVICES[devices[k]], "locale": user_locale[users[k]],
                                "referrer": vocab.REFERRERS[referrers[k]]},
                }

    def iter_events(self) -> Iterator[Event]:
        """Validated Event models in time order."""
        for record in self.iter_event_dicts():
            yield Event.model_validate(record)

    @cached_property
    def events(self) -> list[Event]:
        """All events as Event models (memory-hungry for millions: prefer iter_events or columns)."""
        return list(self.iter_events())

    def to_interactions(self):
        """Item events as `Interactions` (grouped by user, time order; weights from EVENT_WEIGHTS)."""
        from shoprec.recommend.dataset import Interactions

        c = self.columns
        has_item = np.flatnonzero(c.item >= 0)
        has_item = has_item[np.argsort(c.user[has_item], kind="stable")]
        weights = np.array([EVENT_WEIGHTS[t] for t in EVENT_TYPES], np.float32)[c.type[has_item]]
        return Interactions(
            n_users=len(self.users), n_items=len(self.products), users=c.user[has_item], items=c.item[has_item],
            weights=weights, timestamps=c.timestamp[has_item], user_ids=np.array(self.user_ids),
            item_ids=np.array(self.item_ids), item_texts=[p.text() for p in self.products],
        )

    def summary(self) -> dict[str, Any]:
        c = self.columns
        type_counts = np.bincount(c.type, minlength=len(EVENT_TYPES))
        return {
            "seed": self.seed,
            "products": len(self.products),
            "users": len(self.users),
            "events": len(c),
            "sessions": int(c.session.max()) + 1 if len(c) else 0,
            "events_by_type": {t: int(n) for t, n in zip(EVENT_TYPES, type_counts) if n},
            "leaf_categories": len(self.catalog.leaves),
            "departments": len(self.catalog.departments),
            "brands": len(self.catalog.brands),
            "products_by_language": {"en": int((self.catalog.language == 0).sum()), "zh": int((self.catalog.language == 1).sum())},
            "revenue_usd": round(float(np.nansum(np.where(c.type == EVENT_TYPES.index("purchase"), c.price * c.quantity, 0.0))), 2),
            "window": {"start": self.start.isoformat().replace("+00:00", "Z"), "end": self.end.isoformat().replace("+00:00", "Z")},
        }

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write products/users/events JSONL, hidden_preferences.json and summary.json; returns the paths."""
        import orjson

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / f"{name}.jsonl" for name in ("products", "users", "events")}
        with open(paths["products"], "wb") as f:
            for p in self.products:
                f.write(orjson.dumps(p.model_dump(mode="json")) + b"\n")
        with open(paths["users"], "wb") as f:
            for u in self.users:
                f.write(orjson.dumps(u.model_dump(mode="json")) + b"\n")
        with open(paths["events"], "wb") as f:
            buffer: list[bytes] = []
            for record in self.iter_event_dicts():
                buffer.append(orjson.dumps(record))
                if len(buffer) >= 50_000:
                    f.write(b"\n".join(buffer) + b"\n")
                    buffer.clear()
            if buffer:
                f.write(b"\n".join(buffer) + b"\n")
        paths["hidden_preferences"] = out / "hidden_preferences.json"
        paths["hidden_preferences"].write_bytes(orjson.dumps(self.hidden_preferences()))
        paths["summary"] = out / "summary.json"
        paths["summary"].write_text(json.dumps(self.summary(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return paths


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def generate_demo(n_products: int = 5000, n_users: int = 2000, n_events: int | None = None, seed: int = 42,
                  days: int = 60, end: datetime | None = None, impressions: bool = False) -> DemoShop:
    """Generate a demo shop offline, deterministically from `seed`.

    n_events: None lets activity decide (about 60-100 events per user over 60 days); a number
    gives exactly that many events (whole sessions are dropped at random, or more are simulated).
    end: end of the behaviour window (UTC); fixed by default so output does not depend on today.
    impressions: also emit impression events (each viewed item plus the ones shown but passed
    over); without `n_events`, the other events are the same either way.
    """
    if n_products < 1 or n_users < 1 or days < 1:
        raise ValueError("n_products, n_users and days must be positive")
    if n_events is not None and n_events < 0:
        raise ValueError("n_events must be >= 0")
    end_dt = (end or DEFAULT_END).astimezone(timezone.utc)
    start_dt = end_dt - timedelta(days=days)
    start, stop = start_dt.timestamp(), end_dt.timestamp()
    catalog_seed, user_seed, query_seed, event_seed, trim_seed = np.random.SeedSequence(seed).spawn(5)
    catalog = build_catalog(np.random.default_rng(catalog_seed), n_products, start, stop)
    truth = draw_shoppers(np.random.default_rng(user_seed), catalog, n_users, start, stop)
    queries = build_query_table(np.random.default_rng(query_seed), catalog)
    model = UtilityModel(truth, catalog)

    sessions_per_user = DEFAULT_SESSIONS_PER_USER * days / 60.0
    if n_events is not None:
        per_session = EVENTS_PER_SESSION + (IMPRESSIONS_PER_SESSION if impressions else 0.0)
        sessions_per_user = 1.15 * n_events / (per_session * n_users)
    event_rng = np.random.default_rng(event_seed)
    columns = simulate_events(event_rng, catalog, truth, model, queries, start, stop, sessions_per_user, impressions)
    for _ in range(4):  # too few events (small or unlucky runs): simulate again with more sessions
        if n_events is None or len(columns) >= n_events or sessions_per_user == 0:
            break
        sessions_per_user *= 1.2 * n_events / max(len(columns), 1)
        columns = simulate_events(event_rng, catalog, truth, model, queries, start, stop, sessions_per_user, impressions)
    if n_events is not None:
        columns = trim_to(np.random.default_rng(trim_seed), columns, n_events)
    columns = finalize(columns)

    width = max(6, len(str(n_users - 1)))
    locales = vocab.LOCALES
    users = [
        User(id=f"user_{u:0{width}d}",
             attributes={"locale": locales[int(truth.locale[u])][0], "country": locales[int(truth.locale[u])][2],
                         "language": "zh" if truth.language[u] else "en"},
             created_at=datetime.fromtimestamp(float(truth.signup_at[u]), tz=timezone.utc))
        for u in range(n_users)
    ]
    return DemoShop(catalog, users, truth, columns, queries, seed, start_dt, end_dt)
