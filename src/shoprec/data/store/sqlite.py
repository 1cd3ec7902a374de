"""SQLite store backend (`sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`).

WAL journal with synchronous=FULL: a commit is on disk before `add_events` returns, so an
acknowledged event survives a crash or power loss. One writer connection behind a lock (SQLite
allows one writer at a time anyway); reads use one connection per thread, which WAL lets run
alongside a write, so a build reading every event does not stall the service's event writes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from shoprec.data.schemas import Event, Product, User
from shoprec.data.store import common
from shoprec.data.store.base import Store, UpsertResult

SCHEMA_VERSION = 2  # 2: events.seq never reused (AUTOINCREMENT), so followers can trust it
_IN_CHUNK = 900  # ids per `IN (...)` list, well under SQLite's bound-variable limit

_DDL = """
CREATE TABLE IF NOT EXISTS products (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '[]',
    brand TEXT NOT NULL DEFAULT '',
    price REAL,
    currency TEXT NOT NULL DEFAULT 'USD',
    attributes TEXT NOT NULL DEFAULT '{}',
    image_url TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'en',
    available INTEGER NOT NULL DEFAULT 1,
    rating REAL,
    created_at REAL,
    updated_at REAL
);
CREATE TABLE IF NOT EXISTS price_history (
    seq INTEGER PRIMARY KEY,
    product_id TEXT NOT NULL,
    changed_at REAL NOT NULL,
    price REAL
);
CREATE INDEX IF NOT EXISTS price_history_product ON price_history (product_id, seq);
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at REAL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT '',
    item_id TEXT,
    type TEXT NOT NULL,
    value REAL,
    quantity INTEGER NOT NULL DEFAULT 1,
    price REAL,
    query TEXT,
    timestamp REAL NOT NULL,
    context TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_time ON events (timestamp, seq);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS records_key ON records (key);
"""

_PRODUCT_COLS = ", ".join(common.PRODUCT_COLUMNS)
_EVENT_COLS = ", ".join(common.EVENT_COLUMNS)


def sqlite_path(url: str) -> str:
    """The file path in a `sqlite:///...` URL (":memory:" for an in-memory database)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute.db")
    path = url[len("sqlite:///"):].split("?", 1)[0]
    if not path:
        raise ValueError(f"SQLite URL {url!r} names no file")
    return path


