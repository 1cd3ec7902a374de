"""The experiment registry on a real SQLite store: record, list, import, fingerprint."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from shoprec.data.store import open_store
from shoprec.evaluation.registry import fingerprint, get_run, list_runs, record_from_json, record_run


@pytest.fixture
def store(tmp_path):
    with open_store("sqlite:///" + str(tmp_path / "registry.db")) as s:
        yield s


def test_record_and_list_runs(store):
    first = record_run(store, "seqrec", "sasrec", {"dim": 64}, {"ndcg10": np.float32(0.25), "hr10": 0.4},
                       {"fit_s": 12.5}, "abc123", extra={"segments": {"cold": {"ndcg10": 0.1}}})
    second = record_run(store, "abtest", "aa", {"runs": np.int64(200)}, {"fpr": 0.05}, None, None)
    assert first != second
    runs = list_runs(store)
    assert [r["run_id"] for r in runs] == [first, second]
    assert [r["run_id"] for r in list_runs(store, kind="abtest")] == [second]
    run = get_run(store, first)
    assert run["metrics"]["ndcg10"] == pytest.approx(0.25)
    assert run["config"] == {"dim": 64}
    assert run["extra"]["segments"]["cold"]["ndcg10"] == 0.1
    assert run["code"]["package"]
    assert run["machine"]["cpu_count"] >= 1
    assert get_run(store, second)["config"]["runs"] == 200
    with pytest.raises(ValueError, match="kind"):
        record_run(store, "", "x", {}, {}, None, None)


def test_fingerprint_tracks_content_dtype_and_tables():
    a = np.arange(10, dtype=np.int32)
    assert fingerprint(a) == fingerprint(np.arange(10, dtype=np.int32))
    assert fingerprint(a) != fingerprint(np.arange(10, dtype=np.int64))
    b = a.copy()
    b[3] = 99
    assert fingerprint(a) != fingerprint(b)
    table = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    assert fingerprint(table) == fingerprint(pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}))
    assert fingerprint(table) != fingerprint(pa.table({"x": [1, 2, 3], "y": ["a", "b", "d"]}))
    assert fingerprint([a, table]) != fingerprint([b, table])
    assert fingerprint({"k": 1}) == fingerprint({"k": 1}) != fingerprint({"k": 2})


def test_record_from_json_imports_objects_lists_and_lines(store, tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"kind": "search", "name": "bm25", "metrics": {"ndcg10": 0.32}, "dataset": "homedepot"}))
    lines = tmp_path / "many.jsonl"
    lines.write_text(json.dumps({"kind": "search", "name": "hybrid", "metrics": {"ndcg10": 0.36}}) + "\n\n"
                     + json.dumps({"kind": "search", "name": "e5", "metrics": {"ndcg10": 0.33}}) + "\n")
    ids = record_from_json(store, one) + record_from_json(store, lines)
    assert len(ids) == 3
    runs = list_runs(store, "search")
    assert [r["name"] for r in runs] == ["bm25", "hybrid", "e5"]
    assert runs[0]["extra"]["dataset"] == "homedepot"


def test_record_from_json_names_the_bad_record(store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"kind": "a", "name": "b", "metrics": {}}) + "\n" + json.dumps({"kind": "a", "name": "c"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: line 2: missing field 'metrics'"):
        record_from_json(store, bad)
    assert list_runs(store) == []  # nothing half-imported
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"kind": "a"}\n{oops\n')
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        record_from_json(store, broken)


def test_benchmark_records_import_with_their_provenance(store, tmp_path):
    from shoprec.bench.blend import registry_record
    from shoprec.bench.seqrec import registry_records
    from shoprec.evaluation.registry import provenance

    blend = {"dataset": "Beauty", "best_single": {"name": "sasrec", "ndcg10": 0.05}, "blend_ndcg10": 0.06,
             "blend": {"hr10": 0.1, "ndcg10": 0.06}, "singles": {"sasrec": {"ndcg10": 0.05}},
             "cold_item_hr20": {"content": 0.04, "blend": 0.03}, "train_s": {"sasrec": 100.0}, "wall_s": 500.0,
             "diversity": [{"lambda": 1.0, "ndcg10": 0.06, "ild": 0.5, "coverage": 0.6},
                           {"lambda": 0.9, "ndcg10": 0.058, "ild": 0.6, "coverage": 0.65}]}
    seqrec = {"dataset": "Beauty", "metrics": {"pop": {"ndcg10": 0.006, "hr10": 0.014, "train_s": 0.7},
                                               "sasrec": {"ndcg10": 0.054, "hr10": 0.09, "train_s": 300.0}},
              "configs": {"sasrec": {"dim": 64}}, "finished_at": "2026-11-20T10:00:00+00:00", "machine": {"cpu_count": 2}}
    path = tmp_path / "runs.jsonl"
    records = [{**registry_record({"seed": 0}, blend), **provenance()}] + registry_records(seqrec)
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert len(record_from_json(store, path)) == 3
    (blend_run,) = list_runs(store, "bench_blend")
    assert blend_run["metrics"]["blend_gain_pct"] == pytest.approx(20.0)
    assert blend_run["metrics"]["cold_hr20_content"] == 0.04
    assert blend_run["code"]["package"]  # written with provenance
    assert blend_run["extra"]["curves"]
    seq = {r["name"]: r for r in list_runs(store, "bench_seqrec")}
    assert set(seq) == {"Beauty/pop", "Beauty/sasrec"}
    assert seq["Beauty/sasrec"]["config"]["dim"] == 64 and seq["Beauty/sasrec"]["timings"]["train_s"] == 300.0
    assert seq["Beauty/sasrec"]["created_at"].startswith("2026-11-20T10:00")
    assert seq["Beauty/pop"]["code"] == {"git_describe": "not recorded"}  # no provenance in the record
