"""Shopping sessions, simulated in bulk with numpy (no per-event Python loop).

A session: the shopper picks a leaf category from their taste, maybe searches for it first (in
their language, sometimes with a typo), views a few items chosen by a multinomial-logit choice
(Gumbel top-k over the true utility), adds some to the cart, checks out or abandons, and removes
some of what they did not buy. Consumables are bought again weeks later in short repeat sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shoprec.data.demo import vocab
from shoprec.data.demo.catalog import DAY, Catalog
from shoprec.data.demo.shoppers import ShopperTruth, UtilityModel
from shoprec.data.schemas import EventType

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
T_VIEW = EVENT_TYPES.index("view")
T_CART = EVENT_TYPES.index("add_to_cart")
T_REMOVE = EVENT_TYPES.index("remove_from_cart")
T_PURCHASE = EVENT_TYPES.index("purchase")
T_SEARCH = EVENT_TYPES.index("search")
T_CLICK = EVENT_TYPES.index("click")

# Order of steps inside a session (sort keys): search, then view/cart pairs, removals, purchases.
K_SEARCH, K_VIEW, K_REMOVE, K_PURCHASE = 0, 2, 1000, 2000
MAX_VIEWS = 12
# Impressions: the viewed items plus this many more that were on screen but passed over.
IMPRESSION_EXTRA = 8
T_IMPRESSION = EVENT_TYPES.index("impression")
K_IMPRESSION = 1
# Mean events per browsing session at the default parameters (used to size `n_events` runs).
EVENTS_PER_SESSION = 4.9
IMPRESSIONS_PER_SESSION = 11.1
CELLS_PER_CHUNK = 2_000_000
# Local hour-of-day shopping activity; sessions are placed in each shopper's time zone.
DIURNAL = np.array([1, .5, .3, .2, .2, .3, .6, 1.2, 1.8, 2, 2, 2.2, 2.5, 2.2, 2, 2, 2.1, 2.4, 2.8, 3.4, 3.8, 3.6, 2.8, 1.8])
UTC_OFFSET_HOURS = {"en-US": -5, "en-GB": 0, "zh-CN": 8}


@dataclass
class EventColumns:
    """Events as parallel arrays (n_events,), in time order.

    user, session, item (-1 for searches), type (index into EVENT_TYPES), price (NaN for
    searches), quantity, query (index into `queries`, -1 if none), timestamp (epoch seconds),
    device (index into vocab.DEVICES), referrer (index into vocab.REFERRERS).
    """

    user: np.ndarray
    session: np.ndarray
    item: np.ndarray
    type: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    query: np.ndarray
    timestamp: np.ndarray
    device: np.ndarray
    referrer: np.ndarray
    queries: list[str]

    def __len__(self) -> int:
        return len(self.user)

    def take(self, index: np.ndarray) -> "EventColumns":
        fields = {k: getattr(self, k)[index] for k in ("user", "session", "item", "type", "price", "quantity", "query",
                                                       "timestamp", "device", "referrer")}
        return EventColumns(**fields, queries=self.queries)


@dataclass
class QueryTable:
    """Candidate search queries: `texts[k]` with its leaf, language (0 en / 1 zh) and typo flag."""

    texts: list[str]
    leaf: np.ndarray
    language: np.ndarray
    typo: np.ndarray
    clean: list[str]
    # (n_leaves, 2 languages, 2 typo) -> [start, stop) into the arrays above
    spans: np.ndarray


def _typo_en(text: str, rng: np.random.Generator) -> str:
    words = text.split(" ")
    long_words = [k for k, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long_words:
        return text
    k = long_words[int(rng.integers(len(long_words)))]
    w = words[k]
    j = int(rng.integers(1, len(w) - 1))
    op = int(rng.integers(3))
    if op == 0:
        w = w[:j] + w[j + 1:]  # dropped letter
    elif op == 1:
        w = w[:j - 1] + w[j] + w[j - 1] + w[j + 1:]  # swapped letters
    else:
        w = w[:j] + w[j] + w[j:]  # doubled letter
    words[k] = w
    return " ".join(words)


def _typo_zh(text: str) -> str:
    for k, ch in enumerate(text):
        if ch in vocab.ZH_TYPOS:
            return text[:k] + vocab.ZH_TYPOS[ch] + text[k + 1:]
    return text


def build_query_table(rng: np.random.Generator, catalog: Catalog) -> QueryTable:
    """Per leaf and language: nouns, modifier + noun, brand + noun; each also with one typo variant."""
    texts: list[str] = []
    clean: list[str] = []
    leaf_col: list[int] = []
    lang_col: list[int] = []
    typo_col: list[int] = []
    spans = np.zeros((len(catalog.leaves), 2, 2, 2), np.int64)
    leaf_brands = [sorted({catalog.brands[b] for b in np.unique(catalog.brand[catalog.leaf == k])}) for k in range(len(catalog.leaves))]
    for k, leaf in enumerate(catalog.leaves):
        for lang in (0, 1):
            sep = " " if lang == 0 else ""
            base = [n[lang] for n in leaf.nouns]
            base += [m[lang] + sep + n[lang] for m in leaf.modifiers for n in leaf.nouns[:2]]
            base += [f"{b} {leaf.nouns[0][lang]}" for b in leaf_brands[k][:4]]
            base = list(dict.fromkeys(q.lower() if lang == 0 else q for q in base))
            for typo in (0, 1):
                spans[k, lang, typo, 0] = len(texts)
                for q in base:
                    variant = (_typo_en(q, rng) if lang == 0 else _typo_zh(q)) if typo else q
                    if typo and variant == q:
                        continue
                    texts.append(variant)
                    clean.append(q)
                    leaf_col.append(k)
                    lang_col.append(lang)
                    typo_col.append(typo)
                spans[k, lang, typo, 1] = len(texts)
                if spans[k, lang, 1, 1] == spans[k, lang, 1, 0] and typo:
                    # No typo variant exists for this leaf and language: fall back to clean queries.
                    spans[k, lang, 1] = spans[k, lang, 0]
    return QueryTable(texts=texts, leaf=np.array(leaf_col), language=np.array(lang_col), typo=np.array(typo_col),
                      clean=clean, spans=spans)


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of `probs` (n, k) -> (n,) int."""
    cum = np.cumsum(probs, axis=1)
    r = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((cum < r).sum(1), probs.shape[1] - 1)


