"""Candidate features for learning-to-rank: generator evidence, profile affinities, context, item stats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

# Generator evidence columns (reciprocal-rank contribution; 0 when the generator did not propose it).
GENERATOR_FEATURES = [
    "model:sasrec", "model:gru4rec", "model:itemknn", "model:als", "model:bpr", "model:content",
    "recent:itemknn", "recent:content", "seeds:itemknn", "seeds:content", "content_profile",
    "popular", "popular_recent", "popular_locale", "graph:co_buy", "graph:co_view", "graph:complement", "graph:similar",
]
ITEM_FEATURES = ["log_popularity", "log_popularity_recent", "log_price", "rating", "age_days", "available"]
PROFILE_FEATURES = ["aff_category", "aff_brand", "aff_price_band", "interest_cosine", "history_length", "session_length"]
CONTEXT_FEATURES = ["hour", "weekday", "mobile", "locale_zh", "item_lang_match"]
FEATURE_NAMES = [f"gen:{g}" for g in GENERATOR_FEATURES] + ITEM_FEATURES + PROFILE_FEATURES + CONTEXT_FEATURES


@dataclass
class ItemStats:
    """Per-item arrays (n_items,) the features read."""

    popularity: np.ndarray
    popularity_recent: np.ndarray
    price: np.ndarray
    rating: np.ndarray
    created: np.ndarray          # epoch seconds (NaN unknown)
    available: np.ndarray
    category: np.ndarray         # leaf category label
    brand: np.ndarray
    language: np.ndarray
    now: float

    def save(self, path) -> None:
        np.savez(path, **{k: v for k, v in self.__dict__.items() if k != "now"}, now=np.array(self.now))

    @classmethod
    def load(cls, path) -> "ItemStats":
        d = np.load(path, allow_pickle=False)
        return cls(**{k: d[k] for k in d.files if k != "now"}, now=float(d["now"]))

    def extend(self, n: int) -> None:
        """Pad every array to n items (new products get neutral stats)."""
        for key, fill in (("popularity", 0), ("popularity_recent", 0), ("price", np.nan), ("rating", np.nan),
                          ("created", self.now), ("available", True), ("category", ""), ("brand", ""), ("language", "")):
            arr = getattr(self, key)
            if len(arr) < n:
                setattr(self, key, np.concatenate([arr, np.full(n - len(arr), fill, dtype=arr.dtype)]))


class Contributions:
    """Each retrieval generator's share of an item's fused score (generator -> items and values)."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # generator -> (item ids sorted, values)

    def add(self, generator: str, items: np.ndarray, values: np.ndarray) -> None:
        """Record one generator's (distinct) items and their shares."""
        items, values = np.asarray(items, np.int64), np.asarray(values, np.float32)
        order = np.argsort(items, kind="stable")
        self._parts[generator] = (items[order], values[order])

    def generators(self) -> list[str]:
        return list(self._parts)

    def get(self, item: int, default: dict[str, float] | None = None) -> dict[str, float]:
        """{generator: value} for one item (`default`, else {}, when no generator proposed it)."""
        found = {}
        for name, (ids, values) in self._parts.items():
            at = int(np.searchsorted(ids, item))
            if at < len(ids) and ids[at] == item:
                found[name] = float(values[at])
        return found or (default if default is not None else {})

    def column(self, generator: str, items: np.ndarray | list[int]) -> np.ndarray:
        """(len(items),) values of one generator, 0 where it did not propose the item."""
        items = np.asarray(items, np.int64)
        ids, values = self._parts.get(generator, (np.zeros(0, np.int64), np.zeros(0, np.float32)))
        if not len(ids):
            return np.zeros(len(items), np.float32)
        at = np.minimum(np.searchsorted(ids, items), len(ids) - 1)
        return np.where(ids[at] == items, values[at], 0.0).astype(np.float32)


def candidate_features(candidates: np.ndarray, contributions: Contributions, stats: ItemStats,
                       profile_affinity: dict[str, np.ndarray] | None, interest: np.ndarray | None,
                       item_vectors: np.ndarray | None, history_length: int, session_length: int,
                       context: dict | None) -> np.ndarray:
    """(len(candidates), len(FEATURE_NAMES)) float32 feature matrix."""
    m = len(candidates)
    x = np.zeros((m, len(FEATURE_NAMES)), np.float32)
    col = {name: j for j, name in enumerate(FEATURE_NAMES)}
    for gen in contributions.generators():
        j = col.get(f"gen:{gen}")
        if j is not None:
            x[:, j] = contributions.column(gen, candidates)
    c = candidates
    x[:, col["log_popularity"]] = np.log1p(stats.popularity[c])
    x[:, col["log_popularity_recent"]] = np.log1p(stats.popularity_recent[c])
    x[:, col["log_price"]] = np.log1p(np.nan_to_num(stats.price[c], nan=0.0))
    x[:, col["rating"]] = np.nan_to_num(stats.rating[c], nan=0.0)
    x[:, col["age_days"]] = np.nan_to_num((stats.now - stats.created[c]) / 86400.0, nan=0.0)
    x[:, col["available"]] = stats.available[c]
    if profile_affinity:
        for name in ("category", "brand", "price_band"):
            if name in profile_affinity:
                x[:, col[f"aff_{name}"]] = profile_affinity[name]
    if interest is not None and item_vectors is not None:
        inside = c < len(item_vectors)
        x[inside, col["interest_cosine"]] = item_vectors[c[inside]] @ interest.astype(np.float32)
    x[:, col["history_length"]] = np.log1p(history_length)
    x[:, col["session_length"]] = session_length
    ctx = context or {}
    when = ctx.get("timestamp")
    moment = datetime.fromtimestamp(float(when), tz=timezone.utc) if when is not None else datetime.now(timezone.utc)
    x[:, col["hour"]] = moment.hour
    x[:, col["weekday"]] = moment.weekday()
    x[:, col["mobile"]] = float(str(ctx.get("device", "")).lower() in ("mobile", "phone", "app"))
    locale = str(ctx.get("locale", ""))
    x[:, col["locale_zh"]] = float(locale.startswith("zh"))
    if locale:
        x[:, col["item_lang_match"]] = (stats.language[c] == locale[:2]).astype(np.float32)
    return x
