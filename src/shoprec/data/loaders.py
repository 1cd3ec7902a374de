"""Loaders for the real benchmark formats: S3-Rec Amazon sequences and the Home Depot search data.

S3-Rec (`<Name>.txt`): one user per line, `user_id item_id item_id ...` in time order; item ids
are 1..N and become indices 0..N-1. `<Name>_item2attributes.json` maps item id -> attribute ids
(category and brand). Home Depot: `products.csv` (product_uid, product_title) and
`judgments_dev.csv` (query, product_uid, relevance 1..3).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shoprec.data.schemas import Event, Product

# Synthetic S3-Rec event times: one second apart from 2020-01-01, in file order, so that
# (timestamp, insertion) order in the store is exactly the file's order.
S3REC_EPOCH = 1_577_836_800.0


class DataFormatError(ValueError):
    """A data file does not have the expected shape; the message names file, line and reason."""


@dataclass
class S3RecData:
    """One S3-Rec dataset in index space.

    sequences: one (length,) int64 array of 0-based item indices per user, in file (time) order.
    item_attributes: (n_items, n_attributes) CSR 0/1; column a is attribute id a of the JSON file.
    user_ids: (n_users,) the file's user ids (strings), aligned with `sequences`.
    """

    name: str
    sequences: list[np.ndarray]
    n_items: int
    item_attributes: sp.csr_matrix | None = None
    user_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def to_interactions(self):
        """The dataset as `Interactions` (item ids "1".."N", one purchase per sequence position)."""
        from shoprec.recommend.dataset import Interactions

        item_ids = np.arange(1, self.n_items + 1).astype(str)
        return Interactions.from_sequences(
            self.sequences, self.n_items, user_ids=np.asarray(self.user_ids).astype(str), item_ids=item_ids,
            item_attributes=self.item_attributes, meta={"dataset": self.name},
        )


def s3rec_paths(directory: str | Path, name: str) -> tuple[Path, Path]:
    directory = Path(directory)
    return directory / f"{name}.txt", directory / f"{name}_item2attributes.json"


def _read_sequence_lines(path: Path) -> Iterator[tuple[int, str, np.ndarray]]:
    """(line number, user id, item ids as int64) per non-blank line; errors name file:line."""
    with path.open("r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                raise DataFormatError(f"{path}:{line_number}: user {fields[0]!r} has no items")
            try:
                items = np.array(fields[1:], dtype=np.int64)
            except ValueError:
                bad = next(f for f in fields[1:] if not f.lstrip("-").isdigit())
                raise DataFormatError(f"{path}:{line_number}: item id {bad!r} is not an integer") from None
            if items.min() < 1:
                raise DataFormatError(f"{path}:{line_number}: item ids start at 1, found {int(items.min())}")
            yield line_number, fields[0], items


def load_s3rec(directory: str | Path, name: str) -> S3RecData:
    """Read `<name>.txt` and, when present, `<name>_item2attributes.json` from `directory`.

    Item id i becomes index i-1; sequences keep the file's order (never re-sorted: ties in time
    are common in these files).
    """
    seq_path, attr_path = s3rec_paths(directory, name)
    if not seq_path.exists():
        raise FileNotFoundError(f"{seq_path}: S3-Rec sequence file not found")
    user_ids: list[str] = []
    sequences: list[np.ndarray] = []
    for _, user, items in _read_sequence_lines(seq_path):
        user_ids.append(user)
        sequences.append(items - 1)
    n_items = max((int(s.max()) + 1 for s in sequences), default=0)
    attributes = None
    if attr_path.exists():
        mapping = _read_attribute_json(attr_path)
        if mapping:
            n_items = max(n_items, max(mapping))
            attributes = _attribute_matrix(mapping, n_items)
    return S3RecData(name=name, sequences=sequences, n_items=n_items, item_attributes=attributes,
                     user_ids=np.array(user_ids, dtype=object))


def _read_attribute_json(path: Path) -> dict[int, list[int]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(raw, dict):
        raise DataFormatError(f"{path}: expected an object {{item_id: [attribute ids]}}")
    mapping: dict[int, list[int]] = {}
    for key, values in raw.items():
        try:
            item = int(key)
            attrs = [int(v) for v in values]
        except (TypeError, ValueError):
            raise DataFormatError(f"{path}: item {key!r}: ids must be integers") from None
        if item < 1 or any(a < 0 for a in attrs):
            raise DataFormatError(f"{path}: item {key!r}: item ids start at 1, attribute ids at 0")
        mapping[item] = attrs
    return mapping


def _attribute_matrix(mapping: dict[int, list[int]], n_items: int) -> sp.csr_matrix:
    counts = np.fromiter((len(v) for v in mapping.values()), dtype=np.int64, count=len(mapping))
    rows = np.repeat(np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping)) - 1, counts)
    cols = np.fromiter((a for v in mapping.values() for a in v), dtype=np.int64, count=int(counts.sum()))
    n_attributes = int(cols.max()) + 1 if len(cols) else 0
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n_items, n_attributes))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def iter_s3rec_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Raw event rows of an S3-Rec sequence file: (line number, row dict), one purchase per item.

    event_id is `s3rec:<file stem>:<user>:<position>` (stable, so re-ingest is idempotent);
    timestamps are synthetic and strictly increase through the file.
    """
    path = Path(path)
    tick = 0
    for line_number, user, items in _read_sequence_lines(path):
        for position, item in enumerate(items.tolist()):
            yield line_number, {
                "event_id": f"s3rec:{path.stem}:{user}:{position}",
                "user_id": user,
                "item_id": str(item),
                "type": "purchase",
                "timestamp": S3REC_EPOCH + tick,
            }
            tick += 1


