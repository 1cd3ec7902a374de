"""Streaming readers for ingestion: each yields (line number, row) in constant memory.

A row is a dict of raw values, or a `RowError` when the line cannot even be parsed (malformed
JSON, wrong number of CSV fields, bad UTF-8), so the caller reports it and moves on. Problems with
the whole file (unknown format, unknown or missing columns) raise `IngestError` before any row.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from shoprec.data.schemas import Event, Product, User
from shoprec.errors import ShoprecError

FORMATS = ("auto", "csv", "jsonl", "parquet", "s3rec", "homedepot")
MODELS = {"catalog": Product, "events": Event, "users": User}
# Columns a file must have for each kind (event_id is optional: a content hash stands in).
REQUIRED_COLUMNS = {"catalog": ("id", "title"), "events": ("user_id", "type", "timestamp"), "users": ("id",)}
# CSV cells holding JSON (a category cell holds JSON only when it starts with "[").
JSON_COLUMNS = {"attributes", "context"}
_JSON_TEXT_KEYS = ("attributes", "context", "category")


class IngestError(ShoprecError, ValueError):
    """The file as a whole cannot be ingested (the message names the file and the reason)."""


@dataclass
class RowError:
    field: str
    reason: str
    raw: Any


Row = tuple[int, "dict[str, Any] | RowError"]


def detect_format(path: Path, kind: str) -> str:
    """The format from the file name (and, for CSV, its header): csv, jsonl, parquet, s3rec or homedepot."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".txt" and kind == "events":
        return "s3rec"
    if suffix in (".csv", ".tsv"):
        with _open_binary(path) as handle:
            header = handle.readline().decode("utf-8-sig", errors="replace")
        if kind == "catalog" and "product_uid" in header and "product_title" in header:
            return "homedepot"
        return "csv"
    raise IngestError(f"{path}: cannot tell the format from the name; pass --format csv|jsonl|parquet|s3rec|homedepot")


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def read_rows(path: Path, kind: str, fmt: str, batch_size: int = 10_000) -> Iterator[Row]:
    """Stream (line number, raw row) pairs of `path` read as `fmt` for `kind` (catalog/events/users)."""
    if kind not in MODELS:
        raise IngestError(f"unknown kind {kind!r}: use catalog, events or users")
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if fmt == "auto":
        fmt = detect_format(path, kind)
    if fmt == "csv":
        return read_csv(path, kind)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "parquet":
        return read_parquet(path, kind, batch_size)
    if fmt == "s3rec":
        if kind != "events":
            raise IngestError(f"{path}: the s3rec format holds events, not {kind}")
        from shoprec.data.loaders import iter_s3rec_rows

        return iter_s3rec_rows(path)
    if fmt == "homedepot":
        if kind != "catalog":
            raise IngestError(f"{path}: the homedepot format holds a catalog, not {kind}")
        from shoprec.data.loaders import DataFormatError, iter_homedepot_rows

        def rows() -> Iterator[Row]:
            try:
                yield from iter_homedepot_rows(path)
            except DataFormatError as error:
                raise IngestError(str(error)) from None

        return rows()
    raise IngestError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def check_columns(path: Path, kind: str, columns: list[str], where: str = "1") -> None:
    """Unknown or missing columns are a file-level error (a typo would otherwise reject every row)."""
    allowed = MODELS[kind].model_fields
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise IngestError(f"{path}:{where}: unknown column(s) {', '.join(unknown)} for {kind}; "
                          f"allowed: {', '.join(allowed)}")
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in columns]
    if missing:
        raise IngestError(f"{path}:{where}: missing required column(s) {', '.join(missing)} for {kind}")


def _decoded_lines(handle: IO[bytes], bad_lines: set[int]) -> Iterator[str]:
    """Physical lines as text; lines that are not valid UTF-8 are decoded with U+FFFD and remembered."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            yield raw.decode("utf-8", errors="replace")


def read_csv(path: Path, kind: str) -> Iterator[Row]:
    """CSV with a header row; line numbers are the physical line where each record starts."""
    bad_lines: set[int] = set()
    with _open_binary(path) as handle:
        reader = csv.reader(_decoded_lines(handle, bad_lines))
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise IngestError(f"{path}:1: empty file (a header row is required)")
        check_columns(path, kind, header)
        width = len(header)
        start = reader.line_num + 1
        for cells in reader:
            end = reader.line_num
            if cells:
                if bad_lines and any(start <= n <= end for n in bad_lines):
                    yield start, RowError("<row>", "not valid UTF-8", dict(zip(header, cells)))
                elif len(cells) != width:
                    yield start, RowError("<row>", f"{len(cells)} fields, the header has {width}", cells)
                else:
                    yield start, _values(dict(zip(header, cells)))
            start = end + 1


def _values(row: dict[str, Any]) -> dict[str, Any] | RowError:
    """Empty or null values mean "not given"; JSON given as text (CSV cells, exported tables) is parsed."""
    values = row.values()
    if None in values or "" in values:
        row = {key: value for key, value in row.items() if value is not None and value != ""}
    for key in _JSON_TEXT_KEYS:
        value = row.get(key)
        if value.__class__ is str and (key != "category" or value.lstrip().startswith("[")):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError as error:
                return RowError(key, f"malformed JSON: {error}", row)
            row = {**row, key: parsed}
    return row


def read_jsonl(path: Path) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped (but counted for line numbers)."""
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                yield number, RowError("<row>", f"malformed JSON: {error}", raw.decode("utf-8", errors="replace").rstrip("\n"))
                continue
            if not isinstance(value, dict):
                yield number, RowError("<row>", f"expected a JSON object, got {type(value).__name__}", value)
                continue
            yield number, _values(value)


def read_parquet(path: Path, kind: str, batch_size: int) -> Iterator[Row]:
    """Parquet row groups streamed in batches; the "line" is the 1-based row number."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise IngestError(f"{path}: not a readable Parquet file ({error})") from None
    check_columns(path, kind, parquet.schema_arrow.names, where="schema")
    number = 0
    for batch in parquet.iter_batches(batch_size=batch_size):
        for value in batch.to_pylist():
            number += 1
            yield number, _values(value)
