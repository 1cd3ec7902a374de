"""Token-bucket rate limiting, one bucket per API key (or per client IP for anonymous routes).

In-memory and per process: with `--workers N` each worker enforces the limit on its own share.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    retry_after_s: int = 0
    remaining: int = 0


class TokenBucketLimiter:
    """`per_minute` requests per minute per key, bursting up to `burst` (default: a minute's worth).

    Tokens refill continuously at per_minute/60 per second; a denied request is told how many
    whole seconds until one token is back (the `Retry-After` header). `per_minute <= 0` disables.
    """

    def __init__(self, per_minute: int, burst: int | None = None, max_keys: int = 100_000, clock=time.monotonic):
        self.per_minute = per_minute
        self.capacity = float(burst if burst is not None else max(1, per_minute))
        self.refill_per_s = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def acquire(self, key: str, cost: float = 1.0) -> Decision:
        """Take `cost` tokens from `key`'s bucket if it has them."""
        if not self.enabled:
            return Decision(True, 0, -1)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_s)
            if tokens >= cost:
                tokens -= cost
                self._buckets[key] = (tokens, now)
                if len(self._buckets) > self.max_keys:
                    self._evict(now)
                return Decision(True, 0, int(tokens))
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / self.refill_per_s
            return Decision(False, max(1, math.ceil(wait)), 0)

    def _evict(self, now: float) -> None:
        # Buckets that would be full again carry no state; dropping them bounds memory under many IPs.
        full_after = self.capacity / self.refill_per_s
        stale = [k for k, (_, last) in self._buckets.items() if now - last >= full_after]
        for key in stale:
            del self._buckets[key]
        if len(self._buckets) > self.max_keys:  # still too many: drop the oldest half
            by_age = sorted(self._buckets.items(), key=lambda kv: kv[1][1])
            for key, _ in by_age[: len(by_age) // 2]:
                del self._buckets[key]
