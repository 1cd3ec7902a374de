"""The engine: one object that serves search and recommendations from one artifact version.

Offline and online roles stay apart: `Engine` only *loads* artifacts (built by `shoprec build`);
online learning is cheap per-user state (this session's items, profile counters) updated per
event, and `reload()` swaps to a newer version atomically (one reference assignment).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprec import changes
from shoprec.changes import Follower
from shoprec.data.schemas import EVENT_WEIGHTS, Event, Product
from shoprec.ranking.features import Contributions
from shoprec.recommend.ann import ItemIndex
from shoprec.recommend.base import unit_rows
from shoprec.recommend.generators import (
    ModelGenerator,
    NeighbourGenerator,
    PopularityGenerator,
    Request,
    Retrieved,
    VectorProfileGenerator,
    candidates_many,
)
from shoprec.recommend.scenarios import Scenario, scenarios_with
from shoprec.result_cache import ResultCache, SharedAnswers, pack, unpack
from shoprec.settings import Settings, get_settings
from shoprec.types import Hit, RankedList

log = logging.getLogger("shoprec.engine")

RRF_K = 60.0
RECENT_ITEMS = 20


def _product_dict(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("category", "attributes"):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    for key in ("created_at", "updated_at"):
        if out.get(key) is not None and not isinstance(out[key], (str, int, float)):
            out[key] = str(out[key])
    return out


@dataclass
class Served:
    """Everything loaded from one artifact version (replaced whole on reload)."""

    version: str | None
    path: Path | None
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    item_ids: list[str] = field(default_factory=list)
    item_index: dict[str, int] = field(default_factory=dict)
    user_index: dict[str, int] = field(default_factory=dict)
    sequences: list[np.ndarray] = field(default_factory=list)
    item_vectors: np.ndarray | None = None
    available: np.ndarray | None = None
    leaf_category: np.ndarray | None = None
    generators: dict[str, Any] = field(default_factory=dict)
    searcher: Any = None
    personalisation: Any = None
    precomputed: dict[str, "PrecomputedFeeds"] = field(default_factory=dict)  # scenario -> lists
    stale_subjects: set[str] = field(default_factory=set)  # items whose precomputed lists a catalog change retired
    # The change-journal entries (catalog changes, rules, forgotten users) applied to this version
    # and an order-free digest of their keys: cached answers computed under another digest are
    # stale, and processes with equal digests share answers (`result_cache.SharedAnswers`).
    applied_changes: set[str] = field(default_factory=set)
    changes_digest: int = 0
    warmed_answers: int = 0  # home feeds computed before serving (`Engine._warm_answers`)
    # What the build read: events up to this sequence number, the store as of this time (epoch s).
    events_seq: int | None = None
    data_as_of: float | None = None
    results: ResultCache = field(default_factory=lambda: ResultCache(0))

    @classmethod
    def empty(cls) -> "Served":
        return cls(version=None, path=None)

    @classmethod
    def load(cls, path: Path, ef_search: int = 256, pace: Callable[[Callable[[], Any]], Any] | None = None) -> "Served":
        """A built version, ready to serve; `ef_search` is the HNSW search breadth where graphs exist.

        pace: runs each part of the loading (a `Pacer` at a share of the CPU when the version is
        loaded beside requests: at full speed, two workers loading at once held the CPU for ~2 s
        and requests queued behind them for 20 s, p99 over 100 ms)."""
        from shoprec.recommend.base import Recommender

        run = pace or (lambda step: step())
        served = cls(version=path.name, path=path)
        manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").exists() else {}
        served.events_seq, served.data_as_of = manifest.get("events_seq"), manifest.get("data_as_of")
        run(lambda: served._load_interactions(path))

        rec = path / "recommend"
        vectors_file = rec / "item_vectors.npy"
        served.item_vectors = np.load(vectors_file) if vectors_file.exists() else None
        popularity = np.load(rec / "popularity.npy")
        recent = np.load(rec / "popularity_recent.npy")
        by_locale = dict(np.load(rec / "popularity_by_locale.npz"))
        gens: dict[str, Any] = {
            "popular": PopularityGenerator("popular", popularity),
            "popular_recent": PopularityGenerator("popular_recent", recent + 0.2 * popularity),
            "popular_locale": PopularityGenerator("popular_locale", recent + 0.2 * popularity, by_locale),
        }
        graphs = rec / "ann"
        if served.item_vectors is not None:
            profile_index = run(lambda: ItemIndex.load(graphs / "content_profile.faiss", served.item_vectors, ef_search))
            served.item_vectors = profile_index.vectors  # one array: catalog upserts append to both
            gens["content_profile"] = VectorProfileGenerator(profile_index)
        models_dir = path / "models"
        for model_dir in sorted(models_dir.iterdir()) if models_dir.exists() else []:
            model, name = run(lambda: Recommender.load(model_dir)), model_dir.name
            scoring = unit = None
            if (graphs / f"model-{name}.faiss").exists():
                scoring = run(lambda: ItemIndex.load(graphs / f"model-{name}.faiss", model.scoring_table(), ef_search))
            if (graphs / f"unit-{name}.faiss").exists():
                unit = run(lambda: ItemIndex.load(graphs / f"unit-{name}.faiss", unit_rows(model.item_vectors()), ef_search))
            gens[f"model:{name}"] = ModelGenerator(f"model:{name}", model, scoring)
            gens[f"seeds:{name}"] = NeighbourGenerator(f"seeds:{name}", model, "seeds", index=unit)
            gens[f"recent:{name}"] = NeighbourGenerator(f"recent:{name}", model, "recent", index=unit)
        served.generators = gens

        if (path / "search").exists():
            from shoprec.search.searcher import Searcher

            served.searcher = run(lambda: Searcher.load(path / "search"))
        if (path / "personalisation").exists():
            from shoprec.ranking.serve import Personalisation

            served.personalisation = run(lambda: Personalisation.load(path / "personalisation", served))
            served.generators.update(served.personalisation.generators())
        for file in sorted(rec.glob("precomputed_*.npz")):
            feeds = run(lambda: PrecomputedFeeds.load(file))
            served.precomputed[feeds.scenario] = feeds
        return served

    def _load_interactions(self, path: Path) -> None:
        """The catalog and the id maps and sequences the build's models were trained on."""
        from shoprec.artifacts import parquet_rows
        from shoprec.build import load_sequences

        self.products = {row["id"]: _product_dict(row) for row in parquet_rows(path / "catalog.parquet")}
        self.item_ids = [str(x) for x in np.load(path / "interactions" / "item_ids.npy")]
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_index = {str(u): i for i, u in enumerate(np.load(path / "interactions" / "user_ids.npy"))}
        self.sequences = load_sequences(path / "interactions" / "sequences.npz")
        self._index_catalog()

    def _index_catalog(self) -> None:
        n = len(self.item_ids)
        self.available = np.zeros(n, bool)
        self.leaf_category = np.empty(n, object)
        self.leaf_category[:] = ""
        for item, i in self.item_index.items():
            product = self.products.get(item)
            if product is not None:
                self.available[i] = bool(product.get("available", True))
                self.leaf_category[i] = (product.get("category") or [""])[-1]

    def retire_precomputed(self, ids: list[str], vectors: np.ndarray | None, neighbours: int = 50) -> None:
        """Item-page lists a catalog change may alter: the changed items' own, and those of their
        nearest neighbours by language-model vector, where a new or edited product would show up.
        Home feeds stay: they drop to the live path once they hold an unavailable item."""
        stale = set(ids)
        if vectors is not None and self.item_vectors is not None and len(vectors) and len(self.item_vectors):
            sims = np.asarray(vectors, np.float32) @ self.item_vectors.T
            n = min(neighbours, sims.shape[1])
            stale.update(self.item_ids[j] for j in np.argpartition(-sims, n - 1, axis=1)[:, :n].ravel().tolist())
        self.stale_subjects |= stale

    def add_items(self, products: list[Product], vectors: np.ndarray | None) -> None:
        """Give newly ingested products an index (cold start: content neighbours, no retrain)."""
        new = list({p.id: p for p in products if p.id not in self.item_index}.values())
        for p in products:
            self.products[p.id] = _product_dict(p.model_dump(mode="json"))
        for p in new:
            self.item_index[p.id] = len(self.item_ids)
            self.item_ids.append(p.id)
        if vectors is not None and self.item_vectors is not None and new:
            by_id = {p.id: v for p, v in zip(products, vectors)}
            profile_index = self.generators["content_profile"].index
            profile_index.add(np.stack([by_id[p.id] for p in new]))
            self.item_vectors = profile_index.vectors
        self._index_catalog()


