"""Ingestion: stream a catalog, events or users file into the store, validated and deduplicated.

Rows are read one at a time (constant memory), validated by the pydantic models of
`shoprec.data.schemas`, and written in batches. A bad row never stops the load and is never
dropped silently: it is reported as `file:line: field: reason` on stderr (the first few), written
to `<input>.rejects.jsonl` (all of them, with the raw row) and counted in the report. User ids are
pseudonymised before anything is stored. Re-ingesting a file changes nothing: products compare
equal (unchanged), events are keyed by event_id (a content hash when the file has none).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import ValidationError

from shoprec.data.privacy import pseudonymize
from shoprec.data.readers import FORMATS, MODELS, IngestError, Row, RowError, detect_format, read_rows
from shoprec.data.schemas import Event, Product, User
from shoprec.data.store import common

# Rows per store transaction. Large batches matter at scale: random keys (user, event id) dirty
# index pages all over the file, and each commit writes every dirtied page once.
DEFAULT_BATCH_SIZE = 20_000
DEFAULT_SHOWN_ERRORS = 20
_KNOWN_USERS_CAP = 500_000  # pseudonyms remembered to skip redundant user inserts; cleared when full
_VALUE_ERROR_PREFIX = "Value error, "
_JOURNAL_CHUNK = 1000  # product ids per change journal entry (the API's largest upsert batch)

__all__ = ["FORMATS", "IngestError", "IngestReport", "ingest_file", "ingest_rows", "content_event_id"]


@dataclass
class IngestReport:
    """What one ingestion did. `duplicates`: valid events not stored because their event_id was
    already stored or repeated earlier in the file."""

    kind: str
    path: str
    format: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    missing_price: int = 0
    missing_category: int = 0
    users_added: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: the figure that does not depend on other load
    rejects_path: str | None = None
    # Catalog: products journaled for running services (`shoprec.changes`), and those changed but
    # left to the next build (more than `service.live_catalog_max_products`).
    journaled: int = 0
    left_to_build: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        out["cpu_seconds"] = round(self.cpu_seconds, 3)
        out["rows_per_s"] = round(self.rows_per_s, 1)
        return out

    def summary_line(self) -> str:
        parts = [f"read {self.rows_read:,}", f"inserted {self.inserted:,}"]
        if self.kind == "events":
            parts += [f"duplicates {self.duplicates:,}", f"new users {self.users_added:,}"]
        else:
            parts += [f"updated {self.updated:,}", f"unchanged {self.unchanged:,}"]
        parts.append(f"rejected {self.rejected:,}")
        if self.kind == "catalog":
            parts += [f"missing price {self.missing_price:,}", f"missing category {self.missing_category:,}"]
        line = f"{self.kind} {self.path}: " + ", ".join(parts) + f" in {self.seconds:.1f}s ({self.rows_per_s:,.0f} rows/s)"
        if self.journaled:
            line += f"; running services serve the {self.journaled:,} changed products within a second"
        if self.left_to_build:
            line += (f"; {self.left_to_build:,} changed products are more than service.live_catalog_max_products:"
                     " running services serve them after the next build (shoprec build, or POST /v1/admin/build)")
        return line


class _Rejects:
    """Reports bad rows: the first `max_shown` on `err`, every one to the rejects file (opened lazily)."""

    def __init__(self, source: str, path: Path, err: IO[str], max_shown: int, bar: Any = None):
        self.source, self.path, self.err, self.max_shown, self.bar = source, path, err, max_shown, bar
        self.count = 0
        self._file: IO[bytes] | None = None

    def add(self, line: int, field: str, reason: str, raw: Any, errors: list[dict[str, str]] | None = None) -> None:
        self.count += 1
        if self.count <= self.max_shown:
            self._say(f"{self.source}:{line}: {field}: {reason}")
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")
        record = {"line": line, "field": field, "reason": reason, "errors": errors or [{"field": field, "reason": reason}],
                  "raw": raw}
        self._file.write(orjson.dumps(record, default=str) + b"\n")

    def _say(self, message: str) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.write(message, file=self.err)
        else:
            print(message, file=self.err)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self.path.exists():
            self.path.unlink()  # a stale rejects file from an earlier run would mislead
        if self.count > self.max_shown:
            self._say(f"... {self.count - self.max_shown:,} more rejected rows, all listed in {self.path}")


def _validation_errors(error: ValidationError, model: type) -> list[dict[str, str]]:
    """Pydantic errors as [{"field", "reason"}]; model-level errors get the field their message names."""
    out = []
    for item in error.errors(include_url=False, include_input=False):
        reason = item["msg"].removeprefix(_VALUE_ERROR_PREFIX)
        field = ".".join(str(x) for x in item["loc"])
        if not field:
            first = reason.split(" ", 1)[0]
            field = first if first in model.model_fields else "<row>"
        out.append({"field": field, "reason": reason})
    return out


def _time_field(raw: dict[str, Any]) -> str:
    """The time field of a row that overflowed the platform's time range (pydantic lets that error through)."""
    from shoprec.data.schemas import to_utc

    for name in ("timestamp", "created_at", "updated_at"):
        if raw.get(name) is not None:
            try:
                to_utc(raw[name])
            except (OverflowError, OSError, ValueError):
                return name
    return "<row>"


