"""The shared store test suite: every backend (SQLite, PostgreSQL) must pass the same cases."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from shoprec.data.schemas import Event, Product, User
from shoprec.data.store import open_store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

EVENT_COLUMNS = ["event_id", "user_id", "session_id", "item_id", "type", "value", "quantity", "price", "query",
                 "timestamp", "context"]
PRODUCT_COLUMNS = ["id", "title", "description", "category", "brand", "price", "currency", "attributes",
                   "image_url", "language", "available", "rating", "created_at", "updated_at"]


def product(pid: str, price: float | None = 10.0, **kw) -> Product:
    fields = dict(id=pid, title=f"Product {pid}", category=["Home", "Kitchen"], brand="Acme", price=price,
                  attributes={"colour": "red", "size": 3}, created_at=T0)
    fields.update(kw)
    return Product(**fields)


def event(eid: str, user: str = "u1", item: str = "p1", kind: str = "view", at: datetime = T0, **kw) -> Event:
    return Event(event_id=eid, user_id=user, item_id=item, type=kind, timestamp=at, **kw)


# -- catalog ---------------------------------------------------------------------------------------

def test_upsert_counts_inserted_updated_unchanged(store):
    first = store.upsert_products([product("a"), product("b"), product("c")])
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    again = store.upsert_products([product("a"), product("b"), product("c")])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    changed = store.upsert_products([product("a", price=12.5), product("b", title="Renamed"), product("c"), product("d")])
    assert (changed.inserted, changed.updated, changed.unchanged) == (1, 2, 1)
    assert store.counts()["products"] == 4


def test_price_change_appends_history_with_time(store):
    store.upsert_products([product("a", price=10.0)])
    store.upsert_products([product("a", price=10.0, title="Only the title changed")])
    later = T0 + timedelta(days=3)
    store.upsert_products([product("a", price=8.0, updated_at=later)])
    store.upsert_products([product("a", price=None, updated_at=later + timedelta(days=1))])
    history = store.price_history("a")
    assert [p for _, p in history] == [10.0, 8.0, None]
    assert history[1][0] == later
    assert all(isinstance(t, datetime) for t, _ in history)
    assert store.price_history("missing") == []


def test_get_products_round_trips_in_requested_order(store):
    originals = {p.id: p for p in [product("a"), product("b", price=None, available=False, rating=4.5,
                                                               updated_at=T0 + timedelta(hours=1))]}
    store.upsert_products(originals.values())
    got = store.get_products(["b", "missing", "a"])
    assert [p.id for p in got] == ["b", "a"]
    assert got[0] == originals["b"]
    assert got[1] == originals["a"]


def test_read_products_table(store):
    store.upsert_products([product("z"), product("a", description="<b>bold</b> text", available=False)])
    table = store.read_products()
    assert table.column_names == PRODUCT_COLUMNS
    assert table.num_rows == 2
    assert table.column("id").to_pylist() == ["z", "a"]  # insertion order
    assert json.loads(table.column("category")[0].as_py()) == ["Home", "Kitchen"]
    assert json.loads(table.column("attributes")[0].as_py()) == {"colour": "red", "size": 3}
    assert table.column("available").to_pylist() == [True, False]
    assert table.schema.field("price").type == pa.float64()
    assert table.column("created_at")[0].as_py() == T0.timestamp()
    assert table.column("description")[1].as_py() == "bold text"


def test_delete_products(store):
    store.upsert_products([product("a"), product("b")])
    assert store.delete_products(["a", "missing"]) == 1
    assert [p.id for p in store.get_products(["a", "b"])] == ["b"]
    assert store.price_history("a") == []


# -- events ----------------------------------------------------------------------------------------

def test_add_events_is_idempotent(store):
    assert store.add_events([event("e1"), event("e2"), event("e3")]) == 3
    assert store.add_events([event("e1"), event("e2"), event("e4")]) == 1
    assert store.add_events([event("e5"), event("e5")]) == 1  # repeated within one call
    assert store.add_events([]) == 0
    assert store.counts()["events"] == 5


def test_events_after_follows_insertion_order_without_duplicates(store):
    assert store.last_event_seq() == 0 and store.events_after(0) == []
    store.add_events([event("e1", user="u1", item="p1"), event("e2", user="u2", item=None, kind="search", query="tea")])
    rows = store.events_after(0)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("e1", "u1", "p1", "view"), ("e2", "u2", None, "search")]
    assert rows[0][0] < rows[1][0] == store.last_event_seq()
    cursor = store.last_event_seq()
    store.add_events([event("e1"), event("e3", at=T0 - timedelta(days=1))])  # a duplicate and an older timestamp
    assert [r[1] for r in store.events_after(cursor)] == ["e3"]  # by insertion, not by timestamp
    assert [r[1] for r in store.events_after(0, limit=2)] == ["e1", "e2"]
    store.add_events([event("e4", user="leaves")])
    store.forget_user("leaves")  # the newest row goes: its number must not come back
    cursor = store.last_event_seq()
    store.add_events([event("e5")])
    assert [r[1] for r in store.events_after(cursor)] == ["e5"]


def test_read_events_table_schema_and_values(store):
    store.add_events([
        event("e1", kind="purchase", price=9.5, quantity=2, session_id="s1", context={"device": "mobile"}),
        Event(event_id="e2", user_id="u1", type="search", query="red  shoes", timestamp=T0 + timedelta(seconds=1)),
    ])
    table = store.read_events()
    assert table.column_names == EVENT_COLUMNS
    assert table.schema.field("timestamp").type == pa.float64()
    rows = table.to_pylist()
    assert rows[0]["timestamp"] == T0.timestamp()
    assert rows[0]["quantity"] == 2 and rows[0]["price"] == 9.5 and rows[0]["session_id"] == "s1"
    assert json.loads(rows[0]["context"]) == {"device": "mobile"}
    assert rows[1]["item_id"] is None and rows[1]["query"] == "red shoes" and rows[1]["type"] == "search"


def test_read_events_orders_by_time_then_insertion(store):
    # Equal timestamps keep their insertion order; an earlier timestamp inserted later comes first.
    store.add_events([event("b", at=T0), event("a", at=T0), event("c", at=T0)])
    store.add_events([event("early", at=T0 - timedelta(minutes=1)), event("d", at=T0)])
    assert store.read_events().column("event_id").to_pylist() == ["early", "b", "a", "c", "d"]


def test_large_batch_keeps_order(store):
    ids = [f"e{i:04d}" for i in range(300)][::-1]  # reverse-sorted ids: order must come from insertion
    assert store.add_events([event(eid, item=f"p{i % 7}") for i, eid in enumerate(ids)]) == 300
    assert store.read_events().column("event_id").to_pylist() == ids


def test_read_events_since(store):
    store.add_events([event(f"e{i}", at=T0 + timedelta(hours=i)) for i in range(5)])
    assert store.read_events(since=T0 + timedelta(hours=3)).column("event_id").to_pylist() == ["e3", "e4"]
    assert store.read_events(since=(T0 + timedelta(hours=4)).isoformat()).num_rows == 1


def test_empty_reads_have_the_schema(store):
    assert store.read_events().column_names == EVENT_COLUMNS
    assert store.read_events().num_rows == 0
    assert store.read_products().column_names == PRODUCT_COLUMNS
    assert store.counts() == {"products": 0, "users": 0, "events": 0}


# -- users, forget ---------------------------------------------------------------------------------

def test_upsert_users(store):
    result = store.upsert_users([User(id="u1"), User(id="u2", attributes={"tier": "gold"})])
    assert (result.inserted, result.updated, result.unchanged) == (2, 0, 0)
    result = store.upsert_users([User(id="u1"), User(id="u2", attributes={"tier": "silver"})])
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    assert store.counts()["users"] == 2


def test_forget_user_removes_events_user_and_records(store):
    store.upsert_users([User(id="u1"), User(id="u2")])
    store.add_events([event("a1", user="u1"), event("a2", user="u1", item="p2"), event("b1", user="u2")])
    store.put_record("profile", "u1", {"x": 1})
    store.put_record("profile", "u2", {"x": 2})
    store.put_record("rule", "pin-p1", {"item": "p1"})
    assert store.forget_user("u1") == 2 + 1 + 1
    assert store.read_events().column("user_id").to_pylist() == ["u2"]
    assert store.get_record("profile", "u1") is None
    assert store.get_record("profile", "u2") == {"x": 2}
    assert store.get_record("rule", "pin-p1") == {"item": "p1"}
    assert store.counts() == {"products": 0, "users": 1, "events": 1}
    assert store.forget_user("u1") == 0


# -- records ---------------------------------------------------------------------------------------

def test_records_put_get_list_delete(store):
    assert store.get_record("rule", "r1") is None
    store.put_record("rule", "r2", {"action": "pin", "items": ["p1", "p2"]})
    store.put_record("rule", "r1", {"action": "bury", "weight": 0.5})
    store.put_record("experiment", "x1", {"arms": 2})
    store.put_record("rule", "r2", {"action": "boost"})  # update keeps its place in the list
    assert store.list_records("rule") == [("r2", {"action": "boost"}), ("r1", {"action": "bury", "weight": 0.5})]
    assert store.get_record("experiment", "x1") == {"arms": 2}
    assert store.delete_record("rule", "r2") is True
    assert store.delete_record("rule", "r2") is False
    assert [k for k, _ in store.list_records("rule")] == ["r1"]
    assert store.list_records("nothing") == []
    store.put_record("change", "0002-b", {"n": 2})
    store.put_record("change", "0001-a", {"n": 1})
    store.put_record("change", "0003-c", {"n": 3})
    assert [k for k, _ in store.list_records("change", after_key="0001-a")] == ["0002-b", "0003-c"]
    assert store.list_records("change", after_key="0003-c") == []


# -- durability and concurrency ----------------------------------------------------------------------

def test_acknowledged_events_are_visible_to_a_new_connection(store_url):
    with open_store(store_url) as writer:
        writer.add_events([event("e1"), event("e2")])
        writer.upsert_products([product("a")])
        with open_store(store_url) as other:  # a second process would see the same
            assert other.counts() == {"products": 1, "users": 0, "events": 2}
    with open_store(store_url) as reopened:
        assert reopened.read_events().column("event_id").to_pylist() == ["e1", "e2"]


def test_concurrent_writes_from_threads(store):
    threads, per_thread, per_call = 6, 20, 5
    errors: list[BaseException] = []
    reads: list[int] = []

    def write(t: int) -> None:
        try:
            for c in range(per_thread):
                batch = [event(f"t{t}-c{c}-{k}", user=f"u{t}", item=f"p{k}", at=T0 + timedelta(seconds=c))
                         for k in range(per_call)]
                assert store.add_events(batch) == per_call
                store.upsert_products([product(f"p{t}-{c % 3}", price=float(c))])
                store.put_record("run", f"t{t}-c{c}", {"c": c})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(10):
                reads.append(store.read_events().num_rows)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)] + [threading.Thread(target=read)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    total = threads * per_thread * per_call
    assert store.counts()["events"] == total
    assert store.counts()["products"] == threads * 3
    assert len(store.list_records("run")) == threads * per_thread
    assert reads == sorted(reads) and all(0 <= n <= total for n in reads)
    # Each thread's events keep their own order.
    table = store.read_events()
    for t in range(threads):
        mine = [e for e in table.column("event_id").to_pylist() if e.startswith(f"t{t}-")]
        assert mine == [f"t{t}-c{c}-{k}" for c in range(per_thread) for k in range(per_call)]


def test_sqlite_durability_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'shop.db'}"
    with open_store(url) as s:
        assert (tmp_path / "nested" / "dir" / "shop.db").exists()
        conn = s._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_sqlite_schema_1_is_migrated_keeping_events_and_their_numbers(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with open_store(f"sqlite:///{path}") as s:
        s.add_events([event("e1"), event("e2", user="u2")])
    conn = sqlite3.connect(path)  # rebuild the events table as schema 1 made it (seq without AUTOINCREMENT)
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    conn.executescript("DROP INDEX events_time; DROP INDEX events_user; ALTER TABLE events RENAME TO e_old; "
                       + ddl.replace(" AUTOINCREMENT", "") + "; INSERT INTO events SELECT * FROM e_old; DROP TABLE e_old; "
                       "DELETE FROM sqlite_sequence WHERE name = 'events'; PRAGMA user_version = 1;")
    conn.close()
    with open_store(f"sqlite:///{path}") as s:
        assert "AUTOINCREMENT" in s._conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
        assert [(r[0], r[1]) for r in s.events_after(0)] == [(1, "e1"), (2, "e2")]
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == 2
        s.forget_user("u2")
        s.add_events([event("e3")])
        assert [(r[0], r[1]) for r in s.events_after(1)] == [(3, "e3")]
        assert s.read_events(since=T0 - timedelta(days=1)).num_rows == 2  # the time index came back


def test_unknown_url_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_store("mysql://nope")


def test_many_ids_in_one_call(store):
    # More ids than one SQL `IN (...)` list holds on SQLite: the backend must chunk.
    ids = [f"p{i:05d}" for i in range(2500)]
    assert store.upsert_products(product(i) for i in ids).inserted == 2500
    wanted = ids[::-1][:1800]
    assert [p.id for p in store.get_products(wanted)] == wanted
    assert store.delete_products(ids[:2000]) == 2000
    assert store.counts()["products"] == 500
    assert store.read_products().column("id").to_pylist() == ids[2000:]


def test_acknowledged_events_survive_a_killed_writer(store_url):
    # The writer process is SIGKILLed right after add_events returns: no close, no clean shutdown.
    import subprocess
    import sys

    script = (
        "import os, signal, sys\n"
        "from shoprec.data.store import open_store\n"
        "from shoprec.data.schemas import Event\n"
        "store = open_store(sys.argv[1])\n"
        "n = store.add_events([Event(event_id=f'k{i}', user_id='u', item_id='p', type='view', timestamp=i)"
        " for i in range(50)])\n"
        "print(n, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, store_url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert proc.stdout.strip() == "50"
    with open_store(store_url) as store:
        assert store.read_events().column("event_id").to_pylist() == [f"k{i}" for i in range(50)]
