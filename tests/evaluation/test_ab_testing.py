"""A/B testing: assignment, power, calibration (A/A), peeking guards, SRM, exposure logging."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from shoprec.data.schemas import Event
from shoprec.data.store import open_store
from shoprec.evaluation import abtest as ab


def experiment(**kwargs) -> ab.Experiment:
    base = {"id": "exp-home-feed", "arms": [ab.Arm(name="control", share=0.5), ab.Arm(name="treatment", share=0.5)],
            "horizon_users": 1000}
    base.update(kwargs)
    return ab.Experiment(**base)


def test_experiment_validation():
    with pytest.raises(ValidationError, match="sum to 1"):
        experiment(arms=[ab.Arm(name="a", share=0.5), ab.Arm(name="b", share=0.4)])
    with pytest.raises(ValidationError, match="unique"):
        experiment(arms=[ab.Arm(name="a", share=0.5), ab.Arm(name="a", share=0.5)])
    with pytest.raises(ValidationError, match="horizon_users"):
        experiment(horizon_users=None)
    assert experiment().salt == "exp-home-feed"


def test_assignment_is_deterministic_with_stable_shares():
    exp = experiment(arms=[ab.Arm(name="a", share=0.2), ab.Arm(name="b", share=0.3), ab.Arm(name="c", share=0.5)])
    users = [f"user-{i}" for i in range(20000)]
    arms = ab.assign_many(users, exp)
    assert all(ab.assign(u, exp) == arm for u, arm in zip(users[:200], arms[:200]))
    assert np.array_equal(arms, ab.assign_many(users, exp))
    for name, share in (("a", 0.2), ("b", 0.3), ("c", 0.5)):
        assert abs(np.mean(arms == name) - share) < 0.015
    # A new salt re-randomises: the agreement between two salts is what chance predicts (0.38 here).
    other = ab.assign_many(users, exp.model_copy(update={"salt": "another"}))
    assert abs(np.mean(arms == other) - (0.2**2 + 0.3**2 + 0.5**2)) < 0.02


def test_sample_size_matches_the_textbook_formula():
    n = ab.sample_size(0.10, 0.02, alpha=0.05, power=0.8)
    p_bar = 0.11
    expected = (1.959964 * math.sqrt(2 * p_bar * (1 - p_bar)) + 0.841621 * math.sqrt(0.1 * 0.9 + 0.12 * 0.88)) ** 2 / 0.02**2
    assert n == math.ceil(expected)
    assert ab.sample_size(0.10, 0.01) > n  # smaller effects need more users
    with pytest.raises(ValueError):
        ab.sample_size(0.99, 0.05)


def test_two_proportion_ztest_hand_computed():
    z, p = ab.two_proportion_ztest(100, 1000, 130, 1000)
    pooled = 230 / 2000
    expected_z = 0.03 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert z == pytest.approx(expected_z)
    assert p == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(expected_z / math.sqrt(2)))))


def test_aa_false_positive_rate_is_close_to_alpha():
    rng = np.random.default_rng(7)
    n_tests, n = 1000, 2000
    a, b = rng.binomial(n, 0.08, n_tests), rng.binomial(n, 0.08, n_tests)
    rate = np.mean([ab.two_proportion_ztest(x, n, y, n)[1] < 0.05 for x, y in zip(a, b)])
    assert 0.03 <= rate <= 0.075  # 5% +- ~3.5 standard errors of 1000 tests


def test_bootstrap_revenue_test_calibrated_and_powerful():
    rng = np.random.default_rng(3)
    false_positives = 0
    for trial in range(60):
        a = rng.exponential(10, 300) * (rng.random(300) < 0.1)
        b = rng.exponential(10, 300) * (rng.random(300) < 0.1)
        false_positives += ab.bootstrap_mean_difference(a, b, n_resamples=300, seed=trial)["p_value"] < 0.05
    assert false_positives <= 9  # expected 3; P(>= 10 | 5%) < 0.1%
    a = rng.exponential(10, 2000) * (rng.random(2000) < 0.1)
    b = rng.exponential(10, 2000) * (rng.random(2000) < 0.2)
    result = ab.bootstrap_mean_difference(a, b, n_resamples=500)
    assert result["p_value"] < 0.01 and result["low"] > 0 and result["difference"] == pytest.approx(b.mean() - a.mean())


def test_srm_check_detects_mismatch():
    assert not ab.srm_check([5000, 5050], [0.5, 0.5])["mismatch"]
    flagged = ab.srm_check({"a": 5000, "b": 5500}, [0.5, 0.5])
    assert flagged["mismatch"] and flagged["chi2"] == pytest.approx(2 * 250**2 / 5250)
    assert not ab.srm_check([2000, 8000], [0.2, 0.8])["mismatch"]


def test_sequential_msprt_controls_peeking_where_repeated_ztests_do_not():
    rng = np.random.default_rng(11)
    n_sims, looks, per_look = 300, 20, 200
    sa = rng.binomial(per_look, 0.1, (n_sims, looks)).cumsum(axis=1)
    sb = rng.binomial(per_look, 0.1, (n_sims, looks)).cumsum(axis=1)
    n = np.arange(1, looks + 1) * per_look
    naive = np.mean([any(ab.two_proportion_ztest(sa[s, t], n[t], sb[s, t], n[t])[1] < 0.05 for t in range(looks)) for s in range(n_sims)])
    always_valid = np.mean([ab.always_valid_p_values(sa[s], n, sb[s], n, tau=0.02).min() < 0.05 for s in range(n_sims)])
    assert naive > 0.12  # peeking at a plain z-test 20 times inflates false positives well past 5%
    assert always_valid <= 0.06
    # ... and mSPRT still finds a real effect.
    sb_effect = rng.binomial(per_look, 0.14, (50, looks)).cumsum(axis=1)
    found = np.mean([ab.always_valid_p_values(sa[s], n, sb_effect[s], n).min() < 0.05 for s in range(50)])
    assert found > 0.8


def simulated_users(rng, n: int, conversion: dict[str, float], exp: ab.Experiment):
    arms = ab.assign_many([f"u{i}" for i in range(n)], exp).astype(str)
    rates = np.vectorize(conversion.get)(arms)
    purchases = (rng.random(n) < rates).astype(int)
    impressions = rng.integers(1, 20, n)
    clicks = rng.binomial(impressions, 0.1)
    revenue = purchases * rng.exponential(30, n)
    return arms, impressions, clicks, purchases, revenue


def test_analyze_waits_for_the_horizon_then_finds_the_better_arm():
    exp = experiment(horizon_users=6000)
    rng = np.random.default_rng(5)
    arms, imp, clk, pur, rev = simulated_users(rng, 8000, {"control": 0.05, "treatment": 0.08}, exp)
    early = ab.analyze(arms[:3000], imp[:3000], clk[:3000], pur[:3000], rev[:3000], exp, n_bootstrap=200)
    assert early["comparisons"]["treatment"]["verdict"] == "wait"
    assert "conversion_p" not in early["comparisons"]["treatment"]
    final = ab.analyze(arms, imp, clk, pur, rev, exp, n_bootstrap=200)
    comparison = final["comparisons"]["treatment"]
    assert comparison["verdict"] == "treatment better" and comparison["conversion_p"] < 0.01
    control = final["arms"]["control"]
    assert control["conversion_ci"][0] < 0.05 < control["conversion_ci"][1]
    assert control["ctr_ci"][0] < control["ctr"] < control["ctr_ci"][1]
    assert final["arms"]["treatment"]["revenue_per_user"] > control["revenue_per_user"]
    assert not final["srm"]["mismatch"]


def test_analyze_flags_sample_ratio_mismatch():
    exp = experiment(horizon_users=1000)
    rng = np.random.default_rng(2)
    arms, imp, clk, pur, rev = simulated_users(rng, 10000, {"control": 0.05, "treatment": 0.08}, exp)
    # A logging bug loses 15% of the treatment users.
    keep = (arms == "control") | (rng.random(len(arms)) > 0.15)
    result = ab.analyze(arms[keep], imp[keep], clk[keep], pur[keep], rev[keep], exp, n_bootstrap=100)
    assert result["srm"]["mismatch"]
    assert result["comparisons"]["treatment"]["verdict"] == "invalid: sample-ratio mismatch"
    with pytest.raises(ValueError, match="unknown arms"):
        ab.analyze(np.array(["x"]), [1], [0], [0], [0.0], exp)


def test_experiment_records_exposure_logging_and_outcomes(tmp_path):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    exp = experiment(sequential=True, horizon_users=None, start=start)
    with open_store("sqlite:///" + str(tmp_path / "ab.db")) as store:
        ab.save_experiment(store, exp)
        assert ab.load_experiment(store, exp.id) == exp
        assert [e.id for e in ab.list_experiments(store)] == [exp.id]
        shown = {}
        for i in range(6):
            user = f"u{i}"
            shown[user] = ab.log_exposure(store, exp, user, ["p1", "p2", "p3"], timestamp=start + timedelta(minutes=i), request_id=f"r{i}")
        # Logging the same request twice is idempotent; an exposure before the start does not count.
        ab.log_exposure(store, exp, "u0", ["p1", "p2", "p3"], timestamp=start, request_id="r0")
        ab.log_exposure(store, exp, "early", ["p1"], timestamp=start - timedelta(days=2), request_id="r-early")
        store.add_events([
            Event(event_id="c-before", user_id="u1", item_id="p1", type="click", timestamp=start - timedelta(days=1)),
            Event(event_id="c1", user_id="u1", item_id="p1", type="click", timestamp=start + timedelta(hours=1)),
            Event(event_id="c2", user_id="u1", item_id="p2", type="click", timestamp=start + timedelta(hours=1)),
            Event(event_id="b1", user_id="u1", item_id="p2", type="purchase", price=20.0, quantity=2, timestamp=start + timedelta(hours=2)),
            Event(event_id="x9", user_id="stranger", item_id="p2", type="purchase", price=5.0, timestamp=start + timedelta(hours=2)),
        ])
        outcomes = ab.outcomes_from_events(store.read_events(), exp)
    assert outcomes["user_id"].tolist() == [f"u{i}" for i in range(6)]
    assert outcomes["arm"].tolist() == [shown[f"u{i}"] for i in range(6)]
    assert outcomes["impressions"].tolist() == [3] * 6
    assert outcomes["clicks"].tolist() == [0, 2, 0, 0, 0, 0]  # the click before exposure does not count
    assert outcomes["revenue"].tolist() == [0, 40.0, 0, 0, 0, 0]
    result = ab.analyze(outcomes["arm"], outcomes["impressions"], outcomes["clicks"], outcomes["purchases"], outcomes["revenue"], exp,
                        n_bootstrap=50)
    assert result["users"] == 6
    assert "primary_p_always_valid" in result["comparisons"]["treatment"]


def test_click_through_primary_metric_and_sequential_look_history():
    exp = experiment(horizon_users=None, sequential=True, primary_metric="click_through", msprt_tau=0.05)
    rng = np.random.default_rng(8)
    n = 4000
    arms = ab.assign_many([f"v{i}" for i in range(n)], exp).astype(str)
    # Treatment lifts clicks (0.30 -> 0.36) but not purchases.
    clicks = (rng.random(n) < np.where(arms == "treatment", 0.36, 0.30)).astype(int)
    purchases = (rng.random(n) < 0.05).astype(int)
    looks, verdicts = [], []
    for end in (1000, 2000, 3000, 4000):
        a = arms[:end]
        result = ab.analyze(a, np.ones(end), clicks[:end], purchases[:end], purchases[:end] * 10.0, exp, n_bootstrap=50, look_history=looks)
        comparison = result["comparisons"]["treatment"]
        verdicts.append(comparison["verdict"])
        assert comparison["primary_metric"] == "click_through"
        assert comparison["primary_p"] == comparison["click_through_p"]
        assert comparison["primary_p_always_valid"] >= comparison["primary_p"]  # the price of peeking freely
        looks.append({arm: (result["arms"][arm]["click_throughs"], result["arms"][arm]["users"]) for arm in ("control", "treatment")})
    assert verdicts[-1] == "treatment better"
    assert result["arms"]["treatment"]["click_through"] > result["arms"]["control"]["click_through"]
