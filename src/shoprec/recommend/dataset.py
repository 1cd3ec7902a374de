"""Interactions: implicit-feedback training data in index space, shared by every model.

Users and items are dense indices 0..n-1; `user_ids` / `item_ids` map them back to store ids.
Events keep their original order within each user (ties in time are common: never re-sort).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp


@dataclass
class Interactions:
    """Events as parallel arrays, plus optional item side information.

    users, items: (n_events,) int32 indices, grouped by user in time order.
    weights: (n_events,) float32 implicit strength (see schemas.EVENT_WEIGHTS).
    timestamps: (n_events,) float64 seconds (or the position, when times are unknown).
    item_attributes: (n_items, n_attributes) CSR 0/1 matrix (category, brand ... ids), optional.
    item_texts: n_items strings for the language model, optional.
    """

    n_users: int
    n_items: int
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    item_attributes: sp.csr_matrix | None = None
    item_texts: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=np.int32)
        self.items = np.asarray(self.items, dtype=np.int32)
        n = len(self.users)
        if len(self.items) != n:
            raise ValueError("users and items must have the same length")
        self.weights = np.ones(n, np.float32) if self.weights is None else np.asarray(self.weights, np.float32)
        self.timestamps = np.arange(n, dtype=np.float64) if self.timestamps is None else np.asarray(self.timestamps, np.float64)
        if n and (self.users.max() >= self.n_users or self.items.max() >= self.n_items or self.users.min() < 0 or self.items.min() < 0):
            raise ValueError("user or item index out of range")

    @classmethod
    def from_sequences(cls, sequences: list[np.ndarray] | list[list[int]], n_items: int, **kwargs) -> "Interactions":
        """Build from one item-index sequence per user (time order)."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        users = np.repeat(np.arange(len(sequences), dtype=np.int32), lengths)
        items = np.concatenate([np.asarray(s, np.int32) for s in sequences]) if len(sequences) else np.zeros(0, np.int32)
        timestamps = np.concatenate([np.arange(n, dtype=np.float64) for n in lengths]) if len(sequences) else None
        return cls(n_users=len(sequences), n_items=n_items, users=users, items=items, timestamps=timestamps, **kwargs)

    def __len__(self) -> int:
        return len(self.users)

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """(n_users, n_items) summed weights; duplicate (user, item) pairs are added up."""
        m = sp.csr_matrix((self.weights, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        return m

    @cached_property
    def seen(self) -> sp.csr_matrix:
        """(n_users, n_items) 1 where the user interacted with the item at all."""
        m = sp.csr_matrix((np.ones(len(self), np.float32), (self.users, self.items)), shape=(self.n_users, self.n_items))
        m.data[:] = 1.0
        return m

    @cached_property
    def sequences(self) -> list[np.ndarray]:
        """Per-user item-index arrays in event order (a stable sort by user keeps the file's order)."""
        order = np.argsort(self.users, kind="stable")
        bounds = np.searchsorted(self.users[order], np.arange(self.n_users + 1))
        items = self.items[order]
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]

    def item_popularity(self) -> np.ndarray:
        """(n_items,) number of interactions per item."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.float32)
