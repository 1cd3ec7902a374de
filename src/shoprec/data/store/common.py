"""What every SQL backend shares: column lists, row <-> model conversion, arrow tables, upsert planning.

Times are stored as float64 epoch seconds (UTC) in every backend, so reads, `since` filters and
arrow columns behave identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
import pyarrow as pa

from shoprec.data.schemas import Event, Product, User, to_utc
from shoprec.data.store.base import UpsertResult

PRODUCT_COLUMNS = (
    "id", "title", "description", "category", "brand", "price", "currency", "attributes",
    "image_url", "language", "available", "rating", "created_at", "updated_at",
)
EVENT_COLUMNS = (
    "event_id", "user_id", "session_id", "item_id", "type", "value", "quantity", "price", "query",
    "timestamp", "context",
)
USER_COLUMNS = ("id", "attributes", "created_at")

PRODUCTS_SCHEMA = pa.schema([
    ("id", pa.string()), ("title", pa.string()), ("description", pa.string()),
    ("category", pa.string()), ("brand", pa.string()), ("price", pa.float64()),
    ("currency", pa.string()), ("attributes", pa.string()), ("image_url", pa.string()),
    ("language", pa.string()), ("available", pa.bool_()), ("rating", pa.float64()),
    ("created_at", pa.float64()), ("updated_at", pa.float64()),
])
EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("user_id", pa.string()), ("session_id", pa.string()),
    ("item_id", pa.string()), ("type", pa.string()), ("value", pa.float64()),
    ("quantity", pa.int64()), ("price", pa.float64()), ("query", pa.string()),
    ("timestamp", pa.float64()), ("context", pa.string()),
])

_PRICE = PRODUCT_COLUMNS.index("price")
_UPDATED_AT = PRODUCT_COLUMNS.index("updated_at")
_AVAILABLE = PRODUCT_COLUMNS.index("available")
_TABLE_CHUNK = 100_000  # rows converted to arrow at a time, so a read never holds two full copies in tuples


def dumps(value: Any) -> str:
    """Canonical JSON text (sorted keys), so equal values compare equal as stored text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode("utf-8")


def loads(text: str | bytes | None, default: Any = None) -> Any:
    return default if text is None or text == "" else orjson.loads(text)


def epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), tz=timezone.utc)


def since_epoch(since: Any) -> float | None:
    """A `since` argument (datetime, ISO text, epoch seconds/ms) as epoch seconds."""
    return None if since is None else to_utc(since).timestamp()


# -- conversion ----------------------------------------------------------------------------------

def product_row(p: Product) -> tuple:
    return (
        p.id, p.title, p.description, dumps(p.category), p.brand, p.price, p.currency, dumps(p.attributes),
        p.image_url, p.language, bool(p.available), p.rating, epoch(p.created_at), epoch(p.updated_at),
    )


def row_product(row: Sequence[Any]) -> Product:
    values = dict(zip(PRODUCT_COLUMNS, row))
    values["category"] = loads(values["category"], [])
    values["attributes"] = loads(values["attributes"], {})
    values["available"] = bool(values["available"])
    values["created_at"] = from_epoch(values["created_at"])
    values["updated_at"] = from_epoch(values["updated_at"])
    return Product.model_validate(values)


def normalise_product_row(row: Sequence[Any]) -> tuple:
    """A stored row in the exact form `product_row` produces (SQLite returns booleans as ints)."""
    out = list(row)
    out[_AVAILABLE] = bool(out[_AVAILABLE])
    return tuple(out)


def event_row(e: Event) -> tuple:
    return (
        e.event_id, e.user_id, e.session_id, e.item_id, e.type.value, e.value, e.quantity, e.price,
        e.query, e.timestamp.timestamp(), dumps(e.context),
    )


def user_row(u: User) -> tuple:
    return (u.id, dumps(u.attributes), epoch(u.created_at))


# -- arrow tables --------------------------------------------------------------------------------

def rows_to_table(chunks: Iterable[Sequence[Sequence[Any]]], schema: pa.Schema, bool_columns: Sequence[str] = ()) -> pa.Table:
    """Build a table from chunks of row tuples (column order = schema order)."""
    batches = []
    names = schema.names
    for rows in chunks:
        if not rows:
            continue
        columns = list(zip(*rows))
        arrays = []
        for name, field, values in zip(names, schema, columns):
            if name in bool_columns:
                values = [None if v is None else bool(v) for v in values]
            arrays.append(pa.array(values, type=field.type))
        batches.append(pa.record_batch(arrays, schema=schema))
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches, schema=schema)


def fetch_chunks(cursor: Any, size: int = _TABLE_CHUNK):
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


def products_table(cursor: Any) -> pa.Table:
    return rows_to_table(fetch_chunks(cursor), PRODUCTS_SCHEMA, bool_columns=("available",))


def events_table(cursor: Any) -> pa.Table:
    return rows_to_table(fetch_chunks(cursor), EVENTS_SCHEMA)


# -- product upsert planning ---------------------------------------------------------------------

def plan_product_upsert(
    existing: dict[str, tuple], rows: Sequence[tuple], now: float | None = None
) -> tuple[list[tuple], list[tuple], list[tuple], UpsertResult]:
    """Decide, for one batch, which rows to insert, which to update and which price changes to log.

    existing: id -> stored row (PRODUCT_COLUMNS order) for the ids of this batch that are stored.
    Returns (inserts, updates, price_history rows (product_id, changed_at, price), result counts).
    A repeated id within the batch behaves as if the rows arrived one after another.
    """
    now = time.time() if now is None else now
    current = dict(existing)
    inserts: dict[str, tuple] = {}
    updates: dict[str, tuple] = {}
    history: list[tuple] = []
    result = UpsertResult()
    for row in rows:
        pid = row[0]
        changed_at = row[_UPDATED_AT] if row[_UPDATED_AT] is not None else now
        old = current.get(pid)
        if old is None:
            inserts[pid] = row
            result.inserted += 1
            if row[_PRICE] is not None:
                history.append((pid, changed_at, row[_PRICE]))
        elif old == row:
            result.unchanged += 1
        else:
            (inserts if pid in inserts else updates)[pid] = row
            result.updated += 1
            if old[_PRICE] != row[_PRICE]:
                history.append((pid, changed_at, row[_PRICE]))
        current[pid] = row
    result.changed_ids = [*inserts, *updates]  # disjoint: a row inserted in this batch stays an insert
    return list(inserts.values()), list(updates.values()), history, result


def dedupe_keep_first(rows: Sequence[tuple]) -> list[tuple]:
    """Rows with a repeated first column dropped (the first occurrence wins, order kept)."""
    seen: set = set()
    out = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out