def iter_s3rec_events(path: str | Path) -> Iterator[Event]:
    """The S3-Rec sequence file as `Event`s (purchases with synthetic increasing timestamps)."""
    for _, row in iter_s3rec_rows(path):
        yield Event.model_validate(row)


# -- Home Depot ----------------------------------------------------------------------------------

def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataFormatError(f"{path}:1: missing column(s) {', '.join(missing)}; header is {header}")
        line = reader.line_num + 1
        for cells in reader:
            if cells:
                if len(cells) != len(header):
                    raise DataFormatError(f"{path}:{line}: {len(cells)} fields, header has {len(header)}")
                yield line, dict(zip(header, cells))
            line = reader.line_num + 1


def iter_homedepot_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Raw product rows of the Home Depot `products.csv`: (line number, {"id", "title"})."""
    path = Path(path)
    for line, row in _csv_rows(path, ("product_uid", "product_title")):
        yield line, {"id": row["product_uid"], "title": row["product_title"]}


def iter_homedepot_products(path: str | Path) -> Iterator[Product]:
    """The Home Depot catalog as `Product`s; a row that does not validate raises with file:line."""
    from pydantic import ValidationError

    for line, row in iter_homedepot_rows(path):
        try:
            yield Product.model_validate(row)
        except ValidationError as error:
            first = error.errors()[0]
            field_name = ".".join(str(x) for x in first["loc"]) or "<row>"
            raise DataFormatError(f"{path}:{line}: {field_name}: {first['msg']}") from None


def load_homedepot_products(path: str | Path) -> list[Product]:
    return list(iter_homedepot_products(path))


def load_judgments(path: str | Path) -> list[tuple[str, str, float]]:
    """(query, product_uid, relevance) triples of a Home Depot judgments file, in file order."""
    path = Path(path)
    out: list[tuple[str, str, float]] = []
    for line, row in _csv_rows(path, ("query", "product_uid", "relevance")):
        try:
            relevance = float(row["relevance"])
        except ValueError:
            raise DataFormatError(f"{path}:{line}: relevance: {row['relevance']!r} is not a number") from None
        if not row["query"].strip() or not row["product_uid"].strip():
            raise DataFormatError(f"{path}:{line}: query and product_uid must not be empty")
        out.append((row["query"], row["product_uid"].strip(), relevance))
    return out
