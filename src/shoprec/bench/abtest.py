"""`shoprec bench abtest`: A/A calibration, A/B power, interleaving and a bandit on the demo-shop simulator.

The demo shop knows each shopper's true utility for every product and simulates a session on any
ranked list (position-biased examination, clicks, purchases). Each simulated visitor is a shop
user drawn at random with one session; a session shows the top k of `--candidates` random
products (the retrieval stage), ordered by one ranker:
- "utility": true utility plus Gaussian noise (sd 0.5): the clearly better ranker;
- "utility_mid" / "utility_noisy": true utility plus noise sd 1.0 / 2.0; "popularity": the real
  `Popularity` model fitted on the shop's events; "random".

Checks: (1) A/A false-positive rate over `--aa-runs` tests (popularity vs itself); (2) utility vs
popularity: sessions an A/B test and team-draft interleaving need to detect the better ranker in
80% of `--repeats` simulated tests (planned from a pilot by a power formula, then measured at
1, 1.5, 2, 3 x the planned size until reached), then one fixed-horizon A/B test (2x the
planned size, with a refused peek half way) and whether its verdict matches the simulator's
expected click-through; (3) the same sessions-needed question for a subtle difference (utility
vs utility_mid); (4) Thompson sampling over four rankers, cumulative regret against the best
single ranker in hindsight (from each ranker's expected click-through for each visitor), vs a
uniform split.
The primary metric is click-through (share of sessions with at least one click).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

PRIMARY_ALPHA = 0.05
POWER = 0.8
# Rankers that order by true utility plus Gaussian noise of this standard deviation.
UTILITY_NOISE = {"utility": 0.5, "utility_mid": 1.0, "utility_noisy": 2.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aa-runs", type=int, default=200, help="number of A/A tests")
    parser.add_argument("--aa-users", type=int, default=1000, help="visitors per A/A test")
    parser.add_argument("--products", type=int, default=5000, help="demo shop size")
    parser.add_argument("--users", type=int, default=2000, help="demo shop shoppers")
    parser.add_argument("--shop-seed", type=int, default=42)
    parser.add_argument("--candidates", type=int, default=200, help="random candidates per session")
    parser.add_argument("--k", type=int, default=10, help="items shown per session")
    parser.add_argument("--pilot", type=int, default=3000, help="pilot sessions per A/B arm and for interleaving")
    parser.add_argument("--repeats", type=int, default=20, help="simulated tests per size when measuring the sessions needed")
    parser.add_argument("--bandit-rounds", type=int, default=4000)
    parser.add_argument("--plot", default=None, help="save the bandit's cumulative regret plot (PNG) here")
    parser.add_argument("--store", default=None, help="record the run in this store's experiment registry")
    parser.add_argument("--json", default=None, help="also write the run record as JSON here")


class Simulation:
    """The demo shop plus the rankers under test."""

    def __init__(self, shop, candidates: int, k: int):
        from shoprec.recommend.popularity import Popularity

        self.shop = shop
        self.n_items = len(shop.products)
        self.n_users = len(shop.users)
        self.item_ids = np.array(shop.item_ids, dtype=object)
        self.candidates = min(candidates, self.n_items)
        self.k = k
        self.popularity = Popularity().fit(shop.to_interactions()).popularity.astype(np.float64)
        from shoprec.data.demo.shop import EXAMINATION_DECAY

        self.examination = 1.0 / (1.0 + np.arange(k)) ** EXAMINATION_DECAY

    def draw(self, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
        """(user index, candidate item indices (C,), their true utilities (C,)) of one visitor."""
        user = int(rng.integers(self.n_users))
        cands = rng.choice(self.n_items, self.candidates, replace=False)
        return user, cands, self.shop.utility(user, cands)

    def rank(self, ranker: str, cands: np.ndarray, utility: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Positions into `cands` of the top k, best first."""
        if ranker in UTILITY_NOISE:
            scores = utility + rng.normal(0, UTILITY_NOISE[ranker], len(cands))
        elif ranker == "popularity":
            scores = self.popularity[cands] + rng.random(len(cands)) * 1e-6  # random tie-break
        elif ranker == "random":
            scores = rng.random(len(cands))
        else:
            raise ValueError(f"unknown ranker {ranker!r}")
        return np.argsort(-scores)[:self.k]

    def expected_click_through(self, utility_in_order: np.ndarray) -> float:
        """P(at least one click) for a list: 1 - prod(1 - examine_k * sigmoid(u_k)) (the purchase
        cascade acts only after a click, so it does not change this probability)."""
        p = self.examination[:len(utility_in_order)] / (1.0 + np.exp(-utility_in_order))
        return float(1.0 - np.prod(1.0 - p))

    def session(self, user: int, items: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        return self.shop.simulate_session(user, list(self.item_ids[items]), rng)

    def ab_sessions(self, experiment, n: int, rankers: dict[str, str], rng: np.random.Generator, id_prefix: str):
        """Simulate n visitors in an experiment: (arms, impressions, clicks, purchases, revenue, expected)."""
        from shoprec.evaluation.abtest import assign_many

        arms = assign_many([f"{id_prefix}-{j}" for j in range(n)], experiment).astype(str)
        clicks, purchases, revenue, expected = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        for j in range(n):
            user, cands, utility = self.draw(rng)
            order = self.rank(rankers[arms[j]], cands, utility, rng)
            outcome = self.session(user, cands[order], rng)
            clicks[j], purchases[j], revenue[j] = len(outcome["clicks"]), len(outcome["purchases"]), outcome["revenue"]
            expected[j] = self.expected_click_through(utility[order])
        return arms, np.full(n, self.k), clicks, purchases, revenue, expected


def interleaving_needed(q: float, decisive_share: float, alpha: float = PRIMARY_ALPHA, power: float = POWER) -> int:
    """Sessions for a two-sided sign test to detect a win share q (of decisive sessions) at `power`."""
    from scipy.stats import norm

    if decisive_share <= 0 or q == 0.5:
        return 10**9
    n_decisive = ((norm.ppf(1 - alpha / 2) * 0.5 + norm.ppf(power) * math.sqrt(q * (1 - q))) / (q - 0.5)) ** 2
    return int(math.ceil(n_decisive / decisive_share))


def run_interleaving(sim: Simulation, n: int, rng: np.random.Generator, a: str = "popularity", b: str = "utility"):
    from shoprec.evaluation.interleaving import decide, session_winner, team_draft

    outcomes = np.zeros(n, dtype=np.int64)
    for j in range(n):
        user, cands, utility = sim.draw(rng)
        ranking_a, ranking_b = cands[sim.rank(a, cands, utility, rng)], cands[sim.rank(b, cands, utility, rng)]
        items, teams = team_draft(list(ranking_a), list(ranking_b), sim.k, rng)
        outcome = sim.session(user, np.asarray(items), rng)
        outcomes[j] = session_winner(teams, outcome["clicks"])
    return decide(outcomes, PRIMARY_ALPHA), outcomes


def run_bandit(sim: Simulation, rankers: list[str], rounds: int, policy, rng: np.random.Generator):
    """Play `policy` over the rankers for `rounds` sessions (reward: at least one click).

    Regret is against the best single ranker in hindsight (highest mean expected click-through
    over the same sessions), from each ranker's expected click-through for that visitor."""
    from shoprec.evaluation.bandit import RegretTracker

    choices, rewards = np.zeros(rounds, np.int64), np.zeros(rounds)
    expected = np.zeros((rounds, len(rankers)))
    for t in range(rounds):
        user, cands, utility = sim.draw(rng)
        orders = [sim.rank(r, cands, utility, rng) for r in rankers]
        expected[t] = [sim.expected_click_through(utility[o]) for o in orders]
        arm = policy.select()
        outcome = sim.session(user, cands[orders[arm]], rng)
        rewards[t] = float(len(outcome["clicks"]) > 0)
        policy.update(arm, rewards[t])
        choices[t] = arm
    best_arm = int(np.argmax(expected.mean(axis=0)))
    tracker = RegretTracker()
    for t in range(rounds):
        tracker.record(int(choices[t]), float(rewards[t]), expected[t], best_arm=best_arm)
    return tracker


SIZE_STEPS = (1.0, 1.5, 2.0, 3.0)  # multiples of the planned size tried until 80% of repeated tests detect


def empirical_size(planned: int, detects, repeats: int, cap: int) -> tuple[int, list[dict[str, float]]]:
    """The smallest of planned x SIZE_STEPS at which at least 80% of `repeats` tests detect the better
    ranker (`detects(size) -> bool` runs one test); the largest size tried when none does."""
    tried = []
    for step in SIZE_STEPS:
        size = int(min(max(math.ceil(planned * step), 2), cap))
        share = sum(detects(size) for _ in range(repeats)) / repeats
        tried.append({"sessions": size, "detected": share})
        if share >= POWER or size == cap:
            break
    reached = [t["sessions"] for t in tried if t["detected"] >= POWER]
    return (reached[0] if reached else tried[-1]["sessions"]), tried


def sessions_needed(sim: Simulation, worse: str, better: str, args: argparse.Namespace, rng: np.random.Generator,
                    experiment) -> dict[str, Any]:
    """Sessions an A/B test and team-draft interleaving need to detect `better` over `worse` at 80%
    power (alpha 0.05): planned from a pilot (power formula), then measured: the smallest of
    planned x (1, 1.5, 2, 3) at which at least 80% of `args.repeats` simulated tests detect it."""
    from shoprec.evaluation.abtest import analyze, sample_size

    rankers = {"control": worse, "treatment": better}
    pilot_exp = experiment(f"pilot-{worse}-{better}-{args.seed}", 2 * args.pilot)
    arms, _, clk, _, _, expected = sim.ab_sessions(pilot_exp, 2 * args.pilot, rankers, rng, f"pilot-{worse}")
    p_worse, p_better = float((clk[arms == "control"] > 0).mean()), float((clk[arms == "treatment"] > 0).mean())
    expected_worse, expected_better = float(expected[arms == "control"].mean()), float(expected[arms == "treatment"].mean())
    lift = p_better - p_worse
    ab_planned = 2 * sample_size(p_worse, lift, PRIMARY_ALPHA, POWER) if lift > 0 else 10**6
    counter = iter(range(10**9))

    def ab_detects(size: int) -> bool:
        exp_r = experiment(f"power-{worse}-{better}-{args.seed}-{next(counter)}", size)
        result = analyze(*sim.ab_sessions(exp_r, size, rankers, rng, exp_r.id)[:5], exp_r, n_bootstrap=20)
        return result["comparisons"]["treatment"]["verdict"] == "treatment better"

    ab_measured, ab_tried = empirical_size(ab_planned, ab_detects, args.repeats, cap=40000)

    pilot, outcomes = run_interleaving(sim, args.pilot, rng, a=worse, b=better)
    decisive = pilot.wins_a + pilot.wins_b
    win_share = pilot.wins_b / decisive if decisive else 0.5
    il_planned = interleaving_needed(win_share, decisive / len(outcomes))
    il_measured, il_tried = empirical_size(il_planned, lambda size: run_interleaving(sim, size, rng, a=worse, b=better)[0].winner == "B",
                                           args.repeats, cap=40000)

    def tried_text(tried: list[dict[str, float]]) -> str:
        return ", ".join(f"{t['sessions']}: {t['detected']:.0%}" for t in tried)

    print(f"{better} vs {worse}: pilot click-through {p_better:.4f} vs {p_worse:.4f} (simulator's expected "
          f"{expected_better:.4f} vs {expected_worse:.4f}); interleaving pilot wins {pilot.wins_b} vs {pilot.wins_a}, "
          f"{pilot.ties} ties")
    print(f"{better} vs {worse}: A/B planned {ab_planned} sessions, detected in [{tried_text(ab_tried)}] of {args.repeats} tests "
          f"-> needs {ab_measured}; interleaving planned {il_planned}, detected in [{tried_text(il_tried)}] -> needs {il_measured}; "
          f"interleaving needs {ab_measured / max(il_measured, 1):.1f}x fewer sessions")
    return {"worse": worse, "better": better, "click_through_worse": p_worse, "click_through_better": p_better,
            "expected_worse": expected_worse, "expected_better": expected_better,
            "ab_sessions_planned": int(ab_planned), "ab_sessions_needed": int(ab_measured), "ab_power_curve": ab_tried,
            "interleaving_sessions_planned": int(il_planned), "interleaving_sessions_needed": int(il_measured),
            "interleaving_power_curve": il_tried, "interleaving_win_share": win_share}


def run(args: argparse.Namespace) -> int:
    from shoprec.data.demo import generate_demo
    from shoprec.evaluation.abtest import Arm, Experiment, analyze
    from shoprec.evaluation.bandit import ThompsonSampling, UniformPolicy

    started = time.perf_counter()
    timings: dict[str, float] = {}
    rng = np.random.default_rng(args.seed)
    shop = generate_demo(n_products=args.products, n_users=args.users, seed=args.shop_seed)
    sim = Simulation(shop, args.candidates, args.k)
    timings["shop_s"] = time.perf_counter() - started
    print(f"demo shop: {sim.n_items} products, {sim.n_users} shoppers, {len(shop)} events (seed {args.shop_seed}); "
          f"{sim.candidates} random candidates per session, top {sim.k} shown; primary metric: click-through")

    def experiment(exp_id: str, horizon: int) -> Experiment:
        return Experiment(id=exp_id, arms=[Arm(name="control", share=0.5), Arm(name="treatment", share=0.5)],
                          horizon_users=horizon, primary_metric="click_through", alpha=PRIMARY_ALPHA)

    # (1) A/A: the same ranker in both arms; every "significant" verdict is a false positive.
    t0 = time.perf_counter()
    false_positives, srm_flags, aa_p_values = 0, 0, []
    same = {"control": "popularity", "treatment": "popularity"}
    for run_index in range(args.aa_runs):
        exp = experiment(f"aa-{args.seed}-{run_index}", args.aa_users)
        arms, imp, clk, pur, rev, _ = sim.ab_sessions(exp, args.aa_users, same, rng, f"aa{run_index}")
        result = analyze(arms, imp, clk, pur, rev, exp, n_bootstrap=100, seed=run_index)
        comparison = result["comparisons"]["treatment"]
        aa_p_values.append(comparison.get("primary_p", 1.0))
        false_positives += comparison["verdict"] in ("treatment better", "control better")
        srm_flags += result["srm"]["mismatch"]
    aa_rate = false_positives / max(args.aa_runs, 1)
    aa_se = math.sqrt(0.05 * 0.95 / max(args.aa_runs, 1))
    timings["aa_s"] = time.perf_counter() - t0
    print(f"A/A: {args.aa_runs} tests x {args.aa_users} visitors, popularity vs popularity: false-positive rate "
          f"{aa_rate:.3f} (nominal 0.05, +-{2 * aa_se:.3f} at 2 s.e.); SRM flags {srm_flags}")

    # (2) A/B test of the better ranker against popularity, planned from a pilot.
    t0 = time.perf_counter()
    main_pair = sessions_needed(sim, "popularity", "utility", args, rng, experiment)
    ab_needed, il_needed = main_pair["ab_sessions_needed"], main_pair["interleaving_sessions_needed"]
    rankers = {"control": "popularity", "treatment": "utility"}
    # One fixed-horizon A/B test, planned at twice the 80%-power size; first a peek at half way.
    horizon = int(min(max(2 * main_pair["ab_sessions_planned"], ab_needed, 200), 40000))
    exp = experiment(f"ab-{args.seed}", horizon)
    arms, imp, clk, pur, rev, expected = sim.ab_sessions(exp, horizon, rankers, rng, "ab")
    half = horizon // 2
    peek = analyze(arms[:half], imp[:half], clk[:half], pur[:half], rev[:half], exp, n_bootstrap=200)
    final = analyze(arms, imp, clk, pur, rev, exp, n_bootstrap=500)
    comparison = final["comparisons"]["treatment"]
    ab_significant = comparison["verdict"] in ("treatment better", "control better")
    predicted_better = "treatment" if main_pair["expected_better"] > main_pair["expected_worse"] else "control"
    ab_direction_correct = comparison["verdict"] == f"{predicted_better} better"
    print(f"A/B test utility vs popularity, {horizon} visitors (fixed horizon, >= 2x the planned size): verdict "
          f"'{comparison['verdict']}', click-through p = {comparison['click_through_p']:.2e}, conversion p = "
          f"{comparison['conversion_p']:.2e}, revenue/user delta {comparison['revenue_difference']:+.2f} (bootstrap p "
          f"{comparison['revenue_bootstrap']['p_value']:.3f}); simulator predicts {predicted_better} better; "
          f"peek at {half} visitors -> '{peek['comparisons']['treatment']['verdict']}'; SRM p = {final['srm']['p_value']:.3f}")
    timings["ab_s"] = time.perf_counter() - t0

    # (3) The same question for a subtle difference, where interleaving's sensitivity matters most.
    t0 = time.perf_counter()
    subtle_pair = sessions_needed(sim, "utility_mid", "utility", args, rng, experiment)
    timings["subtle_s"] = time.perf_counter() - t0

    # (4) Bandit over four rankers.
    t0 = time.perf_counter()
    variants = ["utility", "utility_mid", "utility_noisy", "popularity"]
    ts = run_bandit(sim, variants, args.bandit_rounds, ThompsonSampling(len(variants), seed=args.seed), rng)
    uniform = run_bandit(sim, variants, args.bandit_rounds, UniformPolicy(len(variants), seed=args.seed), rng)
    timings["bandit_s"] = time.perf_counter() - t0
    counts = ts.arm_counts(len(variants))
    print(f"bandit: Thompson sampling over {variants}, {args.bandit_rounds} sessions: cumulative regret {ts.total:.1f} "
          f"(uniform {uniform.total:.1f}); pulls {dict(zip(variants, counts.tolist()))}; "
          f"regret in the last quarter {ts.cumulative[-1] - ts.cumulative[3 * len(ts.cumulative) // 4 - 1]:.1f}")
    if args.plot:
        _plot_regret(args.plot, ts.cumulative, uniform.cumulative)
        print(f"wrote {args.plot}")
    timings["total_s"] = time.perf_counter() - started

    summary = {
        "aa_runs": args.aa_runs,
        "aa_false_positive_rate": aa_rate,
        "ab_significant": bool(ab_significant),
        "ab_direction_correct": bool(ab_direction_correct),
        "ab_sessions_needed": int(ab_needed),
        "interleaving_sessions_needed": int(il_needed),
        "bandit_regret": round(ts.total, 3),
    }
    metrics = dict(summary, aa_srm_flags=srm_flags, bandit_regret_uniform=uniform.total,
                   **{f"main_{k}": v for k, v in main_pair.items() if not isinstance(v, list)},
                   **{f"subtle_{k}": v for k, v in subtle_pair.items() if not isinstance(v, list)})
    step = max(1, args.bandit_rounds // 200)
    record = {
        "kind": "abtest", "name": "simulator",
        "config": {k: v for k, v in vars(args).items() if k not in ("store", "json", "plot")},
        "metrics": metrics, "timings": timings,
        "extra": {"curves": {"cumulative regret": {"x": list(range(1, args.bandit_rounds + 1, step)), "xlabel": "session",
                                                   "ylabel": "expected regret (click-through)",
                                                   "y": {"thompson": ts.cumulative[::step].tolist(), "uniform": uniform.cumulative[::step].tolist()}}},
                  "ab_final": final, "aa_p_values": [round(p, 4) for p in aa_p_values],
                  "power_curves": {pair["better"] + " vs " + pair["worse"]: {"ab": pair["ab_power_curve"], "interleaving": pair["interleaving_power_curve"]}
                                   for pair in (main_pair, subtle_pair)}},
    }
    if args.store or args.json:
        from shoprec.evaluation.registry import fingerprint, jsonable

        record["data_fingerprint"] = fingerprint({"products": args.products, "users": args.users, "shop_seed": args.shop_seed})
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(jsonable(record), handle)
        if args.store:
            from shoprec.data.store import open_store
            from shoprec.evaluation.registry import record_run

            with open_store(args.store) as store:
                run_id = record_run(store, record["kind"], record["name"], record["config"], metrics, timings,
                                    record["data_fingerprint"], record["extra"])
            print(f"recorded run {run_id} in {args.store}")
    print(f"wall time {timings['total_s']:.1f}s (2 shared cores)")
    print(json.dumps(summary))
    return 0


def _plot_regret(path: str, thompson: np.ndarray, uniform: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rounds = np.arange(1, len(thompson) + 1)
    left.plot(rounds, thompson, label="Thompson sampling")
    left.plot(rounds, uniform, label="uniform (A/B/C/D split)", linestyle="--")
    left.set_title("Exploration over four rankers on the demo shop")
    right.plot(rounds, thompson, label="Thompson sampling")
    right.set_title("Thompson sampling alone (flattening = sublinear)")
    for ax in (left, right):
        ax.set_xlabel("session")
        ax.set_ylabel("cumulative expected regret (click-through)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
