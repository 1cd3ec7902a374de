"""Online A/B tests: experiments as store records, deterministic assignment, exposure logging,
per-arm analysis with confidence intervals, and guards against peeking and broken randomisation.

- `assign(user_id, experiment)` hashes salt + user id into [0, 1) and maps it onto the arms'
  cumulative shares: the same user always gets the same arm, without storing assignments.
- `analyze(...)` reports per-arm CTR, conversion and revenue per user with CIs, compares each
  arm with the first (control) by a two-proportion z-test (conversion) and a bootstrap test
  (revenue), checks sample-ratio mismatch, and refuses a verdict before the planned sample size
  (fixed horizon) unless the experiment is sequential (mSPRT, always-valid p-values).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

EXPERIMENT_RECORD = "experiment"


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    share: float = Field(gt=0, le=1)


class Experiment(BaseModel):
    """An A/B test. The first arm is the control. Either `horizon_users` (fixed-horizon: total users
    planned, see `sample_size`) or `sequential=True` (mSPRT: may be looked at any time)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    arms: list[Arm] = Field(min_length=2)
    salt: str = ""
    start: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    horizon_users: int | None = Field(default=None, gt=0)
    sequential: bool = False
    alpha: float = Field(default=0.05, gt=0, lt=1)
    primary_metric: Literal["conversion", "click_through"] = "conversion"  # users with a purchase / with a click
    msprt_tau: float = Field(default=0.02, gt=0, description="sd of the mSPRT mixing prior on the primary-rate difference")
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> "Experiment":
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.id}: arm names must be unique, got {names}")
        total = sum(a.share for a in self.arms)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"experiment {self.id}: arm shares must sum to 1, got {total}")
        if self.horizon_users is None and not self.sequential:
            raise ValueError(f"experiment {self.id}: set horizon_users (fixed horizon) or sequential=True")
        if not self.salt:
            self.salt = self.id
        return self

    @property
    def control(self) -> str:
        return self.arms[0].name


def save_experiment(store, experiment: Experiment) -> None:
    store.put_record(EXPERIMENT_RECORD, experiment.id, experiment.model_dump(mode="json"))


def load_experiment(store, experiment_id: str) -> Experiment:
    value = store.get_record(EXPERIMENT_RECORD, experiment_id)
    if value is None:
        raise KeyError(f"no experiment {experiment_id!r} in the store")
    return Experiment.model_validate(value)


def list_experiments(store) -> list[Experiment]:
    return [Experiment.model_validate(v) for _, v in store.list_records(EXPERIMENT_RECORD)]


# -- assignment -----------------------------------------------------------------------------------