def _session_starts(rng: np.random.Generator, truth: ShopperTruth, users: np.ndarray, start: float, end: float) -> np.ndarray:
    """Session start times: uniform over each user's active span, placed at a likely local hour."""
    lo, hi = truth.active_from[users], truth.active_until[users]
    t = lo + rng.random(len(users)) * np.maximum(hi - lo, 3600.0)
    offset = np.array([UTC_OFFSET_HOURS[l[0]] for l in vocab.LOCALES])[truth.locale[users]]
    local_hour = rng.choice(24, size=len(users), p=DIURNAL / DIURNAL.sum())
    local_day = np.floor((t + offset * 3600.0) / DAY)
    t = local_day * DAY + (local_hour - offset) * 3600.0 + rng.random(len(users)) * 3600.0
    # Moving to the local hour can step outside the active span: shift by whole days to get back in.
    t = np.where(t < lo, t + DAY, t)
    t = np.where(t > hi - 3600.0, t - DAY, t)
    return np.clip(t, np.maximum(lo, start), np.minimum(hi, end) - 3600.0)


def simulate_events(rng: np.random.Generator, catalog: Catalog, truth: ShopperTruth, model: UtilityModel,
                    queries: QueryTable, start: float, end: float, sessions_per_user: float,
                    impressions: bool = False) -> EventColumns:
    """Simulate every shopper's sessions; events come back sorted by (session, step).

    impressions: also emit an impression for every item on screen (viewed or passed over); the
    other events are identical either way.
    """
    n_users = len(truth)
    span_days = np.maximum(truth.active_until - truth.active_from, 0.0) / DAY
    rate = sessions_per_user * truth.activity / truth.activity.mean() * span_days / max((end - start) / DAY, 1e-9)
    n_sessions = rng.poisson(rate)
    s_user = np.repeat(np.arange(n_users), n_sessions)
    n_s = len(s_user)
    s_start = _session_starts(rng, truth, s_user, start, end)
    s_leaf = _categorical(rng, truth.taste[s_user])
    s_views = np.minimum(1 + rng.geometric(0.33, n_s) - 1 + (rng.random(n_s) < 0.5), MAX_VIEWS)
    s_device = _categorical(rng, truth.device_mix[s_user])
    s_referrer = rng.choice(len(vocab.REFERRERS), size=n_s, p=[0.35, 0.25, 0.15, 0.1, 0.15])

    # Views: Gumbel top-k over utility = sampling without replacement from the logit choice model.
    v_session, v_item, v_rank, v_util = [], [], [], []
    i_session, i_item = [], []
    order = np.argsort(s_leaf, kind="stable")
    bounds = np.searchsorted(s_leaf[order], np.arange(len(catalog.leaves) + 1))
    for leaf in range(len(catalog.leaves)):
        sessions = order[bounds[leaf]:bounds[leaf + 1]]
        items = np.flatnonzero(catalog.leaf == leaf)
        if len(sessions) == 0 or len(items) == 0:
            continue
        step = max(1, CELLS_PER_CHUNK // len(items))
        for c in range(0, len(sessions), step):
            chunk = sessions[c:c + step]
            util = model.pairs(s_user[chunk], items)
            score = util - np.log(-np.log(rng.random(util.shape)))
            score[catalog.created_at[items][None, :] > s_start[chunk][:, None]] = -np.inf
            k = min(MAX_VIEWS + IMPRESSION_EXTRA, len(items))
            top = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < len(items) else np.broadcast_to(np.arange(len(items)), (len(chunk), k)).copy()
            top_score = np.take_along_axis(score, top, 1)
            rank_order = np.argsort(-top_score, axis=1)
            top = np.take_along_axis(top, rank_order, 1)
            top_score = np.take_along_axis(top_score, rank_order, 1)
            keep = (np.arange(k)[None, :] < s_views[chunk][:, None]) & np.isfinite(top_score)
            rows, cols = np.nonzero(keep)
            if impressions:
                shown = (np.arange(k)[None, :] < s_views[chunk][:, None] + IMPRESSION_EXTRA) & np.isfinite(top_score)
                shown &= keep.any(1, keepdims=True)
                shown_rows, shown_cols = np.nonzero(shown)
                i_session.append(chunk[shown_rows])
                i_item.append(items[top[shown_rows, shown_cols]])
            v_session.append(chunk[rows])
            v_item.append(items[top[rows, cols]])
            v_rank.append(cols)
            v_util.append(np.take_along_axis(util, top, 1)[rows, cols])
    v_session = np.concatenate(v_session) if v_session else np.zeros(0, np.int64)
    v_item = np.concatenate(v_item) if v_item else np.zeros(0, np.int64)
    v_rank = np.concatenate(v_rank) if v_rank else np.zeros(0, np.int64)
    v_util = np.concatenate(v_util) if v_util else np.zeros(0)

    consumable = np.array([l.consumable for l in catalog.leaves])[catalog.leaf]
    n_v = len(v_item)
    carted = catalog.available[v_item] & (rng.random(n_v) < 1.0 / (1.0 + np.exp(-(v_util - 2.3))))
    checkout = rng.random(n_s) < truth.checkout_rate[s_user]
    bought = carted & checkout[v_session] & (rng.random(n_v) < 1.0 / (1.0 + np.exp(-(v_util + 1.0))))
    removed = carted & ~bought & (rng.random(n_v) < 0.35)
    quantity = _quantities(rng, consumable[v_item])

    parts = [
        _part(v_session, v_item, T_VIEW, K_VIEW + 3 * v_rank, 1),
        _part(v_session[carted], v_item[carted], T_CART, K_VIEW + 1 + 3 * v_rank[carted], quantity[carted]),
        _part(v_session[removed], v_item[removed], T_REMOVE, K_REMOVE + v_rank[removed], quantity[removed]),
        _part(v_session[bought], v_item[bought], T_PURCHASE, K_PURCHASE + v_rank[bought], quantity[bought]),
    ]
    if impressions and i_session:
        parts.append(_part(np.concatenate(i_session), np.concatenate(i_item), T_IMPRESSION, K_IMPRESSION, 1))
    # Searches open the session, in the shopper's language; about one in ten has a typo.
    has_views = np.bincount(v_session, minlength=n_s) > 0
    searching = np.flatnonzero(has_views & (rng.random(n_s) < truth.search_rate[s_user]))
    lang = truth.language[s_user[searching]].astype(np.int64)
    typo = (rng.random(len(searching)) < 0.1).astype(np.int64)
    span = queries.spans[s_leaf[searching], lang, typo]
    query = span[:, 0] + (rng.random(len(searching)) * (span[:, 1] - span[:, 0])).astype(np.int64)
    search_part = _part(searching, np.full(len(searching), -1), T_SEARCH, K_SEARCH, 1)
    search_part["query"] = query
    parts.append(search_part)
    # The first product viewed after a search was clicked on its result page: a click carrying
    # the query (placed before the view; it shares the search's moment and draws no randomness).
    query_of = np.full(n_s, -1, np.int64)
    query_of[searching] = query
    from_search = (v_rank == 0) & (query_of[v_session] >= 0)
    click_part = _part(v_session[from_search], v_item[from_search], T_CLICK, K_VIEW, 1)
    click_part["query"] = query_of[v_session[from_search]]
    parts.insert(0, click_part)

    # Repeat purchases of consumables, a few weeks apart, generation after generation.
    s_start_list, s_user_list, s_device_list, s_ref_list = [s_start], [s_user], [s_device], [s_referrer]
    next_session = n_s
    prev_session, prev_item, prev_q = v_session[bought], v_item[bought], quantity[bought]
    prev_time = s_start[prev_session]
    prev_user = s_user[prev_session]
    for _ in range(6):
        again = consumable[prev_item] & (rng.random(len(prev_item)) < 0.5)
        when = prev_time[again] + np.maximum(rng.normal(24.0, 6.0, again.sum()), 7.0) * DAY
        fits = when < np.minimum(truth.active_until[prev_user[again]], end - 3600.0)
        users, items, q, when = prev_user[again][fits], prev_item[again][fits], prev_q[again][fits], when[fits]
        if len(users) == 0:
            break
        sessions = next_session + np.arange(len(users))
        next_session += len(users)
        rebuy = catalog.available[items] & (rng.random(len(users)) < 0.85)
        parts += [
            _part(sessions, items, T_VIEW, K_VIEW, 1),
            _part(sessions, items, T_CART, K_VIEW + 1, q),
            _part(sessions[rebuy], items[rebuy], T_PURCHASE, K_PURCHASE, q[rebuy]),
        ]
        s_start_list.append(when)
        s_user_list.append(users)
        s_device_list.append(_categorical(rng, truth.device_mix[users]))
        s_ref_list.append(np.where(rng.random(len(users)) < 0.5, vocab.REFERRERS.index("email"), vocab.REFERRERS.index("direct")))
        prev_user, prev_item, prev_q, prev_time = users[rebuy], items[rebuy], q[rebuy], when[rebuy]

    session_start = np.concatenate(s_start_list)
    session_user = np.concatenate(s_user_list)
    session_device = np.concatenate(s_device_list)
    session_referrer = np.concatenate(s_ref_list)
    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((ev["key"], ev["session"]))
    ev = {k: v[order] for k, v in ev.items()}
    session = ev["session"]
    # Seconds between steps; timestamps are the per-session running sum from the session start.
    # A result page's impressions share one moment (and draw no randomness, so that turning them
    # on leaves every other event as it was).
    shown = (ev["type"] == T_IMPRESSION) | (ev["type"] == T_CLICK)
    gaps = np.zeros(len(session))
    gaps[~shown] = 5.0 + rng.exponential(35.0, int((~shown).sum()))
    acts = np.flatnonzero(~shown)
    first_act = np.ones(len(acts), bool)
    first_act[1:] = session[acts][1:] != session[acts][:-1]
    gaps[acts[first_act]] = 0.0
    first = np.ones(len(session), bool)
    first[1:] = session[1:] != session[:-1]
    running = np.cumsum(gaps)
    running -= np.maximum.accumulate(np.where(first, running, 0.0))
    timestamp = np.minimum(session_start[session] + running, end - 1.0)

    # Durable goods are bought once: a later purchase of the same item by the same user is dropped
    # (the add_to_cart stays, as an abandoned cart).
    user = session_user[session]
    durable_purchase = np.flatnonzero((ev["type"] == T_PURCHASE) & ~consumable[np.maximum(ev["item"], 0)])
    by_time = durable_purchase[np.argsort(timestamp[durable_purchase], kind="stable")]
    pair = user[by_time].astype(np.int64) * len(catalog.leaf) + ev["item"][by_time]
    _, first_purchase = np.unique(pair, return_index=True)
    repeat = np.setdiff1d(by_time, by_time[first_purchase])
    if len(repeat):
        keep = np.ones(len(session), bool)
        keep[repeat] = False
        ev = {k: v[keep] for k, v in ev.items()}
        session, timestamp = session[keep], timestamp[keep]

    item = ev["item"]
    price = np.where(item >= 0, catalog.price[np.maximum(item, 0)], np.nan)
    return EventColumns(
        user=session_user[session].astype(np.int32), session=session.astype(np.int64), item=item.astype(np.int32),
        type=ev["type"].astype(np.int8), price=price, quantity=ev["quantity"].astype(np.int16),
        query=ev["query"].astype(np.int32), timestamp=timestamp, device=session_device[session].astype(np.int8),
        referrer=session_referrer[session].astype(np.int8), queries=queries.texts,
    )


def _part(session: np.ndarray, item: np.ndarray, kind: int, key, quantity) -> dict[str, np.ndarray]:
    n = len(session)
    return {
        "session": np.asarray(session, np.int64),
        "item": np.asarray(item, np.int64),
        "type": np.full(n, kind, np.int8),
        "key": np.broadcast_to(np.asarray(key, np.int64), (n,)).copy(),
        "quantity": np.broadcast_to(np.asarray(quantity, np.int64), (n,)).copy(),
        "query": np.full(n, -1, np.int64),
    }


def _quantities(rng: np.random.Generator, consumable: np.ndarray) -> np.ndarray:
    """Units per cart line: consumables are often bought two or three at a time."""
    u = rng.random(len(consumable))
    return np.where(consumable, 1 + (u > 0.65) + (u > 0.9), 1 + (u > 0.95)).astype(np.int64)


def trim_to(rng: np.random.Generator, events: EventColumns, n_events: int) -> EventColumns:
    """Keep exactly `n_events`: whole sessions in random order, then the head of one more session."""
    if len(events) <= n_events:
        return events
    n_sessions = int(events.session.max()) + 1
    sizes = np.bincount(events.session, minlength=n_sessions)
    order = rng.permutation(n_sessions)
    total = np.cumsum(sizes[order])
    n_whole = int(np.searchsorted(total, n_events, side="right"))
    keep_session = np.zeros(n_sessions, bool)
    keep_session[order[:n_whole]] = True
    remainder = n_events - (int(total[n_whole - 1]) if n_whole else 0)
    keep = keep_session[events.session]
    if remainder and n_whole < n_sessions:
        partial = order[n_whole]
        in_partial = np.flatnonzero(events.session == partial)  # already in time order
        keep[in_partial[:remainder]] = True
    return events.take(np.flatnonzero(keep))


def finalize(events: EventColumns) -> EventColumns:
    """Sort by time (stable within a session) and renumber sessions 0.. by their first event."""
    order = np.lexsort((np.arange(len(events)), events.timestamp))
    events = events.take(order)
    _, first_index, inverse = np.unique(events.session, return_index=True, return_inverse=True)
    rank = np.empty(len(first_index), np.int64)
    rank[np.argsort(first_index, kind="stable")] = np.arange(len(first_index))
    events.session = rank[inverse]
    return events
