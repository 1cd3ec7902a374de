"""Train/test splits of `Interactions`: leave-one-out, global temporal, per-user temporal, random.

Every split keeps the full index space (n_users, n_items, ids, item side information) so a model
fitted on `train` scores test users and items by the same indices. A `Split` also names the
`history` a model is given at test time (usually `train`; for leave-one-out, everything but the
last item of each user, as in `shoprec.evaluation.protocols`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shoprec.recommend.dataset import Interactions


@dataclass
class Split:
    """train: what models fit on; test: held-out events; history: known past at test time."""

    name: str
    train: Interactions
    test: Interactions
    history: Interactions
    params: dict = field(default_factory=dict)

    def test_relevant(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """(users with test events (n,), their distinct test item indices)."""
        seen = self.test.seen
        users = np.flatnonzero(np.diff(seen.indptr) > 0)
        return users, [seen.indices[seen.indptr[u]:seen.indptr[u + 1]] for u in users]


def subset(data: Interactions, mask: np.ndarray) -> Interactions:
    """The events where `mask` (n_events,) is true, in the same index space and order."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (len(data),):
        raise ValueError(f"mask has shape {mask.shape}, expected ({len(data)},)")
    return Interactions(
        n_users=data.n_users,
        n_items=data.n_items,
        users=data.users[mask],
        items=data.items[mask],
        weights=data.weights[mask],
        timestamps=data.timestamps[mask],
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        item_attributes=data.item_attributes,
        item_texts=data.item_texts,
        meta=dict(data.meta),
    )


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")


def leave_one_out_split(data: Interactions) -> Split:
    """Each user's last event is the test target; train drops the last two (the second-to-last is
    the validation target and part of the test-time history). Delegates to
    `shoprec.evaluation.protocols.leave_one_out` so both places agree on the protocol."""
    from shoprec.evaluation.protocols import leave_one_out

    loo = leave_one_out(data.sequences, data.n_items, item_attributes=data.item_attributes, item_texts=data.item_texts)
    test = Interactions(
        n_users=data.n_users,
        n_items=data.n_items,
        users=loo.test_users,
        items=loo.test_targets,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
    )
    for part in (loo.train, loo.test_history):
        part.user_ids, part.item_ids = data.user_ids, data.item_ids
    return Split("leave_one_out", loo.train, test, loo.test_history, {"valid_users": loo.valid_users, "valid_targets": loo.valid_targets})


def global_temporal_split(data: Interactions, test_fraction: float = 0.2) -> Split:
    """Events at or after the (1 - test_fraction) time quantile are test: no future leaks into train."""
    _check_fraction(test_fraction)
    cutoff = float(np.quantile(data.timestamps, 1.0 - test_fraction)) if len(data) else 0.0
    is_test = data.timestamps >= cutoff
    train = subset(data, ~is_test)
    return Split("global_temporal", train, subset(data, is_test), train, {"test_fraction": test_fraction, "cutoff": cutoff})


def per_user_temporal_split(data: Interactions, test_fraction: float = 0.2) -> Split:
    """Each user's latest floor(n * test_fraction) events (at least one when the user has two or
    more) are test; ties in time keep the file order."""
    _check_fraction(test_fraction)
    order = np.lexsort((np.arange(len(data)), data.timestamps, data.users))
    counts = np.bincount(data.users, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_users = data.users[order]
    position = np.arange(len(data)) - starts[sorted_users]
    n_test = np.floor(counts * test_fraction).astype(np.int64)
    n_test = np.where((n_test == 0) & (counts >= 2), 1, n_test)
    is_test = np.zeros(len(data), dtype=bool)
    is_test[order] = position >= (counts - n_test)[sorted_users]
    train = subset(data, ~is_test)
    return Split("per_user_temporal", train, subset(data, is_test), train, {"test_fraction": test_fraction})


def random_split(data: Interactions, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """A uniformly random test_fraction of events (ignores time: optimistic, for comparison only)."""
    _check_fraction(test_fraction)
    is_test = np.random.default_rng(seed).random(len(data)) < test_fraction
    train = subset(data, ~is_test)
    return Split("random", train, subset(data, is_test), train, {"test_fraction": test_fraction, "seed": seed})


SPLITS = {
    "leave_one_out": leave_one_out_split,
    "global_temporal": global_temporal_split,
    "per_user_temporal": per_user_temporal_split,
    "random": random_split,
}


def make_split(data: Interactions, name: str, **kwargs) -> Split:
    """Split by name (one of SPLITS)."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}: choose one of {sorted(SPLITS)}")
    return SPLITS[name](data, **kwargs)