class SQLiteStore(Store):
    """The default store: one SQLite file."""

    def __init__(self, url: str, timeout_s: float = 30.0):
        self.url = url
        self.path = sqlite_path(url)
        self._memory = self.path == ":memory:"
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout_s
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        # The writer gets a larger page cache: bulk inserts touch index pages all over the file.
        self._conn = self._connect(cache_mb=64)
        with self._lock:
            self._conn.executescript(_DDL)
            self._migrate()
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate(self) -> None:
        """Version 1 -> 2: events.seq without AUTOINCREMENT reused the numbers of deleted newest rows
        (a forgotten user's), so a process following new events by seq missed the next ones."""
        def events_sql(conn: sqlite3.Connection) -> str:
            return conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()[0]

        if "AUTOINCREMENT" in events_sql(self._conn).upper():
            return
        with self._write() as conn:
            if "AUTOINCREMENT" in events_sql(conn).upper():
                return  # another process migrated it first
            conn.execute("DROP INDEX IF EXISTS events_time")
            conn.execute("DROP INDEX IF EXISTS events_user")
            conn.execute("ALTER TABLE events RENAME TO events_v1")
            for statement in _DDL.split(";"):
                if "events" in statement and statement.strip():
                    conn.execute(statement)
            columns = "seq, " + _EVENT_COLS
            conn.execute(f"INSERT INTO events ({columns}) SELECT {columns} FROM events_v1 ORDER BY seq")
            conn.execute("DROP TABLE events_v1")

    def _connect(self, cache_mb: int = 16) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
        return conn

    # -- connections and transactions ------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        self._check_open()
        if self._memory:  # each connection to ":memory:" is its own database: share the writer
            with self._lock:
                yield self._conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        yield conn

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"store {self.url} is closed")

    # -- catalog -------------------------------------------------------------------------------
    def upsert_products(self, products: Iterable[Product]) -> UpsertResult:
        rows = [common.product_row(p) for p in products]
        total = UpsertResult()
        if not rows:
            return total
        with self._write() as conn:
            existing = self._stored_products(conn, {r[0] for r in rows})
            inserts, updates, history, result = common.plan_product_upsert(existing, rows)
            if inserts:
                marks = ", ".join("?" * len(common.PRODUCT_COLUMNS))
                conn.executemany(f"INSERT INTO products ({_PRODUCT_COLS}) VALUES ({marks})", inserts)
            if updates:
                sets = ", ".join(f"{c} = ?" for c in common.PRODUCT_COLUMNS[1:])
                conn.executemany(f"UPDATE products SET {sets} WHERE id = ?", [r[1:] + (r[0],) for r in updates])
            if history:
                conn.executemany("INSERT INTO price_history (product_id, changed_at, price) VALUES (?, ?, ?)", history)
        return result

    def _stored_products(self, conn: sqlite3.Connection, ids: set[str]) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        id_list = list(ids)
        for start in range(0, len(id_list), _IN_CHUNK):
            chunk = id_list[start:start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in conn.execute(f"SELECT {_PRODUCT_COLS} FROM products WHERE id IN ({marks})", chunk):
                out[row[0]] = common.normalise_product_row(row)
        return out

    def delete_products(self, ids: Iterable[str]) -> int:
        id_list = list(dict.fromkeys(str(i) for i in ids))
        removed = 0
        with self._write() as conn:
            for start in range(0, len(id_list), _IN_CHUNK):
                chunk = id_list[start:start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                removed += conn.execute(f"DELETE FROM products WHERE id IN ({marks})", chunk).rowcount
                conn.execute(f"DELETE FROM price_history WHERE product_id IN ({marks})", chunk)
        return removed

    def get_products(self, ids: Iterable[str]) -> list[Product]:
        id_list = [str(i) for i in ids]
        found: dict[str, tuple] = {}
        with self._read() as conn:
            unique = list(dict.fromkeys(id_list))
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start:start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for row in conn.execute(f"SELECT {_PRODUCT_COLS} FROM products WHERE id IN ({marks})", chunk):
                    found[row[0]] = row
        return [common.row_product(found[i]) for i in id_list if i in found]

    def read_products(self) -> pa.Table:
        with self._read() as conn:
            return common.products_table(conn.execute(f"SELECT {_PRODUCT_COLS} FROM products ORDER BY seq"))

    def price_history(self, product_id: str) -> list[tuple[Any, float | None]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT changed_at, price FROM price_history WHERE product_id = ? ORDER BY seq", (product_id,)
            ).fetchall()
        return [(common.from_epoch(t), p) for t, p in rows]

    # -- users and events ------------------------------------------------------------------------
    def upsert_users(self, users: Iterable[User]) -> UpsertResult:
        rows = [common.user_row(u) for u in users]
        result = UpsertResult()
        if not rows:
            return result
        with self._write() as conn:
            stored: dict[str, tuple] = {}
            ids = list({r[0] for r in rows})
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for row in conn.execute(f"SELECT id, attributes, created_at FROM users WHERE id IN ({marks})", chunk):
                    stored[row[0]] = tuple(row)
            for row in rows:
                old = stored.get(row[0])
                if old is None:
                    conn.execute("INSERT INTO users (id, attributes, created_at) VALUES (?, ?, ?)", row)
                    result.inserted += 1
                elif old == row:
                    result.unchanged += 1
                else:
                    conn.execute("UPDATE users SET attributes = ?, created_at = ? WHERE id = ?", (row[1], row[2], row[0]))
                    result.updated += 1
                stored[row[0]] = row
        return result

    def ensure_users(self, user_ids: Iterable[str]) -> int:
        """Create bare user rows for ids not stored yet (existing rows untouched); returns how many were new."""
        rows = [(u, "{}", time.time()) for u in dict.fromkeys(user_ids)]
        if not rows:
            return 0
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO users (id, attributes, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING", rows
            )
            return conn.total_changes - before

    def add_events(self, events: Iterable[Event]) -> int:
        return self.add_event_rows([common.event_row(e) for e in events])

    def add_event_rows(self, rows: list[tuple]) -> int:
        """`add_events` for rows already in EVENT_COLUMNS order (the bulk-ingest path)."""
        if not rows:
            return 0
        marks = ", ".join("?" * len(common.EVENT_COLUMNS))
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                f"INSERT INTO events ({_EVENT_COLS}) VALUES ({marks}) ON CONFLICT (event_id) DO NOTHING", rows
            )
            return conn.total_changes - before

    def read_events(self, since: Any | None = None) -> pa.Table:
        start = common.since_epoch(since)
        with self._read() as conn:
            if start is None:
                cursor = conn.execute(f"SELECT {_EVENT_COLS} FROM events ORDER BY timestamp, seq")
            else:
                cursor = conn.execute(
                    f"SELECT {_EVENT_COLS} FROM events WHERE timestamp >= ? ORDER BY timestamp, seq", (start,)
                )
            return common.events_table(cursor)

    def last_event_seq(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def events_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, str, str, str | None, str]]:
        with self._read() as conn:
            return conn.execute("SELECT seq, event_id, user_id, item_id, type FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                (int(seq), int(limit))).fetchall()

    def forget_user(self, user_id: str) -> int:
        return sum(self.forget_user_detail(user_id).values())

    def forget_user_detail(self, user_id: str) -> dict[str, int]:
        """Delete the user's events, user row and records keyed by the user: rows removed per table."""
        with self._write() as conn:
            return {
                "events": conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount,
                "users": conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount,
                "records": conn.execute("DELETE FROM records WHERE key = ?", (user_id,)).rowcount,
            }

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return {
                table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in ("products", "users", "events")
            }

    # -- records ---------------------------------------------------------------------------------
    def put_record(self, kind: str, key: str, value: dict[str, Any]) -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO records (kind, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (kind, key, common.dumps(value), now, now),
            )

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM records WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return None if row is None else common.loads(row[0])

    def list_records(self, kind: str, after_key: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        with self._read() as conn:
            if after_key is None:
                rows = conn.execute("SELECT key, value FROM records WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
            else:
                rows = conn.execute("SELECT key, value FROM records WHERE kind = ? AND key > ? ORDER BY seq",
                                    (kind, after_key)).fetchall()
        return [(key, common.loads(value)) for key, value in rows]

    def delete_record(self, kind: str, key: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._conn.close()
