"""`shoprec bench seqrec` end to end on a tiny S3-Rec-format dataset written to tmp_path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recommend"))

from mixin import planted_sequences  # noqa: E402

from shoprec.cli import main  # noqa: E402


def write_s3rec(directory: Path, name: str) -> None:
    sequences, _, attributes = planted_sequences()
    lines = [" ".join(str(v) for v in [user + 1, *(seq + 1)]) for user, seq in enumerate(sequences)]
    (directory / f"{name}.txt").write_text("\n".join(lines) + "\n")
    mapping = {str(item + 1): attributes[item].indices.tolist() for item in range(attributes.shape[0])}
    (directory / f"{name}_item2attributes.json").write_text(json.dumps(mapping))


def test_bench_prints_table_and_json_and_appends_record(tmp_path, capsys) -> None:
    write_s3rec(tmp_path, "Tiny")
    record = tmp_path / "runs.jsonl"
    args = ["bench", "seqrec", "--data", str(tmp_path), "--dataset", "Tiny", "--models", "pop,itemknn",
            "--set", "itemknn.neighbours=20", "--record", str(record)]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["dataset"] == "Tiny" and set(summary["models"]) == {"pop", "itemknn"}
    for figures in summary["models"].values():
        assert set(figures) == {"hr10", "ndcg10", "hr20", "ndcg20", "train_s", "valid_ndcg10"}
        assert 0 <= figures["ndcg10"] <= figures["hr10"] <= figures["hr20"] <= 1
    assert summary["models"]["itemknn"]["hr10"] > summary["models"]["pop"]["hr10"] + 0.3
    assert any(line.startswith("itemknn") for line in lines[:-1])  # the table row
    assert main(args) == 0  # a second run appends a record per model again
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["name"] for r in records] == ["Tiny/pop", "Tiny/itemknn"] * 2
    knn = records[1]
    assert knn["kind"] == "bench_seqrec" and knn["config"]["neighbours"] == 20
    assert knn["metrics"] == {k: v for k, v in summary["models"]["itemknn"].items() if k != "train_s"}
    assert knn["machine"]["cpu_count"] >= 1 and knn["code"]["package"]
    from shoprec.data.store import open_store
    from shoprec.evaluation.registry import list_runs, record_from_json

    with open_store(f"sqlite:///{tmp_path / 'registry.db'}") as store:
        assert len(record_from_json(store, record)) == 4  # what the benchmark writes, the registry takes
        assert {r["name"] for r in list_runs(store, "bench_seqrec")} == {"Tiny/pop", "Tiny/itemknn"}


def test_bench_skips_cleanly_without_data(tmp_path, capsys) -> None:
    assert main(["bench", "seqrec", "--data", str(tmp_path / "missing"), "--dataset", "Beauty"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_bench_rejects_overrides_for_models_not_run(tmp_path) -> None:
    write_s3rec(tmp_path, "Tiny")
    import pytest

    with pytest.raises(SystemExit, match="not being run"):
        main(["bench", "seqrec", "--data", str(tmp_path), "--dataset", "Tiny", "--models", "pop", "--set", "als.factors=8"])
