"""Recently served ranked lists, reused while nothing they were computed from has changed.

A request's answer depends on the artifact version, the catalog (upserts, deletes, rules) and the
user's online state (events since the process started). Each entry keeps the stamp of those it was
computed under — `(catalog epoch, user epoch)` — and a read with a different stamp is a miss, so an
event or a catalog change shows in that user's next response without any explicit invalidation.
The cache belongs to one loaded version and is dropped with it on swap.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Hashable

import orjson

from shoprec.types import Hit, RankedList


class ResultCache:
    """Bounded LRU of `key -> (stamp, value)`; thread-safe. `size` 0 disables it."""

    def __init__(self, size: int):
        self.size = max(0, int(size))
        self._entries: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, stamp: Hashable) -> Any | None:
        """The value stored under `key` with this exact `stamp`, else None (a stale entry is dropped)."""
        if not self.size:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, stamp: Hashable, value: Any) -> None:
        if not self.size:
            return
        with self._lock:
            self._entries[key] = (stamp, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def drain(self, n: int) -> int:
        """Drop the `n` oldest entries; returns how many are left (for freeing a retired cache piecemeal)."""
        with self._lock:
            for _ in range(min(n, len(self._entries))):
                self._entries.popitem(last=False)
            return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {"entries": len(self._entries), "size": self.size, "hits": self.hits, "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else None}


def pack(ranked: RankedList) -> bytes:
    """A ranked list as JSON bytes, products left out (looked up again by `unpack`).

    Kept this way, a cached answer is one object that the garbage collector never walks instead of
    a hundred small ones: with thousands of answers kept, every full collection paused serving for
    100-200 ms."""
    return orjson.dumps({"hits": [[h.id, h.score, h.reason, h.sources, h.highlights] for h in ranked.hits],
                         "total": ranked.total, "facets": ranked.facets, "info": ranked.info},
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str)


def unpack(data: bytes, product_of: Callable[[str], dict[str, Any] | None]) -> RankedList:
    """The ranked list `pack` stored, with each hit's product from `product_of(id)`."""
    raw = orjson.loads(data)
    hits = [Hit(id=i, score=score, reason=reason, sources=sources, highlights=highlights, product=product_of(i))
            for i, score, reason, sources, highlights in raw["hits"]]
    return RankedList(hits=hits, total=raw["total"], facets=raw["facets"], info=raw["info"])
