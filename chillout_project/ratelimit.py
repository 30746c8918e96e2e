"""Token buckets: the one rate-limit primitive (sockets' write/relay buckets, uploads per IP).

Hand-written rather than the `limits` library: that library counts fixed or moving windows
per key in a storage backend, while what is wanted is a continuous refill (rate + burst),
per socket or per client IP, kept in the process. `KeyedBuckets` holds one bucket per key
and forgets buckets that have refilled completely (a full bucket is the same as none), so
its memory is bounded by the keys seen within one refill time (`burst / rate` seconds).

Per process: with several processes (`REDIS_URL`) each has its own buckets, so a client
spread over N processes by the load balancer gets up to N times the rate. For uploads that
is the documented trade-off (docs/decisions.md): a shared bucket would cost a Redis round
trip per upload to bound something that is already bounded per process.
"""

from __future__ import annotations

import time

PRUNE_EVERY = 1024  # keys added between two sweeps of refilled buckets


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second; one event takes one token."""

    __slots__ = ("rate", "burst", "tokens", "updated")

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> bool:
        self._refill(time.monotonic())
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class KeyedBuckets:
    """One `TokenBucket(rate, burst)` per key (a client IP); `rate` or `burst` 0 = no limit."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._added = 0

    def take(self, key: str) -> bool:
        """Spend one of `key`'s tokens; False when it has none left (or always True when off)."""
        if self.rate <= 0 or self.burst <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            self._prune()
            bucket = self._buckets[key] = TokenBucket(rate=self.rate, burst=self.burst)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self) -> None:
        self._added += 1
        if self._added % PRUNE_EVERY:
            return
        now = time.monotonic()
        for key in [key for key, bucket in self._buckets.items() if bucket.full(now)]:
            del self._buckets[key]