class Engine:
    """Search and recommendations over the current artifact version, plus online per-user state."""

    def __init__(self, settings: Settings | None = None, store=None, shared_answers: SharedAnswers | None = None,
                 warm_answers: bool = False, warm_searches_at_start: bool = True, hold_previous: bool = False):
        """shared_answers: answers shared with the other serving processes of this machine (the
        service's workers). warm_answers: compute active shoppers' answers before serving a version
        (`_warm_answers`; for serving processes, not one-off commands). warm_searches_at_start:
        search the frequent queries before serving the first version too, not only at a swap (the
        feed keeper skips it: the workers search them before they serve, and meanwhile it keeps feeds).
        hold_previous: keep the version a swap replaced until `release_previous()` (the feed keeper
        computes answers for it while the workers still serve it)."""
        from shoprec.data.store import open_store

        self.settings = settings or get_settings()
        self.shared_answers = shared_answers
        self.warm_answers = warm_answers
        self.warm_searches_at_start = warm_searches_at_start
        self.hold_previous = hold_previous
        self._previous: Served | None = None
        # Shared answers are valid only between processes serving with the same settings.
        self._settings_digest = hashlib.blake2b(
            (self.settings.recommend.model_dump_json() + self.settings.search.model_dump_json()).encode(),
            digest_size=8).hexdigest()
        self.store = store if store is not None else open_store(self.settings.store_url)
        self._served = Served.empty()
        self._lock = threading.RLock()
        self._reload_lock = threading.Lock()  # a build's reload and the version watcher's may race
        # Followers of the store (see shoprec.changes): one thread at a time applies events, one the journal.
        self._events_lock = threading.Lock()
        self._journal_lock = threading.Lock()
        self._follower: Follower | None = None
        self._recent: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=RECENT_ITEMS))
        self._counters: dict[str, Counter] = defaultdict(Counter)
        self._last_seen: dict[str, float] = {}
        # An order-free digest of each user's events applied here that answers read (by store sequence
        # number): cached answers for that user computed under another digest are stale.
        self._user_state: dict[str, int] = {}
        self._last_event_seq: dict[str, int] = {}  # the user's newest event's store sequence number
        self.precomputed_answers = 0  # requests answered from the build's precomputed lists
        self.computed_answers = {"recommend": 0, "search": 0}  # answers computed (not reused or precomputed)
        # Seconds after a shopper's newest event during which their home feed may be the one from
        # before it (`_pending_feed`); set by a serving worker while a feed keeper runs, else 0.
        self.feed_grace_s = 0.0
        self.pending_answers = 0  # home feeds answered from before the shopper's newest event
        self.retire_grace_s = 5.0  # a replaced version is dismantled this long after the swap
        self._retiring: threading.Thread | None = None
        self._rng = np.random.default_rng()
        self.scenarios: dict[str, Scenario] = scenarios_with(self.settings.recommend.scenarios)

    @classmethod
    def open(cls, settings: Settings | None = None, shared_answers: SharedAnswers | None = None,
             warm_answers: bool = False, warm_searches_at_start: bool = True, hold_previous: bool = False) -> "Engine":
        """Open the store and load the current artifact version (an empty engine if none is built)."""
        engine = cls(settings, shared_answers=shared_answers, warm_answers=warm_answers,
                     warm_searches_at_start=warm_searches_at_start, hold_previous=hold_previous)
        engine.reload()
        return engine

    @property
    def version(self) -> str | None:
        return self._served.version

    # -- artifact versions ---------------------------------------------------------------------
    def reload(self) -> bool:
        """Swap to the newest complete artifact version; returns True when the version changed."""
        with self._reload_lock:
            return self._reload()

    def _reload(self) -> bool:
        from shoprec.artifacts import ArtifactStore
        from shoprec.errors import NotBuiltError

        try:
            path = ArtifactStore(self.settings.artifacts_dir).current()
        except NotBuiltError:
            return False
        if path.name == self._served.version:
            return False
        first = self._served.version is None
        # A swap holds two versions in memory until the previous one is freed: the processes of the
        # machine take turns, so at most one holds two at a time (all at once, three processes reached
        # 22.3 of 24 GB at 100,000 products, and every request waited on the page cache).
        turn = None if first else machine_turn(Path(self.settings.artifacts_dir) / ".loading.lock")
        # Loading allocates millions of long-lived objects; left on, the collector would walk them
        # all again and again while requests wait (100-500 ms pauses at 100,000 products).
        collecting = gc.isenabled()
        gc.disable()
        try:
            # A swap loads and warms beside the requests the previous version is serving: at a share of the CPU.
            pace = Pacer(1.0 if first else self.settings.service.background_share)
            # Loaded fully before the swap: requests never see a half version.
            served = Served.load(path, self.settings.recommend.ann_ef_search, pace)
            served.results = ResultCache(self.settings.service.result_cache_size, self.shared_answers,
                                         scope=f"{path.name}/{self._settings_digest}")
            if served.searcher is not None and served.results.size:
                served.searcher.share_candidates(self.shared_answers, served.results.scope)
            self._apply_rules(served)
            # Catalog changes and forgotten users written since this version's build read the
            # store, before warming (so warmed answers include them)...
            last_key = self._replay_changes(served, None)
            # and warm: the head of the query stream is answered from memory
            if served.searcher is not None and (self.warm_searches_at_start or not first):
                t0 = time.perf_counter()
                warmed = served.searcher.warm(pace=pace)
                log.info("searched %d frequent queries in %.1fs (%.1fs of work) before serving %s", warmed,
                         time.perf_counter() - t0, pace.busy_s, path.name)
            self._warm_live_paths(served)
            if self._follower is not None:  # a swap: the shoppers' online state is already here
                self._warm_answers(served, pace)
            with self._journal_lock:
                # ...and those written while warming, then the swap: a change either lands in a replay
                # or is followed on the version swapped in (entries followed on the previous version
                # are applied again to this one; applying one twice is harmless).
                last_key = self._replay_changes(served, last_key) or last_key
                retired, self._served = self._served, served
                if self.hold_previous and not first:
                    retired, self._previous = self._previous, retired
                starting = self._follower is None
                if starting:
                    self._follower = self._new_follower(served, last_key)
            if starting:
                replayed = self._follow_events()
                if replayed:
                    log.info("replayed %d events stored since version %s was built", replayed, served.version)
                    self._warm_answers(served, pace)
            if first:
                settle_memory()
            else:
                # Out of the collector's way without a collection (that would pause this worker for
                # seconds): the previous version holds no reference cycles, so it is freed by
                # reference counting once the requests still using it are done, a little at a time.
                gc.freeze()
                if retired is not None:
                    # the turn ends once the previous version is freed: then the next process may load
                    self._retire(retired, turn)
                    turn = None
            del retired
            if self.shared_answers is not None:
                self.shared_answers.announce(served.version)
        finally:
            if turn is not None:
                turn.close()  # closing the file ends the turn (so does the process ending)
            if collecting:
                gc.enable()
        return True

    @property
    def previous_version(self) -> str | None:
        """The version a swap replaced, while held (`hold_previous`)."""
        previous = self._previous
        return previous.version if previous is not None else None

    def release_previous(self) -> None:
        """Retire the held previous version (no process serves it any more)."""
        with self._journal_lock:
            previous, self._previous = self._previous, None
        if previous is not None:
            self._retire(previous)

    # -- following the store (events and changes other processes wrote) ------------------------
    def _new_follower(self, served: Served, journal_key: str | None) -> Follower:
        """Follow from what `served`'s build read: events stored since then (the newest
        `recommend.replay_events` of them, so sessions survive a restart of the serving process),
        journal entries after `journal_key` (else after the build; else from now)."""
        last = self.store.last_event_seq()
        start = last if served.events_seq is None else max(int(served.events_seq), last - self.settings.recommend.replay_events)
        if journal_key is None:
            journal_key = changes.key_at(served.data_as_of if served.data_as_of is not None else time.time())
        return Follower(self.store, start, journal_key)

    def _ensure_follower(self) -> None:
        """Write paths before any version was loaded still follow (from now on)."""
        if self._follower is None:
            with self._journal_lock:
                if self._follower is None:
                    self._follower = self._new_follower(Served.empty(), None)

    def follow(self) -> int:
        """Apply what any process stored since the last call: events to online state, journal
        entries (catalog upserts and deletes, forgotten users) to the served version. Returns the count."""
        if self._follower is None:
            return 0
        return self._follow_events() + self._follow_journal()

    def _follow_events(self, changed: set[str] | None = None) -> int:
        """Apply the events stored since the last call; adds to `changed` the shoppers whose answers they change."""
        with self._events_lock:
            rows = self._follower.new_events()
            now = time.time()
            products = self._served.products
            with self._lock:
                for seq, _event_id, pid, item, kind in rows:
                    self._last_seen[pid] = now
                    self._last_event_seq[pid] = max(self._last_event_seq.get(pid, 0), int(seq))
                    weight = EVENT_WEIGHTS.get(kind, 0)
                    if item and weight > 0:  # what answers read (impressions and searches change nothing)
                        if changed is not None:
                            changed.add(pid)
                        self._user_state[pid] = self._user_state.get(pid, 0) ^ _mark(seq)
                        self._recent[pid].append(item)
                        product = products.get(item) or {}
                        for cat in (product.get("category") or [])[-1:]:
                            self._counters[pid][f"category:{cat}"] += weight
                        if product.get("brand"):
                            self._counters[pid][f"brand:{product['brand']}"] += weight
            return len(rows)

    def keep_feeds(self, pace: Pacer, versions: set[str] | None = None) -> int:
        """Follow the store, then compute the home feed of each shopper whose events changed it into
        the answers shared with the serving processes (each step through `pace`); returns how many.

        versions: the versions the serving processes serve (`SharedAnswers.served_versions`). Feeds
        are computed for the current version (the one the workers serve or are about to: computed
        before they swap, their events would leave most of them stale at the swap) and for the one
        it replaced (held with `hold_previous`) while a worker serves it.

        The feed keeper's loop (`shoprec.service.keeper`): a shopper asks for the next page seconds
        after an event, and finds the feed computed in this process instead of waiting for it in a
        worker, where every request behind it on the event loop waited too."""
        if self._follower is None or self.shared_answers is None or self.settings.recommend.exploration_share > 0:
            return 0
        changed: set[str] = set()
        self._follow_events(changed)
        self._follow_journal()
        previous = self._previous
        targets = [self._served] + ([previous] if previous is not None and previous.version in (versions or ()) else [])
        targets = [served for served in targets if served.item_ids and served.results.size]
        for served in targets:
            for pid in changed:  # answers already computed by a worker are read back, not computed again
                pace(lambda pid=pid, served=served: self._home(served, pid))
        return len(changed) * len(targets)

    def _journal(self, op: str, ids: list[str]) -> None:
        """Record a change for every serving process, and apply it here at once."""
        self._ensure_follower()
        changes.record(self.store, op, ids)
        self._follow_journal()

    def _follow_journal(self) -> int:
        with self._journal_lock:
            entries = self._follower.new_entries()
            for key, entry in entries:
                self._apply_change(self._served, key, entry, online=True)
                if self._previous is not None:  # its answers must carry the changes the workers serving it applied
                    self._apply_change(self._previous, key, entry, online=False)
            return len(entries)

    def _replay_changes(self, served: Served, after_key: str | None) -> str | None:
        """Apply the journal entries after `after_key` (default: since `served`'s build read the
        store) to `served`; returns the last key applied."""
        if served.data_as_of is None:
            return None
        last = None
        for last, entry in changes.since(self.store, after_key or changes.key_at(served.data_as_of)):
            self._apply_change(served, last, entry, online=False)
        return last

    def _apply_change(self, served: Served, key: str, entry: dict[str, Any], online: bool) -> None:
        if key in served.applied_changes:  # a replay overlapping what was followed
            return
        op, ids = entry.get("op"), list(entry.get("ids") or [])
        if op == "upsert":
            products = self.store.get_products(ids)
            if products:
                self._index_products(served, products)
            gone = set(ids) - {p.id for p in products}  # deleted since: the delete's entry follows
            if gone:
                self._unindex_products(served, sorted(gone))
        elif op == "delete":
            self._unindex_products(served, ids)
        elif op == "forget":
            for pid in ids:
                if online:
                    self._forget_online(pid)
                self._forget_served(served, pid)
        elif op == "rules":
            self._apply_rules(served)
        else:
            log.warning("skipped a change journal entry with unknown op %r", op)
        # After the change is in place: an answer computed meanwhile is stamped with the old digest.
        served.applied_changes.add(key)
        served.changes_digest ^= _mark(key)
        if served.searcher is not None:
            served.searcher.changes_stamp = served.changes_digest

    def _retire(self, old: Served, turn: Any = None) -> None:
        """Free a replaced version piecemeal in a background thread, after `retire_grace_s` (the
        requests that began on it are done by then), then close `turn` (a `machine_turn`). Freed at
        once, its millions of small objects (above all the search candidates warmed for its frequent
        queries) held the interpreter for 100 ms at 5,000 products: every request of the worker waited."""
        held = [old]  # the thread drops the last reference itself, before it ends the turn
        del old

        def dismantle() -> None:
            try:
                time.sleep(self.retire_grace_s)
                old = held.pop()
                parts: list[Any] = [old.products, old.item_index, old.user_index]
                parts += [feeds.rows for feeds in old.precomputed.values()]
                if old.searcher is not None:
                    parts += old.searcher.bulky_parts()
                del old
                while parts:
                    part = parts[-1]
                    if isinstance(part, ResultCache):
                        left = part.drain(10)  # candidate sets: a few hundred objects each
                    else:
                        for _ in range(min(200, len(part))):
                            part.popitem()
                        left = len(part)
                    if not left:
                        parts.pop()
                    time.sleep(0.001)  # let requests have the interpreter
                del part
                return_free_memory()
            finally:
                if turn is not None:
                    turn.close()

        self._retiring = threading.Thread(target=dismantle, name="shoprec-retire-version", daemon=True)
        self._retiring.start()

    def _home(self, served: Served, pid: str) -> RankedList:
        """The shopper's default home feed, through the answer cache (computed ahead of their request)."""
        return self._recommend(served, pid, "home", self.settings.recommend.default_k)

    def _warm_answers(self, served: Served, pace: Pacer) -> int:
        """Compute the home feed of shoppers whose events the version's build did not read, into its
        answer cache (shared with the other workers), for up to `service.warm_answers_s` of work
        (each feed run through `pace`); returns how many. Their precomputed lists are stale, so
        after a swap or a restart every one of them was computed live on their next request, all
        at once: at 500 requests/s the workers fell behind for tens of seconds (p99 over 100 ms).
        Newest shoppers first, in an order of this process's own, so workers warming together
        mostly take different shoppers."""
        budget = self.settings.service.warm_answers_s
        if not self.warm_answers or budget <= 0 or not served.results.size or self.settings.recommend.exploration_share > 0:
            return 0
        active = sorted(self._shoppers_since_build(served), reverse=True)
        order: list[str] = []
        for start in range(0, len(active), 256):  # newest first, shuffled within blocks
            block = [pid for _, pid in active[start:start + 256]]
            self._rng.shuffle(block)
            order.extend(block)
        t0 = time.monotonic()
        busy_before = pace.busy_s
        warmed = 0
        served.results.keeping = True  # the processes loading the version after this one read them
        try:
            for pid in order:
                if pace.busy_s - busy_before > budget:
                    break
                pace(lambda: self._home(served, pid))
                warmed += 1
        finally:
            served.results.keeping = False
        served.warmed_answers += warmed
        if warmed:
            log.info("warmed %d of %d shoppers' home feeds in %.1fs for %s", warmed, len(order), time.monotonic() - t0,
                     served.version)
        return warmed

    def _warm_live_paths(self, served: Served) -> None:
        """Answer each scenario once before serving: models build their per-version caches (history
        matrices, item tables) on first use, half a second at 100,000 items that a shopper would wait."""
        if not served.item_ids:
            return
        pid = next(iter(served.user_index), None)
        for spec in self.scenarios.values():
            seeds = [served.item_ids[0]] if spec.needs else []
            try:
                self._rank(served, spec, self._request(served, pid, seeds, None), pid, self.settings.recommend.default_k)
            except Exception:  # a broken scenario fails its own requests, not the whole version
                log.exception("warming scenario %s failed", spec.name)

    def reload_rules(self) -> None:
        """Re-read merchandising rules from the store (after an admin edits them), in every serving process."""
        self._journal("rules", [])

    def _apply_rules(self, served: "Served") -> None:
        from shoprec.search.rules import load_rules

        if served.searcher is not None:
            served.searcher.set_rules(load_rules(self.store))

    def rebuild(self) -> str:
        """Run a build (the offline role) and return the new version; callers then `reload()`."""
        from shoprec.build import build

        return build(self.settings)

    # -- users ---------------------------------------------------------------------------------
    def pseudonym(self, user: str) -> str:
        from shoprec.data.privacy import pseudonymize

        return pseudonymize(str(user), self.settings.pseudonym_key)

    def _stamp(self, served: Served, pid: str | None) -> tuple[int, int]:
        """What a cached answer for `pid` depends on besides the version: (digest of the journal
        entries applied, digest of the user's events applied). Both are the same in every process
        that applied the same changes and events, whatever the order."""
        return served.changes_digest, (self._user_state.get(pid, 0) if pid else 0)

    def _request(self, served: Served, pid: str | None, seeds: list[str], context: dict | None) -> Request:
        req = Request(context=dict(context or {}))
        if pid:
            req.user_index = served.user_index.get(pid)
            if req.user_index is not None and req.user_index < len(served.sequences):
                req.history = served.sequences[req.user_index].astype(np.int64)
            with self._lock:
                recent = list(self._recent.get(pid, ()))
            req.recent = np.array([served.item_index[i] for i in recent if i in served.item_index], np.int64)
        req.seeds = np.array([served.item_index[i] for i in seeds if i in served.item_index], np.int64)
        return req

    def _shoppers_since_build(self, served: Served) -> list[tuple[int, str]]:
        """(newest event's sequence number, pseudonym) of the shoppers whose precomputed lists
        `served` cannot use (`_in_build` is false for them)."""
        with self._lock:
            latest = list(self._last_event_seq.items())
        return [(seq, pid) for pid, seq in latest if not self._in_build(served, pid)]

    def _in_build(self, served: Served, pid: str | None) -> bool:
        """Whether the version's build saw every event of `pid` (so its precomputed list is current):
        after a swap, shoppers whose events the new build read get their precomputed lists back."""
        if not pid:
            return True
        if served.events_seq is None:  # a version built before builds recorded it
            return pid not in self._user_state
        return self._last_event_seq.get(pid, 0) <= served.events_seq

    # -- recommend -----------------------------------------------------------------------------
    def recommend(
        self,
        user: str | None,
        scenario: str = "home",
        k: int = 20,
        item: str | None = None,
        cart: list[str] | None = None,
        context: dict | None = None,
    ) -> RankedList:
        """Fuse the scenario's generators, filter, diversify and explain: the top-k items."""
        if scenario not in self.scenarios:
            raise KeyError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(self.scenarios))}")
        if self.scenarios[scenario].needs == "item" and not item:
            raise ValueError(f"scenario {scenario!r} needs an item")
        return self._recommend(self._served, self.pseudonym(user) if user else None, scenario, k, item, cart, context)

    def _recommend(self, served: Served, pid: str | None, scenario: str, k: int, item: str | None = None,
                   cart: list[str] | None = None, context: dict | None = None) -> RankedList:
        spec = self.scenarios[scenario]
        seeds = [item] if item else list(cart or [])
        if not served.item_ids:
            return RankedList(hits=[], info={"scenario": scenario, "version": served.version})
        # Exploration is random per request, so its answers are never reused.
        reuse = self.settings.recommend.exploration_share <= 0
        key = ("recommend", scenario, pid, item, tuple(cart or ()), k, _context_key(context))
        stamp = self._stamp(served, pid)
        if reuse:
            cached = served.results.get(key, stamp)
            if cached is not None:
                return unpack(cached, served.products.get)
        req = self._request(served, pid, seeds, context)
        if spec.needs and not len(req.seeds) and scenario != "cart":
            return RankedList(hits=[], info={"scenario": scenario, "version": served.version, "unknown_item": True})
        feeds = served.precomputed.get(scenario)
        if reuse and feeds is not None and self._in_build(served, pid) and not context and not cart:
            # Home feeds are per user (no item); item-page lists are per item, for anonymous calls.
            subject = (item if not pid else None) if spec.needs == "item" else (pid if not item else None)
            row = feeds.lookup(subject, k) if subject not in served.stale_subjects else None
            if row is not None and served.available[row[0]].all():
                self.precomputed_answers += 1
                return self._precomputed_list(served, scenario, req, *row)
        if reuse and self.feed_grace_s > 0 and scenario == "home" and pid and not (item or cart or context) \
                and k == self.settings.recommend.default_k:
            pending = self._pending_feed(served, key, stamp, pid, k, req)
            if pending is not None:
                return pending
        self.computed_answers["recommend"] += 1
        result = self._rank(served, spec, req, pid, k)
        if reuse:
            served.results.put(key, stamp, pack(result))
        return result

    def _pending_feed(self, served: Served, key: tuple, stamp: tuple[int, int], pid: str, k: int,
                      req: Request) -> RankedList | None:
        """The shopper's home feed from before their newest events, while the feed keeper computes
        the new one, for `feed_grace_s` after this process applied the newest; else None.

        Computed on a worker's event loop, a feed (~8 ms at 100,000 products) delays every request
        queued behind it, and a shopper's next request often comes within a second of their event,
        before the keeper has it. The earlier feed must have been computed under the same catalog
        changes (so no item in it has been deleted or gone out of stock since); else the build's
        precomputed list, if the build saw the shopper."""
        if time.time() - self._last_seen.get(pid, 0.0) > self.feed_grace_s:
            return None
        data = served.results.earlier(key, lambda earlier: earlier[0] == stamp[0])
        if data is not None:
            result = unpack(data, served.products.get)
        else:
            feeds = served.precomputed.get("home")
            row = feeds.lookup(pid, k) if feeds is not None and pid not in served.stale_subjects else None
            if row is None or not served.available[row[0]].all():
                return None
            result = self._precomputed_list(served, "home", req, *row)
        self.pending_answers += 1
        result.info["pending_events"] = True  # the keeper is computing the feed that includes them
        return result

    def _rank(self, served: Served, spec: Scenario, req: Request, pid: str | None, k: int,
              retrieved: Retrieved | None = None) -> RankedList:
        """The live path: generators (or their `retrieved` candidates), filters, ranker, diversity, explanations."""
        candidates, relevance, contributions = rank_candidates(served, spec, req, pid, retrieved=retrieved)
        lam = spec.diversity if spec.diversity is not None else self.settings.recommend.mmr_lambda
        chosen = mmr(candidates, served.item_vectors, k, lam)
        chosen, explored = explore(chosen, candidates, self.settings.recommend.exploration_share, self._rng)
        hits = [self._hit(served, i, float(relevance[i]), contributions.get(i, {}), req) for i in chosen]
        for hit, i in zip(hits, chosen):
            if i in explored:
                hit.reason = "something new for you to discover"
                hit.sources["exploration"] = 1.0
        return RankedList(hits=hits, total=len(candidates), info={"scenario": spec.name, "version": served.version})

    def _precomputed_list(self, served: Served, scenario: str, req: Request, items: np.ndarray, scores: np.ndarray,
                          sources: list[dict[str, float]], total: int) -> RankedList:
        hits = [self._hit(served, int(i), float(score), src, req) for i, score, src in zip(items, scores, sources)]
        return RankedList(hits=hits, total=total, info={"scenario": scenario, "version": served.version,
                                                        "precomputed": True})

    def precompute(self, scenario: str = "home", k: int | None = None, limit: int | None = None,
                   batch_size: int = 256) -> "PrecomputedFeeds":
        """The scenario's list, as serving would compute it, for the most active known users (home)
        or the most popular items (item-page scenarios such as similar), anonymous and without a session;
        candidates are retrieved `batch_size` subjects at a time.

        Run by the build (the offline role) against the version it just wrote; serving answers
        from it until the user sends an event or the catalog changes."""
        served = self._served
        k = k or self.settings.recommend.default_k
        spec = self.scenarios[scenario]
        if spec.needs == "item":
            limit = self.settings.recommend.precompute_items if limit is None else limit
            popularity = served.generators["popular"].popularity[: len(served.item_ids)]
            order = np.argsort(-popularity, kind="stable")[:limit].tolist()
            subjects = [served.item_ids[i] for i in order if served.item_ids[i] in served.products]
        else:
            limit = self.settings.recommend.precompute_users if limit is None else limit
            lengths = np.fromiter((len(s) for s in served.sequences), np.int64, len(served.sequences))
            by_index = {i: pid for pid, i in served.user_index.items()}
            subjects = [by_index[i] for i in np.argsort(-lengths, kind="stable")[:limit].tolist()
                        if lengths[i] and i in by_index]
        names: dict[str, int] = {}
        items = np.full((len(subjects), k), -1, np.int32)
        scores = np.zeros((len(subjects), k), np.float32)
        totals = np.zeros(len(subjects), np.int64)
        cells: list[tuple[int, int, int, float]] = []
        t0 = time.perf_counter()
        for start in range(0, len(subjects), batch_size):
            if start and start % (20 * batch_size) == 0:
                log.info("precompute %s: %d of %d in %.0fs", scenario, start, len(subjects), time.perf_counter() - t0)
            block = [(None, [s]) if spec.needs == "item" else (s, []) for s in subjects[start:start + batch_size]]
            requests = [self._request(served, pid, seeds, None) for pid, seeds in block]
            # The block's candidates in one call per generator: one model pass, one index search.
            found = candidates_many(served.generators, list(spec.generators), requests, spec.candidates_per_generator)
            for row, (pid, _), req, retrieved in zip(range(start, len(subjects)), block, requests, found):
                result = self._rank(served, spec, req, pid, k, retrieved)
                totals[row] = result.total
                for slot, hit in enumerate(result.hits):
                    items[row, slot] = served.item_index[hit.id]
                    scores[row, slot] = hit.score
                    for name, value in hit.sources.items():
                        cells.append((row, slot, names.setdefault(name, len(names)), value))
        sources = np.zeros((len(subjects), k, max(len(names), 1)), np.float32)
        for row, slot, g, value in cells:
            sources[row, slot, g] = value
        return PrecomputedFeeds(scenario, subjects, items, scores, sources, list(names), totals)

    def similar(self, item: str, k: int = 20) -> RankedList:
        return self.recommend(None, "similar", k=k, item=item)

    def _hit(self, served: Served, i: int, score: float, sources: dict[str, float], req: Request) -> Hit:
        item_id = served.item_ids[i]
        return Hit(id=item_id, score=score, reason=explain(served, i, sources, req), sources=sources,
                   product=served.products.get(item_id))

    # -- search --------------------------------------------------------------------------------
    SORTS = ("relevance", "price_asc", "price_desc", "rating", "newest")

    def search(self, query: str, user: str | None = None, filters=None, k: int = 20, offset: int = 0,
               context: dict | None = None, sort: str = "relevance") -> RankedList:
        """Search the current version; `sort` other than relevance re-orders the top 200 matches."""
        if sort not in self.SORTS:
            raise ValueError(f"sort must be one of {', '.join(self.SORTS)}")
        served = self._served
        if served.searcher is None:
            return RankedList(hits=[], info={"query": query, "version": served.version})
        pid = self.pseudonym(user) if user else None
        key = ("search", query, pid, repr(filters), k, offset, _context_key(context), sort)
        stamp = self._stamp(served, pid)
        cached = served.results.get(key, stamp)
        if cached is not None:
            result = unpack(cached, served.products.get)
        else:
            self.computed_answers["search"] += 1
            result = self._search(served, query, pid, filters, k, offset, context, sort)
            served.results.put(key, stamp, pack(result))
        if result.info.get("zero_result") and query.strip():
            self._log_zero_result(query)
        return result

    def _search(self, served: Served, query: str, pid: str | None, filters, k: int, offset: int,
                context: dict | None, sort: str) -> RankedList:
        profile = self._search_profile(served, pid, context) if pid else None
        if sort == "relevance":
            result = served.searcher.search(query, user_profile=profile, filters=filters, k=k, offset=offset)
        else:
            result = served.searcher.search(query, user_profile=profile, filters=filters, k=200, offset=0)
        for hit in result.hits:  # the full product (attributes, translations), not the index's summary row
            hit.product = served.products.get(hit.id) or hit.product
        if sort != "relevance":
            key, reverse = {"price_asc": ("price", False), "price_desc": ("price", True),
                            "rating": ("rating", True), "newest": ("created_at", True)}[sort]
            known = [h for h in result.hits if (h.product or {}).get(key) is not None]
            unknown = [h for h in result.hits if (h.product or {}).get(key) is None]
            result.hits = (sorted(known, key=lambda h: h.product[key], reverse=reverse) + unknown)[offset:offset + k]
        result.info.setdefault("version", served.version)
        result.info["sort"] = sort
        return result

    def _log_zero_result(self, query: str) -> None:
        """Count queries without exact matches in the store, for the admin's search analytics."""
        from datetime import datetime, timezone

        key = " ".join(query.lower().split())[:200]
        with self._lock:
            record = self.store.get_record("zero_result", key) or {"count": 0}
            record = {"count": int(record.get("count", 0)) + 1, "last": datetime.now(timezone.utc).isoformat()}
            self.store.put_record("zero_result", key, record)

    def _search_profile(self, served: Served, pid: str, context: dict | None) -> dict[str, Any] | None:
        """The user's language-model interest vector and category affinities, for personalised ranking."""
        from shoprec.search.searcher import shopper_profile

        req = self._request(served, pid, [], context)
        history = np.concatenate([req.history, req.recent])[-50:]
        vectors = served.item_vectors[history] if served.item_vectors is not None and len(history) else None
        return shopper_profile(served.leaf_category[history].tolist(), vectors)

    def suggest(self, prefix: str, k: int = 10) -> list[str]:
        served = self._served
        return served.searcher.suggest(prefix, k) if served.searcher is not None else []

    # -- events and catalog (write paths) ------------------------------------------------------
    def record_events(self, events: list[Event]) -> int:
        """Store durably (write-ahead, committed before return), then update online state in place."""
        stored = [e.model_copy(update={"user_id": self.pseudonym(e.user_id)}) for e in events]
        self._ensure_follower()
        added = self.store.add_events(stored)
        # Online state comes from the store, in the order it stored them: this process's events and
        # other processes' alike, and a resent duplicate (not stored again) counts once.
        self._follow_events()
        return added

    def upsert_products(self, products: list[Product]) -> dict[str, int]:
        """Store, journal and index (searchable and recommendable at once, in every serving process)."""
        result = self.store.upsert_products(products)
        self._journal("upsert", [p.id for p in products])
        return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}

    def _index_products(self, served: Served, products: list[Product]) -> None:
        vectors = None
        if served.searcher is not None:
            served.searcher.upsert(products)
            vectors = served.searcher.item_embeddings([p.id for p in products])
        served.add_items(products, vectors)
        if served.personalisation is not None:
            served.personalisation.add_items([p.id for p in products], vectors, served.item_vectors)
        served.retire_precomputed([p.id for p in products], vectors)

    def delete_products(self, ids: list[str]) -> int:
        removed = self.store.delete_products(ids)
        self._journal("delete", list(ids))
        return removed

    def _unindex_products(self, served: Served, ids: list[str]) -> None:
        if served.searcher is not None:
            served.searcher.delete(ids)
        for item in ids:
            served.products.pop(item, None)
            if item in served.item_index:
                served.available[served.item_index[item]] = False
        served.retire_precomputed(list(ids), None)

    def forget_user(self, user: str) -> dict[str, Any]:
        """Delete the user's events and profile everywhere: store, online state and served profiles
        of every serving process (through the journal), and versions loaded later."""
        pid = self.pseudonym(user)
        removed = self.store.forget_user(pid)
        self._journal("forget", [pid])
        return {"user": pid, "rows_removed": removed}

    def _forget_online(self, pid: str) -> None:
        with self._lock:
            self._recent.pop(pid, None)
            self._counters.pop(pid, None)
            self._last_seen.pop(pid, None)
            self._last_event_seq.pop(pid, None)
            self._user_state.pop(pid, None)  # the journal entry changes every stamp

    def _forget_served(self, served: Served, pid: str) -> None:
        if pid in served.user_index:
            i = served.user_index.pop(pid)
            if i < len(served.sequences):
                served.sequences[i] = np.zeros(0, np.int32)
        if served.personalisation is not None:
            served.personalisation.forget(pid)
        for feeds in served.precomputed.values():
            feeds.forget(pid)

    # -- profiles and stats ----------------------------------------------------------------------
    def profile(self, user: str) -> dict[str, Any]:
        served = self._served
        pid = self.pseudonym(user)
        if served.personalisation is not None:
            base = served.personalisation.profile(pid)
        else:
            base = self._history_profile(served, pid)
        with self._lock:
            base["session_items"] = list(self._recent.get(pid, ()))
            base["online_counters"] = dict(self._counters.get(pid, {}))
        base["user"] = pid
        return base

    def _history_profile(self, served: Served, pid: str) -> dict[str, Any]:
        i = served.user_index.get(pid)
        history = served.sequences[i] if i is not None and i < len(served.sequences) else np.zeros(0, np.int64)
        categories = Counter(served.leaf_category[history].tolist()) if served.leaf_category is not None else Counter()
        brands = Counter((served.products.get(served.item_ids[j]) or {}).get("brand", "") for j in history.tolist())
        brands.pop("", None)
        return {
            "lifecycle": "new" if not len(history) else "active",
            "interactions": int(len(history)),
            "top_categories": categories.most_common(5),
            "top_brands": brands.most_common(5),
        }

    def stats(self) -> dict[str, Any]:
        served = self._served
        return {
            "version": served.version,
            "products": len(served.products),
            "items_indexed": len(served.item_ids),
            "users_indexed": len(served.user_index),
            "generators": sorted(served.generators),
            "online_users": len(self._recent),
            "result_cache": served.results.stats(),
            "precomputed_answers": self.precomputed_answers,
            "computed_answers": dict(self.computed_answers),
            "pending_answers": self.pending_answers,
            # Shoppers whose precomputed lists the version cannot use (events its build did not read).
            "shoppers_since_build": len(self._shoppers_since_build(served)),
            "warmed_answers": served.warmed_answers,
            "search_candidate_cache": served.searcher._retrieved.stats() if served.searcher is not None else None,
            "store": self.store.counts(),
        }

    def close(self) -> None:
        self.store.close()



