"""Per-socket token buckets: one for writes, one for WebRTC relays (contract §6).

A socket lives in exactly one server process, so its buckets are plain in-process objects
(even with Redis, nothing here needs sharing). Hand-written rather than the `limits`
library: that library counts fixed or moving windows per key in a storage backend, while
what is wanted is a continuous refill per connection that dies with the connection; the
bucket below is the whole of it.
"""

import time

from chillout_project.errors import RateLimited


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second; one event takes one token."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def bucket_create(*, rate: float, burst: int) -> TokenBucket | None:
    """A bucket, or None when the limit is off (`rate` or `burst` is 0)."""
    if rate <= 0 or burst <= 0:
        return None
    return TokenBucket(rate=rate, burst=burst)


def bucket_take(bucket: TokenBucket | None) -> None:
    """Spend a token, or raise `RateLimited` (whose text the client gets in its ack)."""
    if bucket is not None and not bucket.take():
        raise RateLimited("rate limited")
