"""`shoprec bench ingest`: ingestion throughput and memory on a generated events file.

Generates a JSONL file of N events (realistic mix of types, 5% without event_id so the content
hash path runs, 0.5% exact repeats so deduplication runs), ingests it, ingests it again (which
must insert nothing), then reads the events back and turns them into training interactions.
Prints one line per figure; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TYPES = np.array(["view", "click", "add_to_cart", "purchase", "impression", "search", "remove_from_cart", "rating"])
TYPE_SHARE = np.array([0.58, 0.15, 0.08, 0.04, 0.10, 0.03, 0.01, 0.01])
QUERIES = ["red shoes", "usb c cable", "running shorts", "coffee grinder", "lamp", "phone case", "tent", "yoga mat"]
DEVICES = ["mobile", "desktop", "tablet"]
LOCALES = ["en-US", "de-DE", "zh-CN", "fr-FR"]
_CHUNK = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the generated file")
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file in the work dir)")
    parser.add_argument("--workdir", help="where the file and default store go (default: a temp dir, removed after)")
    parser.add_argument("--batch-size", type=int, default=20_000, help="rows per store transaction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-read", action="store_true", help="skip the read-back and interactions step")
    parser.add_argument("--progress", action="store_true", help="show the ingest progress bars")
    parser.add_argument("--record", metavar="STORE_URL", help="record the run in this store's experiment registry")
    parser.add_argument("--json", metavar="PATH", help="also write the result record to this file")


def generate_events(path: Path, n: int, seed: int = 0) -> dict[str, int]:
    """Write `n` JSONL event lines to `path` in chunks (memory stays flat); returns what it wrote."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(100, n // 25), max(50, n // 100)
    written = without_id = repeats = 0
    base = 1_700_000_000.0
    clock = base
    previous: list[str] = []
    with open(path, "w", encoding="utf-8") as out:
        while written < n:
            size = min(_CHUNK, n - written)
            users = rng.integers(0, n_users, size)
            items = rng.zipf(1.3, size) % n_items
            kinds = TYPES[rng.choice(len(TYPES), size, p=TYPE_SHARE)]
            # ~30% of consecutive events share a timestamp (ties must keep insertion order).
            gaps = np.where(rng.random(size) < 0.3, 0.0, rng.exponential(2.0, size).round(3))
            times = clock + np.cumsum(gaps)
            clock = float(times[-1])
            no_id = rng.random(size) < 0.05
            repeat = rng.random(size) < 0.005
            lines = []
            for i in range(size):
                if repeat[i] and previous:
                    lines.append(previous[int(rng.integers(len(previous)))])
                    repeats += 1
                    continue
                kind = kinds[i]
                fields = [f'"user_id":"shopper-{users[i]}"', f'"type":"{kind}"', f'"timestamp":{times[i]:.3f}',
                          f'"session_id":"s{users[i]}-{int(times[i] // 1800)}"']
                if not no_id[i]:
                    fields.insert(0, f'"event_id":"ev-{written + i}"')
                else:
                    without_id += 1
                if kind == "search":
                    fields.append(f'"query":"{QUERIES[items[i] % len(QUERIES)]}"')
                else:
                    fields.append(f'"item_id":"p{items[i]}"')
                if kind == "purchase":
                    fields.append(f'"price":{5 + items[i] % 200}.99,"quantity":{1 + items[i] % 3}')
                if kind == "rating":
                    fields.append(f'"value":{1 + items[i] % 5}')
                if i % 4 == 0:
                    fields.append(f'"context":{{"device":"{DEVICES[users[i] % 3]}","locale":"{LOCALES[users[i] % 4]}"}}')
                line = "{" + ",".join(fields) + "}\n"
                lines.append(line)
                if i % 97 == 0:
                    previous.append(line)
                    if len(previous) > 1000:
                        previous = previous[-500:]
            out.writelines(lines)
            written += size
    return {"lines": written, "without_event_id": without_id, "repeated_lines": repeats,
            "users": n_users, "items": n_items}


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(args: argparse.Namespace) -> int:
    from shoprec.data.ingest import ingest_file
    from shoprec.data.store import open_store
    from shoprec.settings import get_settings

    settings = get_settings()
    load_at_start = list(os.getloadavg())  # timings on a shared machine only mean something next to its load
    own_dir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="shoprec-bench-ingest-")) if own_dir else Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store_url = args.store or f"sqlite:///{workdir / 'bench.db'}"
    data = workdir / f"events-{args.events}.jsonl"
    result: dict[str, Any] = {"benchmark": "ingest", "events": args.events, "store": store_url.split(":", 1)[0],
                              "batch_size": args.batch_size, "seed": args.seed}
    try:
        if args.store is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{workdir / 'bench.db'}{suffix}").unlink(missing_ok=True)
        t0 = time.perf_counter()
        result["generated"] = generate_events(data, args.events, args.seed)
        result["generate_s"] = round(time.perf_counter() - t0, 2)
        result["file_mb"] = round(data.stat().st_size / 2**20, 1)
        print(f"generated {args.events:,} events ({result['file_mb']} MB) in {result['generate_s']}s -> {data}")
        rss_before = _rss_mb()

        with open_store(store_url) as store:
            progress = True if args.progress else False
            first = ingest_file(data, "events", store=store, settings=settings, batch_size=args.batch_size, progress=progress)
            peak_after_first = _peak_rss_mb()
            second = ingest_file(data, "events", store=store, settings=settings, batch_size=args.batch_size, progress=progress)
            peak_ingest = _peak_rss_mb()
            result.update(
                ingest=first.to_dict(), reingest=second.to_dict(),
                rows_per_s=round(first.rows_per_s), wall_s=round(first.seconds, 2),
                cpu_s=round(first.cpu_seconds, 2), rows_per_cpu_s=round(first.rows_read / max(first.cpu_seconds, 1e-9)),
                reingest_rows_per_s=round(second.rows_per_s), reingest_wall_s=round(second.seconds, 2),
                inserted_on_reingest=second.inserted,
                rss_before_ingest_mb=round(rss_before, 1),
                peak_rss_after_first_ingest_mb=round(peak_after_first, 1),
                peak_rss_mb=round(peak_ingest, 1),
            )
            print(f"ingest:    {first.rows_read:,} rows in {first.seconds:.1f}s = {first.rows_per_s:,.0f} rows/s "
                  f"(CPU {first.cpu_seconds:.1f}s = {result['rows_per_cpu_s']:,} rows per CPU-second; inserted {first.inserted:,}, duplicates {first.duplicates:,}, rejected {first.rejected})")
            print(f"re-ingest: {second.rows_read:,} rows in {second.seconds:.1f}s = {second.rows_per_s:,.0f} rows/s "
                  f"(inserted {second.inserted:,}, duplicates {second.duplicates:,})")
            print(f"peak RSS: {peak_ingest:.0f} MB (process RSS before ingesting {rss_before:.0f} MB)")
            if not args.skip_read:
                from shoprec.data.interactions import events_to_interactions

                t0 = time.perf_counter()
                events = store.read_events()
                result["read_events_s"] = round(time.perf_counter() - t0, 2)
                t0 = time.perf_counter()
                data_ix = events_to_interactions(events, store.read_products())
                result["interactions_s"] = round(time.perf_counter() - t0, 2)
                result["interactions"] = len(data_ix)
                result["peak_rss_with_read_mb"] = round(_peak_rss_mb(), 1)
                print(f"read_events: {events.num_rows:,} rows in {result['read_events_s']}s; "
                      f"events_to_interactions: {len(data_ix):,} in {result['interactions_s']}s")
                del events, data_ix
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                         "nice": os.nice(0), "load_avg_at_start": load_at_start, "load_avg_at_end": list(os.getloadavg())}
    ok = result["inserted_on_reingest"] == 0 and result["ingest"]["rejected"] == 0
    if args.json:
        Path(args.json).write_text(json.dumps(result) + "\n", encoding="utf-8")
    if args.record:
        _record(args.record, result)
    print(f"inserted on re-ingest: {result['inserted_on_reingest']} ({'ok' if ok else 'FAILED'})")
    print(json.dumps(result))
    sys.stdout.flush()
    return 0 if ok else 1


def _record(store_url: str, result: dict[str, Any]) -> None:
    from shoprec.data.store import open_store
    from shoprec.evaluation.registry import record_run

    metrics = {k: result[k] for k in ("rows_per_s", "rows_per_cpu_s", "reingest_rows_per_s", "inserted_on_reingest",
                                      "peak_rss_mb") if k in result}
    timings = {k: result[k] for k in ("wall_s", "cpu_s", "reingest_wall_s", "read_events_s", "interactions_s",
                                      "generate_s") if k in result}
    config = {k: result[k] for k in ("events", "store", "batch_size", "seed")}
    with open_store(store_url) as store:
        run_id = record_run(store, "ingest", f"{result['store']}-{result['events']}", config, metrics, timings, None,
                            {"generated": result.get("generated"), "machine": result.get("machine")})
    print(f"recorded run {run_id} in {store_url}")