class Pacer:
    """Runs steps of background work at about `share` of one core: after each step it sleeps in
    proportion to the step's duration, so the requests served beside it keep the rest of the CPU
    (and of the interpreter lock). share >= 1: no pauses. `busy_s`: seconds spent in steps."""

    def __init__(self, share: float = 1.0):
        if share <= 0:
            raise ValueError(f"share must be > 0, not {share}")
        self.share = share
        self.busy_s = 0.0

    def __call__(self, step: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return step()
        finally:
            spent = time.perf_counter() - t0
            self.busy_s += spent
            if self.share < 1:
                time.sleep(spent * (1 - self.share) / self.share)


def machine_turn(lock_file: Path):
    """Wait for, then take, this machine's turn at `lock_file` (an exclusive `flock`); returns the open
    file that holds it, or None where file locks are not available."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no turns
        return None
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_file, "a+")
    except OSError as exc:  # e.g. artifacts on a read-only mount: load without waiting for a turn
        log.warning("cannot take turns loading versions through %s (%s); loading now", lock_file, exc)
        return None
    t0 = time.monotonic()
    fcntl.flock(handle, fcntl.LOCK_EX)  # waits without the interpreter lock
    waited = time.monotonic() - t0
    if waited > 1:
        log.info("waited %.0fs for another process of this machine to load the new version first", waited)
    return handle


def return_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc `malloc_trim`): a freed version leaves
    them spread among live objects, and a worker kept ~0.8 GB more after each swap at 100,000
    products. Runs without the interpreter lock; a no-op elsewhere."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def settle_memory() -> None:
    """Collect everything once, then freeze what survives (the served version) out of the collector.

    A version is millions of long-lived objects: left to the collector, every full collection
    paused serving for 100-500 ms. Frozen, they are never walked again. Run when nothing is served
    yet (the first version): the collection itself walks everything (~1 s at the demo's scale)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _mark(x: int | str) -> int:
    """A 64-bit hash of an event's sequence number or a journal key, XOR-ed into state digests."""
    return int.from_bytes(hashlib.blake2b(str(x).encode(), digest_size=8).digest(), "little")


def _context_key(context: dict | None) -> tuple:
    return tuple(sorted((str(k), str(v)) for k, v in (context or {}).items()))


@dataclass
class PrecomputedFeeds:
    """One scenario's top-k per subject (a user's pseudonym, or an item id for item-page scenarios),
    computed by the build: item indices, scores and per-generator contributions, (subjects, k) and
    (subjects, k, generators); -1 pads short lists."""

    scenario: str
    subjects: list[str]
    items: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    source_names: list[str]
    totals: np.ndarray
    rows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = {subject: row for row, subject in enumerate(self.subjects)}

    @property
    def k(self) -> int:
        return int(self.items.shape[1])

    def lookup(self, subject: str | None, k: int) -> tuple[np.ndarray, np.ndarray, list[dict[str, float]], int] | None:
        """(items, scores, contributions per item, total candidates) for this subject, or None."""
        row = self.rows.get(subject) if subject and k == self.k else None
        if row is None:
            return None
        n = int((self.items[row] >= 0).sum())
        sources = [{self.source_names[g]: float(v) for g, v in enumerate(cells) if v}
                   for cells in self.sources[row, :n].tolist()]
        return self.items[row, :n], self.scores[row, :n], sources, int(self.totals[row])

    def forget(self, subject: str) -> None:
        """Drop one subject's list (a forgotten user's feed is personal data)."""
        row = self.rows.pop(subject, None)
        if row is not None:
            self.items[row] = -1
            self.scores[row] = 0.0
            self.sources[row] = 0.0

    def save(self, folder: Path) -> None:
        np.savez(folder / f"precomputed_{self.scenario}.npz", scenario=self.scenario,
                 subjects=np.asarray(self.subjects, dtype=str), items=self.items,
                 scores=self.scores, sources=self.sources, source_names=np.asarray(self.source_names, dtype=str),
                 totals=self.totals)

    @classmethod
    def load(cls, path: Path) -> "PrecomputedFeeds":
        data = np.load(path)
        return cls(str(data["scenario"]), data["subjects"].tolist(), data["items"], data["scores"], data["sources"],
                   data["source_names"].tolist(), data["totals"])


def limit_compute_threads(threads: int) -> None:
    """Cap BLAS (numpy, implicit) and torch intra-op threads for this process (serving roles)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def rank_candidates(served: Served, spec: Scenario, req: Request, user: str | None, use_ranker: bool = True,
                    retrieved: Retrieved | None = None) -> tuple[np.ndarray, np.ndarray, Contributions]:
    """Retrieve (fuse generators), filter, and rank with the learned ranker when the version has one.

    Returns candidates best first, an (n_items,) relevance array, and per-item generator contributions."""
    fused, contributions = fuse(served, spec, req, retrieved)
    candidates = filter_candidates(served, spec, req, fused)
    relevance = fused
    if use_ranker and spec.use_ranker and served.personalisation is not None:
        candidates, scores = served.personalisation.rank(req, candidates, contributions, user)
        if scores is not None:
            # Ranker scores on the ranked head, kept above the fused tail so the order is preserved.
            relevance = np.zeros_like(fused)
            head = len(scores)
            relevance[candidates[:head]] = scores - scores.min() + 1.0
            relevance[candidates[head:]] = fused[candidates[head:]] / max(float(fused.max()), 1e-12)
    return candidates, relevance, contributions


def fuse(served: Served, spec: Scenario, req: Request,
         retrieved: Retrieved | None = None) -> tuple[np.ndarray, Contributions]:
    """Weighted reciprocal-rank fusion over generators: (n_items,) scores and per-item contributions.

    `retrieved`: the request's candidates per generator, fetched for many requests at once
    (`candidates_many`); generators missing from it are asked here."""
    n = len(served.item_ids)
    fused = np.zeros(n, np.float32)
    contributions = Contributions()
    for name, weight in spec.generators.items():
        generator = served.generators.get(name)
        if generator is None:
            continue
        if retrieved is not None and name in retrieved:
            ids, _scores = retrieved[name]
        else:
            ids, _scores = generator.candidates(req, spec.candidates_per_generator)
        ids = ids[ids < n]
        if not len(ids):
            continue
        part = weight / (RRF_K + np.arange(len(ids), dtype=np.float32))
        np.add.at(fused, ids, part)
        contributions.add(name, ids, part)
    return fused, contributions

def filter_candidates(served: Served, spec: Scenario, req: Request, fused: np.ndarray) -> np.ndarray:
    keep = fused > 0
    keep &= served.available[: len(fused)]
    if spec.exclude_seen:
        keep[req.history[req.history < len(keep)]] = False
        keep[req.recent[req.recent < len(keep)]] = False
    if spec.exclude_seeds and len(req.seeds):
        keep[req.seeds] = False
    if spec.other_categories_only:
        mine = set(served.leaf_category[np.concatenate([req.history, req.recent])].tolist())
        keep &= ~np.isin(served.leaf_category[: len(keep)], list(mine))
    candidates = np.flatnonzero(keep)
    return candidates[np.argsort(-fused[candidates], kind="stable")]



def mmr(candidates: np.ndarray, vectors: np.ndarray | None, k: int, lam: float,
        duplicate_threshold: float = 0.985) -> list[int]:
    """Position-aware maximal marginal relevance: pick k of `candidates` (sorted best first) trading
    relevance for novelty; near-identical items (cosine >= duplicate_threshold) are dropped.

    At slot t an item gains lam * d(t) * d(rank) - (1 - lam) * (mean cosine to the items already
    picked), with d(x) = 1 / log2(x + 2), the DCG discount. Weighting relevance by the slot's discount
    spends diversity where NDCG loses least (the tail) and the mean cosine is what intra-list
    diversity averages. Of the rules compared on Amazon Beauty (benchmarks/blend/README.md) it gives
    the most diversity for a given NDCG loss, if by a small margin (+18.9% ILD for -2.7% NDCG)."""
    pool = candidates[: max(k * 10, 100)]
    if vectors is None or len(pool) <= 1:
        return pool[:k].tolist()
    pool = pool[pool < len(vectors)]
    rel = 1.0 / np.log2(np.arange(len(pool)) + 2.0)
    vecs = vectors[pool]
    sim_sum = np.zeros(len(pool))
    chosen: list[int] = []
    alive = np.ones(len(pool), bool)
    while len(chosen) < k and alive.any():
        discount = 1.0 / np.log2(len(chosen) + 2.0)
        gain = np.where(alive, lam * discount * rel - (1 - lam) * sim_sum / max(len(chosen), 1), -np.inf)
        best = int(np.argmax(gain))
        chosen.append(int(pool[best]))
        alive[best] = False
        sims = vecs @ vecs[best]
        alive &= sims < duplicate_threshold
        sim_sum += sims
    return chosen


def explore(chosen: list[int], candidates: np.ndarray, share: float, rng: np.random.Generator,
            depth: int = 100) -> tuple[list[int], set[int]]:
    """Replace a `share` of the slots (spread from the bottom up) with random deeper candidates."""
    n_explore = int(round(len(chosen) * share))
    pool = np.setdiff1d(candidates[: len(chosen) + depth], chosen)
    if n_explore <= 0 or not len(pool):
        return chosen, set()
    picks = rng.choice(pool, size=min(n_explore, len(pool)), replace=False).tolist()
    out = list(chosen)
    for j, item in enumerate(picks):
        out[len(out) - 1 - 2 * j if len(out) - 1 - 2 * j >= 0 else j] = int(item)
    return out, set(picks)


_GENERATOR_REASONS = {
    "model": "picked for you from your shopping history",
    "content_profile": "matches your interest in {category}",
    "popular": "popular in {category}",
    "popular_recent": "popular in {category} this week",
    "popular_locale": "popular near you in {category} this week",
}


def explain(served: Served, i: int, sources: dict[str, float], req: Request) -> str:
    """A human-readable reason from the strongest generator behind this item."""
    category = served.leaf_category[i] or "the shop"
    if not sources:  # proposed deep in some list, or by exploration
        return f"picked for you from {category}"
    strongest = max(sources, key=sources.get)

    def title(index: int) -> str:
        product = served.products.get(served.item_ids[index]) or {}
        return str(product.get("title", served.item_ids[index]))

    kind, _, detail = strongest.partition(":")
    if kind == "recent" and len(req.recent):
        return f"because you viewed {title(int(req.recent[-1]))}"
    if kind == "seeds" and len(req.seeds):
        seed = title(int(req.seeds[0]))
        # Behavioural neighbours need not look alike (tea bought with a backpack): say so.
        return f"similar to {seed}" if detail == "content" else f"shoppers who liked {seed} also liked this"
    if kind == "graph" and len(req.seeds) + len(req.recent):
        seed = title(int(req.seeds[0] if len(req.seeds) else req.recent[-1]))
        return {"co_buy": f"frequently bought together with {seed}", "co_view": f"often viewed together with {seed}",
                "complement": f"goes well with {seed}"}.get(detail, f"similar to {seed}")
    if kind == "model" and detail in ("sasrec", "gru4rec", "itemknn") and len(req.history) + len(req.recent):
        last = req.recent[-1] if len(req.recent) else req.history[-1]
        return f"because you viewed {title(int(last))}"
    if kind == "model" and detail in ("als", "bpr", "lightgcn", "userknn"):
        return "shoppers with similar taste bought this"
    template = _GENERATOR_REASONS.get(strongest, _GENERATOR_REASONS.get(kind, "recommended for you"))
    return template.format(category=category)
