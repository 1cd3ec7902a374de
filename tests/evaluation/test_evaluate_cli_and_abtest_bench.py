"""`shoprec evaluate` on a real SQLite store and a tiny end-to-end run of `shoprec bench abtest`."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import numpy as np

from shoprec.cli import main
from shoprec.data.schemas import Event, Product
from shoprec.data.store import open_store
from shoprec.evaluation import evaluate_cli
from shoprec.evaluation.registry import list_runs


def test_evaluate_cli_fits_scores_and_records(tmp_path, capsys):
    url = "sqlite:///" + str(tmp_path / "shop.db")
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = []
    for user in range(60):
        cluster = user % 4  # users shop inside one of four 8-item clusters
        for step, item in enumerate(rng.choice(8, 6, replace=False)):
            events.append(Event(event_id=f"e{user}-{step}", user_id=f"u{user}", item_id=f"p{cluster * 8 + item}", type="view",
                                timestamp=start + timedelta(minutes=user * 10 + step)))
    with open_store(url) as store:
        store.upsert_products([Product(id=f"p{i}", title=f"product {i}") for i in range(32)])
        store.add_events(events)
    parser = argparse.ArgumentParser()
    evaluate_cli.add_arguments(parser)
    args = parser.parse_args(["--store", url, "--model", "itemknn", "--k", "5", "--record"])
    assert evaluate_cli.run(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["protocol"] == "full" and result["n_users"] == 60
    assert result["hr5"] > 0.5  # the held-out item shares its cluster with the history
    with open_store(url) as store:
        (run,) = list_runs(store, "evaluate")
    assert run["name"] == "itemknn/leave_one_out/full" and run["metrics"]["hr5"] == result["hr5"]


def test_bench_abtest_tiny_end_to_end(tmp_path, capsys):
    plot, record = tmp_path / "regret.png", tmp_path / "run.json"
    url = "sqlite:///" + str(tmp_path / "bench.db")
    code = main(["bench", "abtest", "--seed", "1", "--aa-runs", "8", "--aa-users", "150", "--products", "400", "--users", "150",
                 "--pilot", "200", "--repeats", "2", "--bandit-rounds", "300", "--plot", str(plot), "--store", url,
                 "--json", str(record)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) == {"aa_runs", "aa_false_positive_rate", "ab_significant", "ab_direction_correct",
                            "ab_sessions_needed", "interleaving_sessions_needed", "bandit_regret"}
    assert summary["aa_runs"] == 8 and 0 <= summary["aa_false_positive_rate"] <= 1
    assert summary["ab_direction_correct"]  # the utility ranker is far better; the verdict must say so
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads(record.read_text())["metrics"]
    assert metrics["bandit_regret"] < metrics["bandit_regret_uniform"]
    with open_store(url) as store:
        (run,) = list_runs(store, "abtest")
    assert run["metrics"]["ab_sessions_needed"] == summary["ab_sessions_needed"]