def content_event_id(row_without_id: tuple) -> str:
    """A deterministic event id from an event's stored content (pseudonymised user, item, type, time...)."""
    digest = hashlib.blake2b(orjson.dumps(row_without_id), digest_size=16).hexdigest()
    return "h_" + digest


def ingest_file(
    path: str | Path,
    kind: str,
    store: Any = None,
    store_url: str | None = None,
    settings: Any = None,
    fmt: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = False,
    max_shown: int = DEFAULT_SHOWN_ERRORS,
    err: IO[str] | None = None,
    rejects_path: str | Path | None = None,
    pseudonymize_ids: bool = True,
) -> IngestReport:
    """Ingest one file of `kind` ("catalog", "events" or "users") into the store.

    The store is `store`, else the one at `store_url`, else settings.store_url. User ids are
    pseudonymised with settings.pseudonym_key unless `pseudonymize_ids` is False (a file exported
    from a store already holds pseudonyms). `progress`: a tqdm bar (rows/s) on `err`; None shows it
    only when `err` is a terminal. Raises IngestError when the file as a whole is unusable.
    """
    from tqdm import tqdm

    if settings is None:
        from shoprec.settings import get_settings

        settings = get_settings()
    if kind not in MODELS:
        raise IngestError(f"unknown kind {kind!r}: use catalog, events or users")
    if batch_size < 1:
        raise IngestError("batch size must be at least 1")
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    resolved = detect_format(path, kind) if fmt == "auto" else fmt
    rows = read_rows(path, kind, resolved, batch_size)
    report = IngestReport(kind=kind, path=str(path), format=resolved)
    err = err if err is not None else sys.stderr
    rejects_file = Path(rejects_path) if rejects_path else path.with_name(path.name + ".rejects.jsonl")

    own_store = store is None
    if own_store:
        from shoprec.data.store import open_store

        store = open_store(store_url or settings.store_url)
    bar = tqdm(desc=f"ingest {kind}", unit=" rows", unit_scale=True, file=err, disable=None if progress is None else not progress,
               mininterval=0.5, dynamic_ncols=True)
    rejects = _Rejects(str(path), rejects_file, err, max_shown, bar)
    started, cpu_started = time.perf_counter(), time.process_time()
    changed: list[str] = []
    try:
        ingest_rows(rows, kind, store, report, rejects, key=settings.pseudonym_key, batch_size=batch_size,
                    on_batch=bar.update, pseudonymize_ids=pseudonymize_ids, changed_ids=changed)
    finally:
        if changed:  # also after a failure: what was written must reach the services (a rerun finds it unchanged)
            _journal_catalog(store, changed, settings.service.live_catalog_max_products, report)
        report.seconds = time.perf_counter() - started
        report.cpu_seconds = time.process_time() - cpu_started
        bar.close()
        rejects.close()
        if own_store:
            store.close()
    report.rejected = rejects.count
    report.rejects_path = str(rejects_file) if rejects.count else None
    return report


def _journal_catalog(store: Any, changed: list[str], limit: int, report: IngestReport) -> None:
    """Tell running serving processes which products changed (they index them as after an API upsert),
    in entries of at most one API batch; more than `limit` products are left to the next build."""
    from shoprec import changes

    changed = list(dict.fromkeys(changed))
    if len(changed) > limit:
        report.left_to_build = len(changed)
        return
    for start in range(0, len(changed), _JOURNAL_CHUNK):
        changes.record(store, "upsert", changed[start:start + _JOURNAL_CHUNK])
    report.journaled = len(changed)


def ingest_rows(
    rows: Iterable[Row],
    kind: str,
    store: Any,
    report: IngestReport,
    rejects: Any,
    key: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Any = None,
    pseudonymize_ids: bool = True,
    changed_ids: list[str] | None = None,
) -> IngestReport:
    """Validate (line, raw row) pairs and write them in batches; counts go into `report`, and the ids
    of the products inserted or changed into `changed_ids`.

    `rejects.add(line, field, reason, raw, errors)` receives every bad row; `on_batch(n)` is told how
    many more rows were read after each store write (the progress bar).
    """
    model = MODELS[kind]
    batch: list[Any] = []
    if kind == "events":
        writer = _EventWriter(store, report, key, pseudonymize_ids)
    elif kind == "catalog":
        writer = _CatalogWriter(store, report, changed_ids if changed_ids is not None else [])
    else:
        writer = _UserWriter(store, report, key, pseudonymize_ids)
    prepare, add_reject = writer.prepare, rejects.add
    pipeline = _Pipeline(writer.write)
    read = reported = report.rows_read
    try:
        for line, raw in rows:
            read += 1
            if raw.__class__ is RowError:
                add_reject(line, raw.field, raw.reason, raw.raw)
                continue
            try:
                batch.append(prepare(raw))
            except ValidationError as error:
                errors = _validation_errors(error, model)
                first = errors[0]
                reason = first["reason"]
                if len(errors) > 1:
                    reason += f" (and {len(errors) - 1} more: {', '.join(e['field'] for e in errors[1:])})"
                add_reject(line, first["field"], reason, raw, errors)
                continue
            except (OverflowError, OSError) as error:  # a time beyond what the platform's clock can hold
                add_reject(line, _time_field(raw), f"time out of range ({error})", raw)
                continue
            if len(batch) >= batch_size:
                pipeline.submit(batch)
                batch = []
                if on_batch is not None:
                    on_batch(read - reported)
                    reported = read
        if batch:
            pipeline.submit(batch)
        pipeline.close()
        if on_batch is not None:
            on_batch(read - reported)
    finally:
        pipeline.close()  # never return (or raise) while a batch is still being written
        report.rows_read = read
    return report


