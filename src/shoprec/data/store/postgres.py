"""PostgreSQL store backend via psycopg 3 (`postgresql://user:password@host:port/dbname`).

Tables live in the connection's current schema, so `?options=-csearch_path%3Dmyshop` in the URL
keeps several shops (or test runs) apart in one database. Commits are synchronous (the server
default), so `add_events` returns only once the events are durable. Bulk event writes go through
COPY into a per-session staging table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from shoprec.data.schemas import Event, Product, User
from shoprec.data.store import common
from shoprec.data.store.base import Store, UpsertResult

_SMALL_BATCH = 64  # fewer events than this: one multi-row INSERT beats COPY + staging
_DDL_LOCK = 0x73686F70  # advisory lock id: concurrent first connections must not race on CREATE TABLE

_DDL = """
CREATE TABLE IF NOT EXISTS products (
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '[]',
    brand TEXT NOT NULL DEFAULT '',
    price DOUBLE PRECISION,
    currency TEXT NOT NULL DEFAULT 'USD',
    attributes TEXT NOT NULL DEFAULT '{}',
    image_url TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'en',
    available BOOLEAN NOT NULL DEFAULT TRUE,
    rating DOUBLE PRECISION,
    created_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS price_history (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id TEXT NOT NULL,
    changed_at DOUBLE PRECISION NOT NULL,
    price DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS price_history_product ON price_history (product_id, seq);
CREATE TABLE IF NOT EXISTS users (
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT '',
    item_id TEXT,
    type TEXT NOT NULL,
    value DOUBLE PRECISION,
    quantity BIGINT NOT NULL DEFAULT 1,
    price DOUBLE PRECISION,
    query TEXT,
    "timestamp" DOUBLE PRECISION NOT NULL,
    context TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_time ON events ("timestamp", seq);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE TABLE IF NOT EXISTS records (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value JSONB NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS records_key ON records (key);
"""


def _cols(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


_PRODUCT_COLS = _cols(common.PRODUCT_COLUMNS)
_EVENT_COLS = _cols(common.EVENT_COLUMNS)
_STAGE = "shoprec_events_stage"


class PostgresStore(Store):
    """A shop's data in PostgreSQL; one connection shared by threads behind a lock."""

    seq_in_commit_order = False  # other processes insert events concurrently

    def __init__(self, url: str, connect_timeout_s: int = 10):
        import psycopg  # a core dependency, imported only when a PostgreSQL store is opened

        self._psycopg = psycopg
        self.url = url
        self._connect_timeout = connect_timeout_s
        self._lock = threading.RLock()
        self._closed = False
        self._conn = self._connect()
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            self._conn.execute(_DDL)

    def _connect(self):
        conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=self._connect_timeout)
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (ord BIGINT, "
            + ", ".join(f'"{c}" {t}' for c, t in zip(common.EVENT_COLUMNS, _EVENT_TYPES))
            + ") ON COMMIT DELETE ROWS"
        )
        return conn

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """The connection under the lock (reconnected if the server dropped it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            yield self._conn

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._session() as conn, conn.transaction():
            yield conn

    # -- catalog -------------------------------------------------------------------------------
    def upsert_products(self, products: Iterable[Product]) -> UpsertResult:
        rows = [common.product_row(p) for p in products]
        if not rows:
            return UpsertResult()
        with self._write() as conn:
            existing = {
                row[0]: tuple(row)
                for row in conn.execute(
                    f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ANY(%s) FOR UPDATE", (list({r[0] for r in rows}),)
                )
            }
            inserts, updates, history, result = common.plan_product_upsert(existing, rows)
            with conn.cursor() as cur:
                if inserts:
                    marks = ", ".join(["%s"] * len(common.PRODUCT_COLUMNS))
                    cur.executemany(f"INSERT INTO products ({_PRODUCT_COLS}) VALUES ({marks})", inserts)
                if updates:
                    sets = ", ".join(f'"{c}" = %s' for c in common.PRODUCT_COLUMNS[1:])
                    cur.executemany(f"UPDATE products SET {sets} WHERE id = %s", [r[1:] + (r[0],) for r in updates])
                if history:
                    cur.executemany("INSERT INTO price_history (product_id, changed_at, price) VALUES (%s, %s, %s)", history)
        return result

    def delete_products(self, ids: Iterable[str]) -> int:
        id_list = list(dict.fromkeys(str(i) for i in ids))
        if not id_list:
            return 0
        with self._write() as conn:
            removed = conn.execute("DELETE FROM products WHERE id = ANY(%s)", (id_list,)).rowcount
            conn.execute("DELETE FROM price_history WHERE product_id = ANY(%s)", (id_list,))
        return removed

    def get_products(self, ids: Iterable[str]) -> list[Product]:
        id_list = [str(i) for i in ids]
        if not id_list:
            return []
        with self._session() as conn:
            rows = conn.execute(
                f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ANY(%s)", (list(dict.fromkeys(id_list)),)
            ).fetchall()
        found = {row[0]: row for row in rows}
        return [common.row_product(found[i]) for i in id_list if i in found]

    def read_products(self) -> pa.Table:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_PRODUCT_COLS} FROM products ORDER BY seq")
            return common.products_table(cur)

    def price_history(self, product_id: str) -> list[tuple[Any, float | None]]:
        with self._session() as conn:
            rows = conn.execute(
                "SELECT changed_at, price FROM price_history WHERE product_id = %s ORDER BY seq", (product_id,)
            ).fetchall()
        return [(common.from_epoch(t), p) for t, p in rows]

    # -- users and events ------------------------------------------------------------------------
    def upsert_users(self, users: Iterable[User]) -> UpsertResult:
        rows = [common.user_row(u) for u in users]
        result = UpsertResult()
        if not rows:
            return result
        with self._write() as conn:
            stored = {
                row[0]: tuple(row)
                for row in conn.execute(
                    "SELECT id, attributes, created_at FROM users WHERE id = ANY(%s) FOR UPDATE", (list({r[0] for r in rows}),)
                )
            }
            for row in rows:
                old = stored.get(row[0])
                if old is None:
                    conn.execute("INSERT INTO users (id, attributes, created_at) VALUES (%s, %s, %s)", row)
                    result.inserted += 1
                elif old == row:
                    result.unchanged += 1
                else:
                    conn.execute("UPDATE users SET attributes = %s, created_at = %s WHERE id = %s", (row[1], row[2], row[0]))
                    result.updated += 1
                stored[row[0]] = row
        return result

    def ensure_users(self, user_ids: Iterable[str]) -> int:
        """Create bare user rows for ids not stored yet (existing rows untouched); returns how many were new."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return 0
        with self._write() as conn:
            return conn.execute(
                "INSERT INTO users (id, attributes, created_at) SELECT u, '{}', %s FROM unnest(%s::text[]) AS u "
                "ON CONFLICT (id) DO NOTHING",
                (time.time(), ids),
            ).rowcount

    def add_events(self, events: Iterable[Event]) -> int:
        return self.add_event_rows([common.event_row(e) for e in events])

    def add_event_rows(self, rows: list[tuple]) -> int:
        """`add_events` for rows already in EVENT_COLUMNS order (the bulk-ingest path)."""
        if not rows:
            return 0
        with self._write() as conn:
            if len(rows) < _SMALL_BATCH:
                one = "(" + ", ".join(["%s"] * len(common.EVENT_COLUMNS)) + ")"
                params = [v for row in rows for v in row]
                return conn.execute(
                    f"INSERT INTO events ({_EVENT_COLS}) VALUES {', '.join([one] * len(rows))} "
                    "ON CONFLICT (event_id) DO NOTHING",
                    params,
                ).rowcount
            with conn.cursor() as cur:
                with cur.copy(f"COPY {_STAGE} (ord, {_EVENT_COLS}) FROM STDIN") as copy:
                    for i, row in enumerate(rows):
                        copy.write_row((i, *row))
                # ORDER BY ord: identity values (the insertion sequence) follow the batch's order.
                cur.execute(
                    f"INSERT INTO events ({_EVENT_COLS}) SELECT {_EVENT_COLS} FROM {_STAGE} ORDER BY ord "
                    "ON CONFLICT (event_id) DO NOTHING"
                )
                return cur.rowcount

    def read_events(self, since: Any | None = None) -> pa.Table:
        start = common.since_epoch(since)
        with self._session() as conn, conn.cursor() as cur:
            if start is None:
                cur.execute(f'SELECT {_EVENT_COLS} FROM events ORDER BY "timestamp", seq')
            else:
                cur.execute(f'SELECT {_EVENT_COLS} FROM events WHERE "timestamp" >= %s ORDER BY "timestamp", seq', (start,))
            return common.events_table(cur)

    def last_event_seq(self) -> int:
        with self._session() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def events_after(self, seq: int, limit: int = 10_000) -> list[tuple[int, str, str, str | None, str]]:
        with self._session() as conn:
            return [tuple(row) for row in conn.execute(
                "SELECT seq, event_id, user_id, item_id, type FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
                (int(seq), int(limit))).fetchall()]

    def forget_user(self, user_id: str) -> int:
        return sum(self.forget_user_detail(user_id).values())

    def forget_user_detail(self, user_id: str) -> dict[str, int]:
        """Delete the user's events, user row and records keyed by the user: rows removed per table."""
        with self._write() as conn:
            return {
                "events": conn.execute("DELETE FROM events WHERE user_id = %s", (user_id,)).rowcount,
                "users": conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount,
                "records": conn.execute("DELETE FROM records WHERE key = %s", (user_id,)).rowcount,
            }

    def counts(self) -> dict[str, int]:
        with self._session() as conn:
            return {
                table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in ("products", "users", "events")
            }

    # -- records ---------------------------------------------------------------------------------
    def put_record(self, kind: str, key: str, value: dict[str, Any]) -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO records (kind, key, value, created_at, updated_at) VALUES (%s, %s, %s::jsonb, %s, %s) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
                (kind, key, common.dumps(value), now, now),
            )

    def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._session() as conn:
            row = conn.execute("SELECT value::text FROM records WHERE kind = %s AND key = %s", (kind, key)).fetchone()
        return None if row is None else common.loads(row[0])

    def list_records(self, kind: str, after_key: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        with self._session() as conn:
            if after_key is None:
                rows = conn.execute("SELECT key, value::text FROM records WHERE kind = %s ORDER BY seq", (kind,)).fetchall()
            else:
                rows = conn.execute("SELECT key, value::text FROM records WHERE kind = %s AND key > %s ORDER BY seq",
                                    (kind, after_key)).fetchall()
        return [(key, common.loads(value)) for key, value in rows]

    def delete_record(self, kind: str, key: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM records WHERE kind = %s AND key = %s", (kind, key)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()


_EVENT_TYPES = (
    "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "DOUBLE PRECISION", "BIGINT", "DOUBLE PRECISION", "TEXT",
    "DOUBLE PRECISION", "TEXT",
)
