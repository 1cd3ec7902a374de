"""User profiles: time-decayed category, brand and price-band affinities, an interest vector, lifecycle.

Built in one pass of sparse algebra over the event table (users x items weights, decayed by age,
times item x category / brand / price-band one-hot matrices), saved as npz/npy files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

PRICE_BANDS = np.array([0, 10, 25, 50, 100, 250, 500, 1000, np.inf])


class ProfileConfig(BaseModel):
    half_life_days: float = 30.0
    lapsed_after_days: float = 30.0
    new_below_events: int = 3
    top: int = 5


def price_band(prices: np.ndarray) -> np.ndarray:
    """Band index per price (NaN -> -1). Bands: <10, <25, <50, <100, <250, <500, <1000, more."""
    prices = np.asarray(prices, np.float64)
    band = np.searchsorted(PRICE_BANDS, np.nan_to_num(prices, nan=-1.0), side="right") - 1
    return np.where(np.isnan(prices), -1, band)


def band_label(band: int) -> str:
    lo, hi = PRICE_BANDS[band], PRICE_BANDS[band + 1]
    return f"{lo:g}+" if np.isinf(hi) else f"{lo:g}-{hi:g}"


def _one_hot(values: np.ndarray) -> tuple[sp.csr_matrix, list[str]]:
    """(n_items, n_values) indicator of each item's value; '' / -1 are left out."""
    values = np.asarray(values).astype(str)
    vocab, idx = np.unique(values, return_inverse=True)
    keep = (values != "") & (values != "-1")
    m = sp.csr_matrix((np.ones(keep.sum(), np.float32), (np.flatnonzero(keep), idx[keep])), shape=(len(values), len(vocab)))
    return m, [str(v) for v in vocab]


class UserProfiles:
    """Per-user affinities over categories, brands and price bands, plus interest vectors."""

    def __init__(self, user_ids, affinities: dict[str, sp.csr_matrix], vocab: dict[str, list[str]],
                 vectors: np.ndarray | None, first_seen: np.ndarray, last_seen: np.ndarray, n_events: np.ndarray,
                 now: float, config: ProfileConfig):
        self.user_ids = [str(u) for u in user_ids]
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.affinities = affinities
        self.vocab = vocab
        self._labels: dict[str, dict[str, int]] = {}  # vocab name -> {label: column}, built on first use
        self.vectors = vectors
        self.first_seen, self.last_seen, self.n_events = first_seen, last_seen, n_events
        self.now = now
        self.config = config

    @classmethod
    def build(cls, user_ids, users: np.ndarray, items: np.ndarray, weights: np.ndarray, times: np.ndarray,
              item_category: np.ndarray, item_brand: np.ndarray, item_price: np.ndarray,
              item_vectors: np.ndarray | None, now: float | None = None, config: ProfileConfig | None = None) -> "UserProfiles":
        """users/items/weights/times: (n_events,) parallel arrays in index space; item_*: (n_items,)."""
        config = config or ProfileConfig()
        n_users, n_items = len(user_ids), len(item_category)
        now = float(times.max()) if now is None and len(times) else float(now or 0.0)
        decay = np.power(0.5, (now - times) / (config.half_life_days * 86400.0)).astype(np.float32)
        ui = sp.csr_matrix((np.maximum(weights, 0) * decay, (users, items)), shape=(n_users, n_items))
        ui.sum_duplicates()
        affinities, vocab = {}, {}
        for name, values in (("category", item_category), ("brand", item_brand), ("price_band", price_band(item_price))):
            onehot, labels = _one_hot(values)
            m = (ui @ onehot).tocsr()
            totals = np.asarray(m.sum(axis=1)).ravel()
            affinities[name] = (sp.diags(1.0 / np.maximum(totals, 1e-12)) @ m).astype(np.float32).tocsr()  # rows sum to 1
            vocab[name] = labels
        vectors = None
        if item_vectors is not None:
            raw = ui @ item_vectors
            vectors = (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)).astype(np.float16)
        counts = np.bincount(users, minlength=n_users)
        first = np.full(n_users, np.nan)
        last = np.full(n_users, np.nan)
        if len(times):
            np.fmin.at(first, users, times)
            np.fmax.at(last, users, times)
        return cls(user_ids, affinities, vocab, vectors, first, last, counts, now, config)

    def lifecycle(self, i: int) -> str:
        if self.n_events[i] < self.config.new_below_events:
            return "new"
        if self.now - self.last_seen[i] > self.config.lapsed_after_days * 86400:
            return "lapsed"
        return "active"

    def top(self, i: int, name: str, k: int | None = None) -> list[tuple[str, float]]:
        row = self.affinities[name].getrow(i)
        order = np.argsort(-row.data, kind="stable")[: k or self.config.top]
        labels = self.vocab[name]
        out = [(labels[row.indices[j]], round(float(row.data[j]), 4)) for j in order]
        if name == "price_band":
            out = [(band_label(int(label)), w) for label, w in out]
        return out

    def get(self, user: str) -> dict[str, Any]:
        """The inspectable profile of one (pseudonymised) user; an empty 'new' profile when unknown."""
        i = self.user_index.get(user)
        if i is None:
            return {"lifecycle": "new", "interactions": 0, "top_categories": [], "top_brands": [], "price_bands": []}
        return {
            "lifecycle": self.lifecycle(i),
            "interactions": int(self.n_events[i]),
            "top_categories": self.top(i, "category"),
            "top_brands": self.top(i, "brand"),
            "price_bands": self.top(i, "price_band"),
            "first_seen": float(self.first_seen[i]),
            "last_seen": float(self.last_seen[i]),
        }

    def affinity(self, i: int, name: str, item_values: np.ndarray) -> np.ndarray:
        """User i's affinity for each of the given items' values (category/brand labels or band ids)."""
        labels = self._labels.get(name)
        if labels is None:
            labels = self._labels[name] = {label: j for j, label in enumerate(self.vocab[name])}
        row = self.affinities[name].getrow(i).toarray().ravel()
        cols = np.array([labels.get(str(v), -1) for v in item_values])
        return np.where(cols >= 0, row[np.maximum(cols, 0)], 0.0).astype(np.float32)

    def forget(self, user: str) -> None:
        i = self.user_index.pop(user, None)
        if i is None:
            return
        for name, m in self.affinities.items():
            m.data[m.indptr[i]:m.indptr[i + 1]] = 0
            m.eliminate_zeros()
        if self.vectors is not None:
            self.vectors[i] = 0
        self.n_events[i] = 0

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name, m in self.affinities.items():
            sp.save_npz(path / f"{name}.npz", m)
        if self.vectors is not None:
            np.save(path / "vectors.npy", self.vectors)
        np.savez(path / "activity.npz", first=self.first_seen, last=self.last_seen, n=self.n_events)
        np.save(path / "user_ids.npy", np.asarray(self.user_ids).astype(str))
        (path / "profiles.json").write_text(json.dumps({"format_version": 1, "now": self.now, "vocab": self.vocab,
                                                        "config": self.config.model_dump()}))

    @classmethod
    def load(cls, path: Path) -> "UserProfiles":
        meta = json.loads((path / "profiles.json").read_text())
        affinities = {name: sp.load_npz(path / f"{name}.npz").tocsr() for name in meta["vocab"]}
        vectors = np.load(path / "vectors.npy") if (path / "vectors.npy").exists() else None
        act = np.load(path / "activity.npz")
        return cls(np.load(path / "user_ids.npy"), affinities, meta["vocab"], vectors, act["first"], act["last"],
                   act["n"], meta["now"], ProfileConfig(**meta["config"]))
