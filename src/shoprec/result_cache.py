"""Recently served ranked lists, reused while nothing they were computed from has changed.

A request's answer depends on the artifact version, the catalog (upserts, deletes, rules) and the
user's online state (events applied). Each entry keeps the stamp of those it was computed under —
digests of the change-journal entries and of the user's events applied, see `Engine._stamp` — and
a read with a different stamp is a miss, so an event or a catalog change shows in that user's next
response without any explicit invalidation. The cache belongs to one loaded version and is
dropped with it on swap.

Serving processes of one machine also share answers through `SharedAnswers`: every process follows
the same store, so equal stamps mean equal state, and an answer one worker computed serves the
others.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Hashable

import orjson

from shoprec.types import Hit, RankedList

log = logging.getLogger(__name__)


class ResultCache:
    """Bounded LRU of `key -> (stamp, value)`; thread-safe. `size` 0 disables it.

    With `shared`, a local miss is looked up there (under `scope`, e.g. the version) and every put
    is shared; keys and stamps must then have the same `repr` in every process, values be bytes."""

    def __init__(self, size: int, shared: "SharedAnswers | None" = None, scope: str = ""):
        self.size = max(0, int(size))
        self.shared = shared if self.size else None
        self.scope = scope
        self._entries: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.shared_hits = 0
        # While set, shared puts go to the kept table (`SharedAnswers.get`): a version's warm-up,
        # which the other processes read when they load it, minutes later.
        self.keeping = False

    def get(self, key: Hashable, stamp: Hashable) -> Any | None:
        """The value stored under `key` with this exact `stamp`, else None (a stale entry stays until
        replaced or pushed out: `earlier` may still serve it)."""
        if not self.size:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
        value = self.shared.get(self.scope, key, stamp, table="any") if self.shared is not None else None
        with self._lock:
            if value is None:
                self.misses += 1
                return None
            self.shared_hits += 1
            self._keep(key, stamp, value)
        return value

    def earlier(self, key: Hashable, accept: Callable[[Hashable], bool]) -> Any | None:
        """The value last stored under `key` (here, else shared) if `accept(its stamp)`, else None: an
        answer from before the newest changes, for a caller that may serve it a moment longer."""
        if not self.size:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and accept(entry[0]):
            return entry[1]
        if self.shared is None:
            return None
        return next((value for stamp, value in self.shared.stamped(self.scope, key) if accept(stamp)), None)

    def put(self, key: Hashable, stamp: Hashable, value: Any) -> None:
        if not self.size:
            return
        with self._lock:
            self._keep(key, stamp, value)
        if self.shared is not None:
            self.shared.put(self.scope, key, stamp, value, table="kept" if self.keeping else "answers")

    def _keep(self, key: Hashable, stamp: Hashable, value: Any) -> None:
        self._entries[key] = (stamp, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def drain(self, n: int) -> int:
        """Drop the `n` oldest entries; returns how many are left (for freeing a retired cache piecemeal)."""
        with self._lock:
            for _ in range(min(n, len(self._entries))):
                self._entries.popitem(last=False)
            return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, Any]:
        """Hits count answers from this process's entries and from other processes' (`shared_hits`)."""
        hits = self.hits + self.shared_hits
        total = hits + self.misses
        return {"entries": len(self._entries), "size": self.size, "hits": hits, "shared_hits": self.shared_hits,
                "misses": self.misses, "hit_rate": round(hits / total, 4) if total else None}


class SharedAnswers:
    """Answers shared by the serving processes of one machine: a SQLite file in WAL mode.

    With `shoprec serve --workers N`, an event makes the shopper's next answer stale in every
    worker (each follows the store), and each worker computed it again; with this, the first to be
    asked computes it and the others read it (a 5 KB answer: 0.007 ms median to read, 0.017 ms to
    write). Best effort: a write that would wait for another process's lock is skipped (the answer
    is then only not shared). The file holds nothing that cannot be recomputed.

    Requests only read and insert. Dropping rows beyond `size` and checkpointing the WAL happen in
    `maintain()`, on its own connection, from a housekeeping thread: done inline every 500 writes,
    they held a worker's event loop for 200-350 ms (search answers are ~14 KB, so 500 of them
    are thousands of pages to free and copy back), the worst stall of a steady load run.

    A second table keeps what the feed keeper computes to warm a new version (the frequent queries'
    candidates, the active shoppers' feeds) for the workers, which load the version after it, one
    at a time, minutes later: the answers' own turnover would have dropped it by then.

    The file also records which artifact version each serving process serves (`announce`,
    `served_versions`) and which process is the feed keeper (`announce_keeper`): the keeper computes
    answers for the versions the workers serve, and loads each new version before them."""

    SCHEMA = 1

    def __init__(self, path: Path, size: int = 20_000, wait_ms: int = 2):
        """wait_ms: longest a write waits for another writer's lock before it is skipped."""
        self.path = Path(path)
        self.size = int(size)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Generous timeout while setting up (the workers start together), then never wait long:
        # a request thread must not stall behind another process's write.
        self._conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=OFF")  # derived data: nothing to lose in a crash
        self._conn.execute("CREATE TABLE IF NOT EXISTS answers (key BLOB PRIMARY KEY, stamp BLOB NOT NULL, value BLOB NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS serving (process INTEGER PRIMARY KEY, version TEXT NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS keepers (process INTEGER PRIMARY KEY)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS kept (key BLOB PRIMARY KEY, stamp BLOB NOT NULL, value BLOB NOT NULL)")
        self._conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # see maintain()
        self._lock = threading.Lock()
        self._maintenance: sqlite3.Connection | None = None
        self._maintenance_lock = threading.Lock()
        self.skipped = 0

    @classmethod
    def beside(cls, artifacts_dir: Path, size: int, wait_ms: int = 2) -> "SharedAnswers":
        """The machine's shared answers for this artifact root (a dot-file, not a version)."""
        return cls(Path(artifacts_dir) / f".answers-v{cls.SCHEMA}.sqlite", size, wait_ms)

    @staticmethod
    def _digest(scope: str, key: Hashable) -> bytes:
        return hashlib.blake2b(repr((scope, key)).encode(), digest_size=16).digest()

    def get(self, scope: str, key: Hashable, stamp: Hashable, table: str = "answers") -> bytes | None:
        """The value put under (scope, key) with an equal stamp, else None. table: "answers", "kept"
        for values other processes read minutes later (a new version's warm-up), which the answers'
        turnover would have dropped by then (each keeps its newest `size` rows), or "any" (both, in
        one statement: a request's lookup)."""
        tables = ("answers", "kept") if table == "any" else (self._table(table),)
        sql = " UNION ALL ".join(f"SELECT stamp, value FROM {name} WHERE key = ?1" for name in tables)
        try:
            with self._lock:
                rows = self._conn.execute(sql, (self._digest(scope, key),)).fetchall()
        except sqlite3.Error:
            return None
        wanted = repr(stamp).encode()
        return next((value for found, value in rows if found == wanted), None)

    def stamped(self, scope: str, key: Hashable) -> list[tuple[Hashable, bytes]]:
        """Every (stamp, value) put under (scope, key), in either table, newest table first."""
        sql = "SELECT stamp, value FROM answers WHERE key = ?1 UNION ALL SELECT stamp, value FROM kept WHERE key = ?1"
        try:
            with self._lock:
                rows = self._conn.execute(sql, (self._digest(scope, key),)).fetchall()
        except sqlite3.Error:
            return []
        return [(ast.literal_eval(stamp.decode()), value) for stamp, value in rows]  # stamps are reprs of plain tuples

    def put(self, scope: str, key: Hashable, stamp: Hashable, value: bytes, table: str = "answers") -> None:
        try:
            with self._lock:
                self._conn.execute(f"INSERT OR REPLACE INTO {self._table(table)} (key, stamp, value) VALUES (?, ?, ?)",
                                   (self._digest(scope, key), repr(stamp).encode(), value))
        except sqlite3.OperationalError:  # locked by another writer: skip, do not wait
            self.skipped += 1

    @staticmethod
    def _table(name: str) -> str:
        if name not in ("answers", "kept"):
            raise ValueError(f"no shared table {name!r}: 'answers' or 'kept'")
        return name

    def maintain(self, batch: int = 100) -> int:
        """Drop the rows beyond `size`, longest unwritten first, then checkpoint the WAL: the number dropped.

        For a housekeeping thread, never a request: it runs on its own connection (SQLite releases
        the interpreter lock while it works), deletes `batch` rows per transaction so another
        writer waits at most one short transaction (and then skips its write), and checkpoints
        passively (readers and writers go on)."""
        dropped = 0
        with self._maintenance_lock:
            conn = self._maintenance_connection()
            try:
                for table in ("answers", "kept"):
                    while True:
                        # Replaced rows get a new rowid, so the lowest rowids are the longest unwritten.
                        cursor = conn.execute(
                            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE rowid <= "
                            f"(SELECT max(rowid) FROM {table}) - ? ORDER BY rowid LIMIT ?)", (self.size, batch))
                        dropped += max(cursor.rowcount, 0)
                        if cursor.rowcount < batch:
                            break
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError:  # another process is maintaining it: its turn
                pass
        return dropped

    def _maintenance_connection(self) -> sqlite3.Connection:
        if self._maintenance is None:
            self._maintenance = sqlite3.connect(self.path, timeout=1, isolation_level=None, check_same_thread=False)
            self._maintenance.execute("PRAGMA synchronous=OFF")
            self._maintenance.execute("PRAGMA wal_autocheckpoint=0")
        return self._maintenance

    def announce(self, version: str | None) -> None:
        """Record that this process now serves `version` (after loading it; not on the request path)."""
        self._record("INSERT OR REPLACE INTO serving (process, version) VALUES (?, ?)", (os.getpid(), version or ""))

    def announce_keeper(self) -> None:
        """Record that this process is the machine's feed keeper: the workers let it load and warm
        each new version first (`keeper_serves`)."""
        self._record("INSERT OR REPLACE INTO keepers (process) VALUES (?)", (os.getpid(),))

    def keeper_serves(self, version: str) -> bool | None:
        """Whether a live feed keeper of this machine serves `version`; None when no keeper is alive."""
        keepers = self.live_keepers()
        if not keepers:
            return None
        return any(self.serving_processes().get(p) == version for p in keepers)

    def live_keepers(self) -> list[int]:
        """The process ids of this machine's live feed keepers (one, with `shoprec serve`)."""
        with self._maintenance_lock:
            try:
                return [p for (p,) in self._maintenance_connection().execute("SELECT process FROM keepers") if _alive(p)]
            except sqlite3.OperationalError:
                return []

    def _record(self, sql: str, args: tuple) -> None:
        with self._maintenance_lock:
            for attempt in range(5):  # each waits up to a second for the other processes' writes
                try:
                    self._maintenance_connection().execute(sql, args)
                    return
                except sqlite3.OperationalError:
                    pass
            # the keeper then keeps the previous version's feeds a while longer; the workers wait for it longer
            log.warning("could not record %r for this process in %s", args, self.path)

    def served_versions(self) -> set[str]:
        """The versions the other live processes of this machine announced (records of ended processes are dropped)."""
        return {version for process, version in self.serving_processes().items() if process != os.getpid() and version}

    def serving_processes(self) -> dict[int, str]:
        """Process id -> announced version, of the live processes of this machine (this one included)."""
        with self._maintenance_lock:
            conn = self._maintenance_connection()
            try:
                rows = conn.execute("SELECT process, version FROM serving").fetchall()
                live = {process for process, _ in rows if _alive(process)}
                conn.executemany("DELETE FROM serving WHERE process = ?", [(p,) for p, _ in rows if p not in live])
            except sqlite3.OperationalError:
                return {}
        return {process: version for process, version in rows if process in live}

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        if self._maintenance is not None:
            self._maintenance.close()


def _alive(process: int) -> bool:
    try:
        os.kill(process, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def pack(ranked: RankedList) -> bytes:
    """A ranked list as JSON bytes, products left out (looked up again by `unpack`).

    Kept this way, a cached answer is one object that the garbage collector never walks instead of
    a hundred small ones: with thousands of answers kept, every full collection paused serving for
    100-200 ms."""
    return orjson.dumps({"hits": [[h.id, h.score, h.reason, h.sources, h.highlights] for h in ranked.hits],
                         "total": ranked.total, "facets": ranked.facets, "info": ranked.info},
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str)


def unpack(data: bytes, product_of: Callable[[str], dict[str, Any] | None]) -> RankedList:
    """The ranked list `pack` stored, with each hit's product from `product_of(id)`."""
    raw = orjson.loads(data)
    hits = [Hit(id=i, score=score, reason=reason, sources=sources, highlights=highlights, product=product_of(i))
            for i, score, reason, sources, highlights in raw["hits"]]
    return RankedList(hits=hits, total=raw["total"], facets=raw["facets"], info=raw["info"])
