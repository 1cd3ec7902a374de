"""Ingestion: formats, idempotent re-ingest, pseudonymisation at ingest, rejects, CLI."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoprec import cli
from shoprec.data.ingest import IngestError, ingest_file
from shoprec.data.privacy import pseudonymize
from shoprec.data.store import open_store
from shoprec.settings import Settings

KEY = "test-pseudonym-key"

EVENTS = [
    {"event_id": "e1", "user_id": "alice@example.com", "item_id": "p1", "type": "view", "timestamp": "2024-03-01T10:00:00Z",
     "context": {"device": "mobile", "locale": "de-DE"}},
    {"user_id": "alice@example.com", "item_id": "p1", "type": "purchase", "timestamp": 1709287300, "price": 19.99},
    {"user_id": "bob-1234", "type": "search", "query": "red shoes", "timestamp": "2024-03-01T11:05:00+01:00"},
    {"event_id": "e4", "user_id": "bob-1234", "item_id": "p2", "type": "click", "timestamp": "2024-03-01T10:05:00Z"},
]


def settings_for(url: str) -> Settings:
    return Settings(store_url=url, pseudonym_key=KEY)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_events_jsonl_ingest_is_idempotent_and_pseudonymised(tmp_path, store_url):
    source = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    settings = settings_for(store_url)
    first = ingest_file(source, "events", settings=settings, err=io.StringIO())
    assert (first.rows_read, first.inserted, first.duplicates, first.rejected, first.users_added) == (4, 4, 0, 0, 2)
    second = ingest_file(source, "events", settings=settings, err=io.StringIO())
    assert (second.inserted, second.duplicates, second.users_added) == (0, 4, 0)
    with open_store(store_url) as store:
        table = store.read_events()
        assert store.counts() == {"products": 0, "users": 2, "events": 4}
    users = set(table.column("user_id").to_pylist())
    assert users == {pseudonymize("alice@example.com", KEY), pseudonymize("bob-1234", KEY)}
    # Ordered by time: e1 10:00, search 10:05 (11:05+01:00), click 10:05 (inserted later), purchase 10:01:40.
    assert table.column("type").to_pylist() == ["view", "purchase", "search", "click"]
    generated = [e for e in table.column("event_id").to_pylist() if e not in ("e1", "e4")]
    assert len(generated) == 2 and all(e.startswith("h_") for e in generated)


def test_raw_user_ids_never_reach_the_sqlite_file(tmp_path):
    source = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    ingest_file(source, "events", settings=settings_for(url), err=io.StringIO())
    # The WAL may still hold the newest pages, so scan the database and its side files.
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("shop.db*"))
    assert b"alice@example.com" not in blob and b"bob-1234" not in blob
    assert pseudonymize("bob-1234", KEY).encode() in blob


def test_events_without_id_get_the_same_id_from_any_format(tmp_path):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    rows = [{"user_id": "u1", "item_id": "p1", "type": "view", "timestamp": "2024-03-01T10:00:00Z"},
            {"user_id": "u1", "item_id": "p2", "type": "add_to_cart", "timestamp": "2024-03-01T10:01:00Z",
             "context": {"a": 1}}]
    write_jsonl(tmp_path / "a.jsonl", rows)
    (tmp_path / "a.csv").write_text(
        "user_id,item_id,type,timestamp,context\n"
        "u1,p1,view,1709287200,\n"
        'u1,p2,add_to_cart,2024-03-01T11:01:00+01:00,"{""a"": 1}"\n', encoding="utf-8")
    settings = settings_for(url)
    assert ingest_file(tmp_path / "a.jsonl", "events", settings=settings).inserted == 2
    again = ingest_file(tmp_path / "a.csv", "events", settings=settings)
    assert (again.inserted, again.duplicates) == (0, 2)


def test_catalog_reingest_changes_nothing_and_price_change_is_logged(tmp_path, store_url):
    rows = [{"id": f"p{i}", "title": f"Item {i}", "category": ["Home", "Lamps"], "price": 10.0 + i,
             "attributes": {"watts": i}} for i in range(5)]
    rows.append({"id": "p9", "title": "No price", "category": "Home > Lamps"})
    source = write_jsonl(tmp_path / "catalog.jsonl", rows)
    settings = settings_for(store_url)
    first = ingest_file(source, "catalog", settings=settings)
    assert (first.inserted, first.updated, first.unchanged, first.missing_price, first.missing_category) == (6, 0, 0, 1, 0)
    second = ingest_file(source, "catalog", settings=settings)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 6)
    rows[2]["price"] = 99.0
    write_jsonl(source, rows)
    third = ingest_file(source, "catalog", settings=settings)
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 5)
    with open_store(store_url) as store:
        assert [p for _, p in store.price_history("p2")] == [12.0, 99.0]


def test_parquet_events_stream_in_batches(tmp_path):
    n = 250
    table = pa.table({
        "event_id": [f"e{i}" for i in range(n)],
        "user_id": [f"user{i % 7}" for i in range(n)],
        "item_id": [f"p{i % 11}" for i in range(n)],
        "type": ["view" if i % 3 else "teleport" for i in range(n)],
        "timestamp": pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() + i for i in range(n)]),
        "context": ['{"device": "web"}'] * n,
    })
    pq.write_table(table, tmp_path / "events.parquet", row_group_size=64)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    report = ingest_file(tmp_path / "events.parquet", "events", settings=settings_for(url), batch_size=40,
                         err=io.StringIO())
    bad = sum(1 for i in range(n) if i % 3 == 0)
    assert (report.format, report.rows_read, report.rejected, report.inserted) == ("parquet", n, bad, n - bad)
    rejects = [json.loads(x) for x in (tmp_path / "events.parquet.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [i + 1 for i in range(n) if i % 3 == 0]  # 1-based row numbers
    assert {r["field"] for r in rejects} == {"type"}
    with open_store(url) as store:
        assert json.loads(store.read_events().column("context")[0].as_py()) == {"device": "web"}


def test_batch_size_does_not_change_the_result(tmp_path):
    rows = [{"event_id": f"e{i % 13}", "user_id": f"u{i % 4}", "item_id": f"p{i}", "type": "view",
             "timestamp": 1_700_000_000 + i} for i in range(40)]
    source = write_jsonl(tmp_path / "events.jsonl", rows)
    results = []
    for batch in (1, 3, 1000):
        url = f"sqlite:///{tmp_path / f'b{batch}.db'}"
        report = ingest_file(source, "events", settings=settings_for(url), batch_size=batch)
        with open_store(url) as store:
            results.append((report.inserted, report.duplicates, store.read_events().column("event_id").to_pylist()))
    assert results[0] == results[1] == results[2]
    assert results[0][0] == 13 and results[0][1] == 27


def test_users_file_is_pseudonymised(tmp_path):
    source = write_jsonl(tmp_path / "users.jsonl", [{"id": "alice", "attributes": {"tier": "gold"}}, {"id": "bob"}])
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    report = ingest_file(source, "users", settings=settings_for(url))
    assert report.inserted == 2
    with open_store(url) as store:
        conn = store._conn
        ids = {row[0] for row in conn.execute("SELECT id FROM users")}
    assert ids == {pseudonymize("alice", KEY), pseudonymize("bob", KEY)}


def test_unknown_csv_column_fails_the_file_with_its_name(tmp_path):
    (tmp_path / "bad.csv").write_text("id,title,colour\np1,Lamp,red\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"bad.csv:1: unknown column\(s\) colour"):
        ingest_file(tmp_path / "bad.csv", "catalog", settings=settings_for(f"sqlite:///{tmp_path / 's.db'}"))
    (tmp_path / "bad2.csv").write_text("user_id,item_id,type\nu,p,view\n", encoding="utf-8")
    with pytest.raises(IngestError, match="missing required column.*timestamp"):
        ingest_file(tmp_path / "bad2.csv", "events", settings=settings_for(f"sqlite:///{tmp_path / 's.db'}"))


def test_out_of_range_time_and_bad_utf8_are_rejected_not_fatal(tmp_path):
    source = tmp_path / "events.csv"
    source.write_bytes(
        b"event_id,user_id,item_id,type,timestamp\n"
        b"e1,u1,p1,view,1e300\n"
        b"e2,u1,p\xff\xfe,view,1709287200\n"
        b"e3,u1,p3,view,1709287200\n")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    report = ingest_file(source, "events", settings=settings_for(url), err=io.StringIO())
    assert (report.inserted, report.rejected) == (1, 2)
    rejects = [json.loads(x) for x in (tmp_path / "events.csv.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == [(2, "timestamp"), (3, "<row>")]
    assert "UTF-8" in rejects[1]["reason"]


def test_stale_rejects_file_is_removed_on_a_clean_run(tmp_path):
    source = write_jsonl(tmp_path / "events.jsonl", [EVENTS[0], {"user_id": "x", "type": "view", "timestamp": 1}])
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert ingest_file(source, "events", settings=settings_for(url), err=io.StringIO()).rejected == 1
    rejects = tmp_path / "events.jsonl.rejects.jsonl"
    assert rejects.exists()
    write_jsonl(source, [EVENTS[0]])
    assert ingest_file(source, "events", settings=settings_for(url)).rejected == 0
    assert not rejects.exists()


def test_format_detection(tmp_path):
    from shoprec.data.readers import detect_format

    (tmp_path / "products.csv").write_text("product_uid,product_title\n1,Saw\n", encoding="utf-8")
    (tmp_path / "catalog.csv").write_text("id,title\n1,Saw\n", encoding="utf-8")
    assert detect_format(tmp_path / "products.csv", "catalog") == "homedepot"
    assert detect_format(tmp_path / "catalog.csv", "catalog") == "csv"
    assert detect_format(tmp_path / "Beauty.txt", "events") == "s3rec"
    assert detect_format(tmp_path / "x.ndjson.gz", "events") == "jsonl"
    assert detect_format(tmp_path / "x.parquet", "events") == "parquet"
    with pytest.raises(IngestError, match="--format"):
        detect_format(tmp_path / "x.dat", "events")


def test_gzip_jsonl(tmp_path):
    import gzip

    with gzip.open(tmp_path / "events.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in EVENTS))
    report = ingest_file(tmp_path / "events.jsonl.gz", "events", settings=settings_for(f"sqlite:///{tmp_path / 's.db'}"))
    assert (report.format, report.inserted) == ("jsonl", 4)


def test_s3rec_and_homedepot_formats(tmp_path):
    (tmp_path / "Tiny.txt").write_text("7 3 1 3 2\n8 2 2\n", encoding="utf-8")
    (tmp_path / "products.csv").write_text(
        'product_uid,product_title\n1,"Hammer, 16 oz"\n2,Saw\n3,Drill\n4,Never Bought\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    settings = settings_for(url)
    catalog = ingest_file(tmp_path / "products.csv", "catalog", settings=settings)
    assert (catalog.format, catalog.inserted, catalog.missing_price) == ("homedepot", 4, 4)
    events = ingest_file(tmp_path / "Tiny.txt", "events", settings=settings)
    assert (events.format, events.inserted) == ("s3rec", 6)
    assert ingest_file(tmp_path / "Tiny.txt", "events", settings=settings, fmt="s3rec").inserted == 0
    with open_store(url) as store:
        table = store.read_events()
        assert store.get_products(["1"])[0].title == "Hammer, 16 oz"
    assert table.column("item_id").to_pylist() == ["3", "1", "3", "2", "2", "2"]
    assert set(table.column("type").to_pylist()) == {"purchase"}
    ts = table.column("timestamp").to_pylist()
    assert ts == sorted(ts) and len(set(ts)) == 6


def test_a_catalog_ingest_journals_what_it_changed_for_running_services(tmp_path, store_url):
    """Products inserted or changed by an import reach serving processes through the change journal
    (`shoprec.changes`), as after an API upsert; unchanged ones do not, nor an import larger than
    `service.live_catalog_max_products` (left to the next build, and the summary says so)."""
    from shoprec import changes

    rows = [{"id": f"j{i}", "title": f"Lamp {i}", "category": "Home > Lamps", "price": 10.0 + i} for i in range(3)]
    source = write_jsonl(tmp_path / "catalog.jsonl", rows)
    settings = settings_for(store_url)

    def entries() -> list[dict]:
        with open_store(store_url) as store:
            return [entry for _, entry in changes.since(store, None)]

    first = ingest_file(source, "catalog", settings=settings)
    assert (first.journaled, first.left_to_build) == (3, 0)
    assert [(e["op"], e["ids"]) for e in entries()] == [("upsert", ["j0", "j1", "j2"])]
    assert "running services serve the 3 changed products" in first.summary_line()
    assert ingest_file(source, "catalog", settings=settings).journaled == 0 and len(entries()) == 1

    rows[1]["price"] = 99.0
    rows.append({"id": "j3", "title": "Lamp 3", "category": "Home > Lamps"})
    third = ingest_file(write_jsonl(source, rows), "catalog", settings=settings)
    assert (third.inserted, third.updated, third.journaled) == (1, 1, 2)
    assert [(e["op"], sorted(e["ids"])) for e in entries()][1:] == [("upsert", ["j1", "j3"])]

    settings.service.live_catalog_max_products = 1
    rows[0]["price"] = rows[2]["price"] = 1.0
    big = ingest_file(write_jsonl(source, rows), "catalog", settings=settings)
    assert (big.updated, big.journaled, big.left_to_build) == (2, 0, 2) and len(entries()) == 2
    assert "after the next build" in big.summary_line() and json.loads(json.dumps(big.to_dict()))["left_to_build"] == 2


def test_cli_ingest_prints_summary_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SHOPREC_PSEUDONYM_KEY", KEY)
    from shoprec.settings import get_settings

    get_settings.cache_clear()
    try:
        source = write_jsonl(tmp_path / "events.jsonl", EVENTS + [{"user_id": "x", "type": "view", "timestamp": 1}])
        url = f"sqlite:///{tmp_path / 'shop.db'}"
        assert cli.main(["ingest", "events", str(source), "--store", url, "--no-progress"]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        summary = json.loads(out[-1])
        assert (summary["inserted"], summary["rejected"], summary["rows_read"]) == (4, 1, 5)
        assert out[0].startswith("events ") and "inserted 4" in out[0]
        assert cli.main(["ingest", "events", str(source), "--store", url, "--no-progress", "--strict"]) == 1
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["inserted"] == 0
        assert cli.main(["ingest", "catalog", str(tmp_path / "missing.csv"), "--store", url]) == 2
        assert "no such file" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_a_failing_store_write_stops_the_ingest_with_its_error(tmp_path):
    # Writes run on a background thread: their errors must still reach the caller.
    source = write_jsonl(tmp_path / "events.jsonl", EVENTS)
    store = open_store(f"sqlite:///{tmp_path / 'shop.db'}")
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        ingest_file(source, "events", store=store, settings=settings_for(store.url), batch_size=2)