class _Pipeline:
    """Writes each batch on one background thread while the caller validates the next one.

    sqlite3 and psycopg release the GIL while the database works, so parsing and writing overlap.
    At most one batch is in flight; `close()` returns only once it is committed (and re-raises its error).
    """

    def __init__(self, write: Any):
        from concurrent.futures import ThreadPoolExecutor

        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoprec-ingest")
        self._pending: Any = None

    def submit(self, batch: list[Any]) -> None:
        self.wait()
        self._pending = self._pool.submit(self._write, batch)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


class _CatalogWriter:
    def __init__(self, store: Any, report: IngestReport, changed_ids: list[str]):
        self.store, self.report, self.changed_ids = store, report, changed_ids

    def prepare(self, raw: dict[str, Any]) -> Product:
        product = Product.model_validate(raw)
        if product.price is None:
            self.report.missing_price += 1
        if not product.category:
            self.report.missing_category += 1
        return product

    def write(self, batch: list[Product]) -> None:
        result = self.store.upsert_products(batch)
        self.report.inserted += result.inserted
        self.report.updated += result.updated
        self.report.unchanged += result.unchanged
        self.changed_ids += result.changed_ids


class _UserWriter:
    def __init__(self, store: Any, report: IngestReport, key: str, pseudonymize_ids: bool):
        self.store, self.report, self.key, self.pseudonymize_ids = store, report, key, pseudonymize_ids

    def prepare(self, raw: dict[str, Any]) -> User:
        user = User.model_validate(raw)
        if self.pseudonymize_ids:
            user = user.model_copy(update={"id": pseudonymize(user.id, self.key)})
        return user

    def write(self, batch: list[User]) -> None:
        result = self.store.upsert_users(batch)
        self.report.inserted += result.inserted
        self.report.updated += result.updated
        self.report.unchanged += result.unchanged


class _EventWriter:
    """Builds store rows (EVENT_COLUMNS order) straight from validated events: the hot path."""

    def __init__(self, store: Any, report: IngestReport, key: str, pseudonymize_ids: bool):
        self.store, self.report, self.key, self.pseudonymize_ids = store, report, key, pseudonymize_ids
        self.known_users: set[str] = set()
        self.bulk = getattr(store, "add_event_rows", None)
        self.validate = Event.__pydantic_validator__.validate_python  # model_validate minus a wrapper call
        self.ensure_users = getattr(store, "ensure_users", None)

    def prepare(self, raw: dict[str, Any]) -> tuple:
        given_id = "event_id" in raw  # readers drop empty values, so present means given
        if not given_id:
            raw = {**raw, "event_id": "pending"}  # replaced by a content hash below
        e = self.validate(raw)
        user = pseudonymize(e.user_id, self.key) if self.pseudonymize_ids else e.user_id
        # `_value_` is the member's plain attribute: `.value` goes through a slow enum descriptor.
        content = (user, e.session_id, e.item_id, e.type._value_, e.value, e.quantity, e.price, e.query,
                   e.timestamp.timestamp(), common.dumps(e.context) if e.context else "{}")
        return ((e.event_id if given_id else content_event_id(content)),) + content

    def write(self, batch: list[tuple]) -> None:
        if self.ensure_users is not None:
            new_users = {row[1] for row in batch} - self.known_users
            if new_users:
                self.report.users_added += self.ensure_users(sorted(new_users))
                if len(self.known_users) > _KNOWN_USERS_CAP:
                    self.known_users.clear()
                self.known_users |= new_users
        if self.bulk is not None:
            inserted = self.bulk(batch)
        else:
            inserted = self.store.add_events(_row_event(row) for row in batch)
        self.report.inserted += inserted
        self.report.duplicates += len(batch) - inserted


def _row_event(row: tuple) -> Event:
    values = dict(zip(common.EVENT_COLUMNS, row))
    values["context"] = orjson.loads(values["context"])
    return Event.model_validate(values)
