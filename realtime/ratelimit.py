"""Per-socket token buckets: one for writes, one for WebRTC relays (contract §6).

A socket lives in exactly one server process, so its buckets are plain in-process objects
(even with Redis, nothing here needs sharing). Hand-written rather than the `limits`
library: that library counts fixed or moving windows per key in a storage backend, while
what is wanted is a continuous refill per connection that dies with the connection; the
bucket (`chillout_project.ratelimit`, shared with the upload limit) is the whole of it.
"""

from chillout_project.errors import RateLimited
from chillout_project.ratelimit import TokenBucket


def bucket_create(*, rate: float, burst: int) -> TokenBucket | None:
    """A bucket, or None when the limit is off (`rate` or `burst` is 0)."""
    if rate <= 0 or burst <= 0:
        return None
    return TokenBucket(rate=rate, burst=burst)


def bucket_take(bucket: TokenBucket | None) -> None:
    """Spend a token, or raise `RateLimited` (whose text the client gets in its ack)."""
    if bucket is not None and not bucket.take():
        raise RateLimited("rate limited")