def bucket(user_id: str, salt: str) -> float:
    """Uniform position in [0, 1) from sha256(salt ":" user id) (first 8 bytes)."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(user_id: str, experiment: Experiment) -> str:
    """The arm this user sees; deterministic and stateless."""
    position = bucket(str(user_id), experiment.salt)
    edges = np.cumsum([a.share for a in experiment.arms])
    index = min(int(np.searchsorted(edges, position, side="right")), len(edges) - 1)
    return experiment.arms[index].name


def assign_many(user_ids, experiment: Experiment) -> np.ndarray:
    """(n,) arm names for many users (hashing is per id; the arm lookup is vectorised)."""
    positions = np.fromiter((bucket(str(u), experiment.salt) for u in user_ids), dtype=np.float64)
    edges = np.cumsum([a.share for a in experiment.arms])
    index = np.minimum(np.searchsorted(edges, positions, side="right"), len(edges) - 1)
    return np.array([a.name for a in experiment.arms], dtype=object)[index]


# -- exposure logging -----------------------------------------------------------------------------

def exposure_events(experiment: Experiment, user_id: str, item_ids: list[str], session_id: str = "",
                    timestamp: datetime | None = None, request_id: str | None = None) -> list:
    """Impression events for the items shown, context {"experiment", "arm", "position"}.

    Event ids derive from (experiment, request, item), so logging the same exposure twice is a no-op."""
    from shoprec.data.schemas import Event, EventType

    arm = assign(user_id, experiment)
    timestamp = timestamp or datetime.now(timezone.utc)
    request_id = request_id or uuid.uuid4().hex
    return [
        Event(event_id=f"exp:{experiment.id}:{request_id}:{position}", user_id=str(user_id), session_id=session_id,
              item_id=item_id, type=EventType.impression, timestamp=timestamp,
              context={"experiment": experiment.id, "arm": arm, "position": position})
        for position, item_id in enumerate(item_ids)
    ]


def log_exposure(store, experiment: Experiment, user_id: str, item_ids: list[str], **kwargs: Any) -> str:
    """Write the exposure events to the store; returns the arm shown."""
    events = exposure_events(experiment, user_id, item_ids, **kwargs)
    store.add_events(events)
    return events[0].context["arm"] if events else assign(user_id, experiment)


def outcomes_from_events(events, experiment: Experiment) -> dict[str, np.ndarray]:
    """Per exposed user: arm, impressions, clicks, purchases, revenue, from a store events table.

    Exposures are impression events tagged with the experiment, at or after its start; clicks and purchases count from the
    user's first exposure on (whatever page they came from). Revenue = sum(price * quantity), or
    the event value when there is no price."""
    import pyarrow.compute as pc

    import json

    tagged = events.filter(pc.and_(pc.equal(events.column("type"), "impression"),
                                   pc.match_substring(events.column("context"), experiment.id)))
    # Only the candidate exposure rows are parsed; the substring filter did the heavy lifting.
    contexts = [json.loads(c) for c in tagged.column("context").to_pylist()]
    keep = np.array([c.get("experiment") == experiment.id for c in contexts], dtype=bool)
    keep &= _seconds(tagged.column("timestamp")) >= experiment.start.timestamp()  # stray earlier exposures do not count
    exposure_users = np.array(tagged.column("user_id").to_pylist(), dtype=str)[keep]
    exposure_arms = np.array([str(c.get("arm")) for c in contexts], dtype=str)[keep] if contexts else np.array([], str)
    exposure_times = _seconds(tagged.column("timestamp"))[keep]
    users, first_index, inverse = np.unique(exposure_users, return_index=True, return_inverse=True)
    impressions = np.bincount(inverse, minlength=len(users))
    first_seen = np.full(len(users), np.inf)
    np.minimum.at(first_seen, inverse, exposure_times)
    arms = exposure_arms[first_index] if len(users) else np.array([], str)

    actions = events.filter(pc.is_in(events.column("type"), value_set=_pa_strings(["click", "purchase"])))
    action_users = np.array(actions.column("user_id").to_pylist(), dtype=str)
    if len(users):
        position = np.minimum(np.searchsorted(users, action_users), len(users) - 1)
        matched = (users[position] == action_users) & (_seconds(actions.column("timestamp")) >= first_seen[position])
    else:
        position, matched = np.zeros(len(action_users), np.int64), np.zeros(len(action_users), bool)
    kinds = np.array(actions.column("type").to_pylist(), dtype=object)
    price = np.array(actions.column("price").to_pylist(), dtype=np.float64)
    quantity = np.array(actions.column("quantity").to_pylist(), dtype=np.float64)
    value = np.array(actions.column("value").to_pylist(), dtype=np.float64)
    money = np.where(np.isnan(price), np.nan_to_num(value), price * quantity)
    is_click, is_purchase = (kinds == "click") & matched, (kinds == "purchase") & matched
    clicks = np.bincount(position[is_click], minlength=len(users))
    purchases = np.bincount(position[is_purchase], minlength=len(users))
    revenue = np.bincount(position[is_purchase], weights=money[is_purchase], minlength=len(users))
    return {"user_id": users, "arm": arms, "impressions": impressions, "clicks": clicks, "purchases": purchases, "revenue": revenue}


def _seconds(column) -> np.ndarray:
    """Epoch seconds from a float or timestamp arrow column."""
    import pyarrow as pa

    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def _pa_strings(values: list[str]):
    import pyarrow as pa

    return pa.array(values, pa.string())


# -- statistics -----------------------------------------------------------------------------------

def sample_size(p_base: float, mde: float, alpha: float = 0.05, power: float = 0.8, two_sided: bool = True) -> int:
    """Users per arm to detect an absolute lift `mde` on a base rate `p_base` (two-proportion z-test)."""
    p_test = p_base + mde
    if not (0 < p_base < 1 and 0 < p_test < 1) or mde == 0:
        raise ValueError(f"need 0 < p_base < 1, 0 < p_base + mde < 1 and mde != 0 (got {p_base}, {mde})")
    z_alpha = stats.norm.ppf(1 - alpha / 2 if two_sided else 1 - alpha)
    z_beta = stats.norm.ppf(power)
    p_bar = (p_base + p_test) / 2
    n = (z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(p_base * (1 - p_base) + p_test * (1 - p_test))) ** 2 / mde**2
    return int(math.ceil(n))


def two_proportion_ztest(successes_a: int, n_a: int, successes_b: int, n_b: int) -> tuple[float, float]:
    """(z, two-sided p) for H0: p_a == p_b, pooled variance. z > 0 when b is higher."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both groups need at least one user")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (successes_b / n_b - successes_a / n_a) / se
    return float(z), float(2 * stats.norm.sf(abs(z)))


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n == 0:
        return 0.0, 1.0
    z = stats.norm.ppf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def mean_interval(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Student-t interval for a mean."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return (float(values.mean()) if values.size else 0.0,) * 2
    half = stats.t.ppf(1 - alpha / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)


def ratio_interval(numerators: np.ndarray, denominators: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """(ratio, low, high) of sum(num) / sum(den) over users, delta-method variance (users are the
    randomisation unit, so clicks of one user are not independent draws)."""
    x, y = np.asarray(numerators, np.float64), np.asarray(denominators, np.float64)
    n = x.size
    if n == 0 or y.sum() == 0:
        return 0.0, 0.0, 0.0
    ratio = x.sum() / y.sum()
    if n < 2:
        return float(ratio), float(ratio), float(ratio)
    mean_y = y.mean()
    variance = np.var(x - ratio * y, ddof=1) / (n * mean_y**2)
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(variance)
    return float(ratio), float(ratio - half), float(ratio + half)


def bootstrap_mean_difference(a: np.ndarray, b: np.ndarray, n_resamples: int = 2000, alpha: float = 0.05,
                              seed: int = 0, chunk: int = 200) -> dict[str, float]:
    """Bootstrap mean(b) - mean(a): {"difference", "low", "high", "p_value"}.

    The p-value is two-sided from the bootstrap distribution of the difference re-centred on 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap needs values in both groups")
    rng = np.random.default_rng(seed)
    differences = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        mean_a = a[rng.integers(0, a.size, (size, a.size))].mean(axis=1)
        mean_b = b[rng.integers(0, b.size, (size, b.size))].mean(axis=1)
        differences[start:start + size] = mean_b - mean_a
    observed = b.mean() - a.mean()
    centred = differences - differences.mean()
    p_value = (np.sum(np.abs(centred) >= abs(observed)) + 1) / (n_resamples + 1)
    low, high = np.quantile(differences, [alpha / 2, 1 - alpha / 2])
    return {"difference": float(observed), "low": float(low), "high": float(high), "p_value": float(p_value)}


def srm_check(counts: dict[str, int] | list[int], shares: list[float], threshold: float = 0.001) -> dict[str, Any]:
    """Sample-ratio mismatch: chi-square of observed users per arm vs the planned shares.

    A p-value below `threshold` (strict, as SRM checks run on every look) flags broken assignment."""
    observed = np.asarray(list(counts.values()) if isinstance(counts, dict) else counts, dtype=np.float64)
    shares_arr = np.asarray(shares, dtype=np.float64)
    if observed.shape != shares_arr.shape:
        raise ValueError(f"{observed.size} arm counts but {shares_arr.size} shares")
    if observed.sum() == 0:
        return {"chi2": 0.0, "p_value": 1.0, "mismatch": False}
    chi2, p = stats.chisquare(observed, shares_arr / shares_arr.sum() * observed.sum())
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < threshold)}


def msprt_likelihood_ratio(difference: float, variance: float, tau: float) -> float:
    """Mixture SPRT statistic for a normal estimate `difference` with `variance`, mixing N(0, tau^2)
    over the true difference (Johari et al. 2017). Reject H0 when it reaches 1 / alpha."""
    if variance <= 0:
        return 1.0
    t2 = tau * tau
    return float(math.sqrt(variance / (variance + t2)) * math.exp(t2 * difference**2 / (2 * variance * (variance + t2))))


def always_valid_p_values(successes_a: np.ndarray, n_a: np.ndarray, successes_b: np.ndarray, n_b: np.ndarray,
                          tau: float = 0.02) -> np.ndarray:
    """Always-valid p-values for a sequence of looks (cumulative counts per arm, shape (n_looks,)):
    p_t = min(1, min_{s<=t} 1 / Lambda_s). Stopping at the first p_t < alpha keeps type-I error <= alpha."""
    sa, na, sb, nb = (np.asarray(x, np.float64) for x in (successes_a, n_a, successes_b, n_b))
    p_values = np.ones(len(na))
    running = 1.0
    for look in range(len(na)):
        if na[look] < 1 or nb[look] < 1:
            p_values[look] = running
            continue
        pa, pb = sa[look] / na[look], sb[look] / nb[look]
        # Pooled variance under H0 keeps the statistic calibrated when rates are near 0 or 1.
        pooled = (sa[look] + sb[look]) / (na[look] + nb[look])
        variance = pooled * (1 - pooled) * (1 / na[look] + 1 / nb[look])
        running = min(running, 1.0 / max(msprt_likelihood_ratio(pb - pa, variance, tau), 1e-300))
        p_values[look] = min(1.0, running)
    return p_values


def analyze(
    arms: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    purchases: np.ndarray,
    revenue: np.ndarray,
    experiment: Experiment,
    n_bootstrap: int = 2000,
    seed: int = 0,
    look_history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per-arm CTR (clicks / impressions), click-through (users with a click), conversion (users
    with a purchase), revenue per user, with CIs; each other arm vs the control: z-tests on
    click-through and conversion, revenue bootstrap; SRM. The verdict follows
    `experiment.primary_metric`.

    All inputs are (n_users,) arrays, one row per exposed user. Fixed-horizon experiments get
    p-values and a verdict only once `horizon_users` users are in ("verdict": "wait" before).
    Sequential experiments use always-valid mSPRT p-values over `look_history` (earlier looks'
    cumulative (successes, users) of the primary metric per arm: [{arm: (s, n)}], so stopping
    early stays valid)."""
    arms = np.asarray(arms).astype(str)
    impressions, clicks, purchases, revenue = (np.asarray(x, np.float64) for x in (impressions, clicks, purchases, revenue))
    n = arms.size
    if not all(x.shape == (n,) for x in (impressions, clicks, purchases, revenue)):
        raise ValueError("arms, impressions, clicks, purchases and revenue must all be (n_users,) arrays")
    unknown = set(np.unique(arms)) - {a.name for a in experiment.arms}
    if unknown:
        raise ValueError(f"experiment {experiment.id}: users in unknown arms {sorted(unknown)}")
    alpha = experiment.alpha
    per_arm: dict[str, dict[str, Any]] = {}
    for arm in experiment.arms:
        mask = arms == arm.name
        users = int(mask.sum())
        converted = int((purchases[mask] > 0).sum())
        clicked = int((clicks[mask] > 0).sum())
        ctr, ctr_low, ctr_high = ratio_interval(clicks[mask], impressions[mask], alpha)
        rev = revenue[mask]
        per_arm[arm.name] = {
            "users": users,
            "impressions": int(impressions[mask].sum()),
            "clicks": int(clicks[mask].sum()),
            "ctr": ctr, "ctr_ci": [ctr_low, ctr_high],
            "conversion": converted / users if users else 0.0, "conversions": converted,
            "conversion_ci": list(wilson_interval(converted, users, alpha)),
            "click_through": clicked / users if users else 0.0, "click_throughs": clicked,
            "click_through_ci": list(wilson_interval(clicked, users, alpha)),
            "revenue_per_user": float(rev.mean()) if users else 0.0,
            "revenue_per_user_ci": list(mean_interval(rev, alpha)) if users else [0.0, 0.0],
        }
    srm = srm_check([per_arm[a.name]["users"] for a in experiment.arms], [a.share for a in experiment.arms])
    result: dict[str, Any] = {"experiment": experiment.id, "users": n, "arms": per_arm, "srm": srm, "comparisons": {}}
    ready = experiment.sequential or (experiment.horizon_users is not None and n >= experiment.horizon_users)
    control = experiment.control
    ca = per_arm[control]
    for arm in experiment.arms[1:]:
        tb = per_arm[arm.name]
        comparison: dict[str, Any] = {
            "primary_metric": experiment.primary_metric,
            "conversion_difference": tb["conversion"] - ca["conversion"],
            "click_through_difference": tb["click_through"] - ca["click_through"],
            "ctr_difference": tb["ctr"] - ca["ctr"],
            "revenue_difference": tb["revenue_per_user"] - ca["revenue_per_user"],
        }
        if ca["users"] == 0 or tb["users"] == 0:
            comparison["verdict"] = "no data"
        elif not ready:
            # Peeking guard: no p-value before the planned sample size.
            comparison["verdict"] = "wait"
            comparison["reason"] = f"fixed-horizon test: {n} of {experiment.horizon_users} planned users"
        else:
            z, p_z = two_proportion_ztest(ca["conversions"], ca["users"], tb["conversions"], tb["users"])
            z_click, p_click = two_proportion_ztest(ca["click_throughs"], ca["users"], tb["click_throughs"], tb["users"])
            boot = bootstrap_mean_difference(revenue[arms == control], revenue[arms == arm.name], n_bootstrap, alpha, seed)
            comparison.update({"conversion_z": z, "conversion_p": p_z, "click_through_z": z_click, "click_through_p": p_click,
                               "revenue_bootstrap": boot})
            successes = "conversions" if experiment.primary_metric == "conversion" else "click_throughs"
            if experiment.primary_metric == "click_through":
                z, p_z = z_click, p_click
            comparison["primary_p"] = p_z
            if experiment.sequential:
                looks = list(look_history or []) + [{control: (ca[successes], ca["users"]), arm.name: (tb[successes], tb["users"])}]
                sa = [look[control][0] for look in looks]
                na_ = [look[control][1] for look in looks]
                sb = [look[arm.name][0] for look in looks]
                nb_ = [look[arm.name][1] for look in looks]
                p_seq = float(always_valid_p_values(sa, na_, sb, nb_, experiment.msprt_tau)[-1])
                comparison["primary_p_always_valid"] = p_seq
                decisive = p_seq < alpha
            else:
                decisive = p_z < alpha
            if srm["mismatch"]:
                comparison["verdict"] = "invalid: sample-ratio mismatch"
            elif decisive:
                comparison["verdict"] = f"{arm.name} better" if z > 0 else f"{control} better"
            else:
                comparison["verdict"] = "no significant difference"
        result["comparisons"][arm.name] = comparison
    return result
