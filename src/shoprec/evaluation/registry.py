"""The experiment registry: every benchmark / evaluation run as a record in the store.

A run record (`store.put_record("run", run_id, value)`) holds kind, name, config, metrics,
timings, a fingerprint of the data, the code version, the machine and the time, so a report can
compare runs and say which code and data produced each figure.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

RUN_RECORD = "run"
REQUIRED_JSON_FIELDS = ("kind", "name", "metrics")


def jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples, paths and datetimes (NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    return str(value)


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """{"package": version, "git_commit", "git_describe", "git_dirty"} (git fields when available)."""
    from shoprec import __version__

    info: dict[str, Any] = {"package": __version__}
    root = Path(__file__).resolve().parents[3]
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True).stdout.strip()

        info["git_commit"] = git("rev-parse", "HEAD")
        info["git_describe"] = git("describe", "--always", "--dirty", "--tags")
        info["git_dirty"] = info["git_describe"].endswith("-dirty")
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (installed package): the package version is what we know
    return info


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU count and total memory of this machine."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 2)
    except ImportError:
        pass
    return info


def fingerprint(data: Any) -> str:
    """Short sha256 of arrays, a pyarrow Table, Interactions, or JSON-able data (dtype and shape included)."""
    digest = hashlib.sha256()
    _feed(digest, data)
    return digest.hexdigest()[:16]


def _feed(digest: "hashlib._Hash", data: Any) -> None:
    import pyarrow as pa

    from shoprec.recommend.dataset import Interactions

    if isinstance(data, np.ndarray):
        array = np.ascontiguousarray(data)
        digest.update(f"ndarray{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes() if array.dtype != object else json.dumps(array.tolist(), default=str).encode())
    elif isinstance(data, (pa.Table, pa.RecordBatch)):
        sink = pa.BufferOutputStream()
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.combine_chunks())
        digest.update(b"arrow")
        digest.update(sink.getvalue().to_pybytes())
    elif isinstance(data, Interactions):
        digest.update(f"interactions{data.n_users},{data.n_items}".encode())
        for array in (data.users, data.items, data.weights, data.timestamps):
            _feed(digest, array)
    elif isinstance(data, (list, tuple)) and any(isinstance(x, (np.ndarray, pa.Table)) for x in data):
        digest.update(f"seq{len(data)}".encode())
        for part in data:
            _feed(digest, part)
    elif isinstance(data, dict) and any(isinstance(x, (np.ndarray, pa.Table)) for x in data.values()):
        for key in sorted(data):
            digest.update(str(key).encode())
            _feed(digest, data[key])
    else:
        digest.update(json.dumps(jsonable(data), sort_keys=True).encode())


def provenance() -> dict[str, Any]:
    """When, from which code and on which machine a run was made: merge into a record written to a
    file so that `record_from_json` keeps it."""
    return {"created_at": datetime.now(timezone.utc).isoformat(), "code": code_version(), "machine": machine_info()}


def record_run(
    store,
    kind: str,
    name: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    timings: dict[str, float] | None,
    data_fingerprint: str | None,
    extra: dict[str, Any] | None = None,
    created_at: str | None = None,
    code: dict[str, Any] | None = None,
    machine: dict[str, Any] | None = None,
) -> str:
    """Store one run; returns its id ("{kind}-{UTC time}-{random}").

    kind: what produced it ("seqrec", "abtest", "evaluate", ...); name: the variant (model, arm ...);
    extra may hold "segments": {segment: {metric: value}} and "curve": [{param: x, metric: y}] lists.
    created_at / code / machine: the provenance of a run recorded elsewhere (default: here and now)."""
    if not kind or not name:
        raise ValueError("record_run needs a non-empty kind and name")
    now = datetime.fromisoformat(created_at) if created_at else datetime.now(timezone.utc)
    run_id = f"{kind}-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    value = {
        "run_id": run_id,
        "kind": kind,
        "name": name,
        "created_at": now.isoformat(),
        "config": jsonable(config or {}),
        "metrics": jsonable(metrics or {}),
        "timings": jsonable(timings or {}),
        "data_fingerprint": data_fingerprint,
        "code": code if code is not None else code_version(),
        "machine": machine if machine is not None else machine_info(),
        "extra": jsonable(extra or {}),
    }
    store.put_record(RUN_RECORD, run_id, value)
    return run_id


def list_runs(store, kind: str | None = None) -> list[dict[str, Any]]:
    """Run records (oldest first), optionally of one kind."""
    runs = [value for _, value in store.list_records(RUN_RECORD)]
    return [r for r in runs if kind is None or r.get("kind") == kind]


def get_run(store, run_id: str) -> dict[str, Any] | None:
    return store.get_record(RUN_RECORD, run_id)


def record_from_json(store, path: str | Path) -> list[str]:
    """Import run records a benchmark wrote: one JSON object, a list of them, or JSON lines.

    Each needs "kind", "name" and "metrics" (a dict); "config", "timings", "data_fingerprint",
    provenance ("created_at" ISO time, "code", "machine") and anything else (kept under "extra")
    are optional. Returns the new run ids; a bad record raises
    ValueError naming the file, the record (line) and the field."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    records: list[tuple[str, Any]]
    try:
        parsed = json.loads(text)
        records = [(f"record {i + 1}", r) for i, r in enumerate(parsed)] if isinstance(parsed, list) else [("record 1", parsed)]
    except json.JSONDecodeError:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {number}: not valid JSON ({error.msg})") from error
    known = {"kind", "name", "config", "metrics", "timings", "data_fingerprint", "extra", "created_at", "code", "machine"}
    for where, record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{path}: {where}: expected a JSON object, got {type(record).__name__}")
        for field in REQUIRED_JSON_FIELDS:
            if field not in record:
                raise ValueError(f"{path}: {where}: missing field {field!r}")
        if not isinstance(record["metrics"], dict):
            raise ValueError(f"{path}: {where}: field 'metrics' must be an object")
    ids = []
    for _, record in records:
        extra = dict(record.get("extra") or {})
        extra.update({k: v for k, v in record.items() if k not in known})
        extra["imported_from"] = str(path)
        ids.append(record_run(store, str(record["kind"]), str(record["name"]), record.get("config") or {}, record["metrics"],
                              record.get("timings") or {}, record.get("data_fingerprint"), extra,
                              created_at=record.get("created_at"),
                              # a record without its own provenance did not come from this checkout
                              code=record.get("code") or {"git_describe": "not recorded"}, machine=record.get("machine")))
    return ids
