"""The Redis clients of a process, each on a bounded pool of connections.

Why. redis-py's asyncio client opens one more connection whenever every pooled one is busy
and never closes an idle one. A burst of concurrent commands therefore leaves its peak
number of connections open for the life of the process: after a Redis restart, when every
client of a process reconnects and joins again at once, the fault soak found 200 idle
connections per process a minute later, descriptors and Redis clients that never came
back (docs/soak.md). Redis executes one command at a time, so beyond a few connections
more of them add descriptors, not throughput.

What. Each client is built on a `BlockingConnectionPool` of at most `REDIS_MAX_CONNECTIONS`
(16): a command that finds every connection busy waits for one, up to
`REDIS_POOL_TIMEOUT_SECONDS`, then fails with redis-py's `ConnectionError`, which every
caller already handles as Redis being unreachable. Each connection carries a client name
(`CLIENT LIST` shows which pool of which prefix holds it).

Concurrency: a subscribed PubSub holds one connection of its pool for as long as it listens.
"""

from __future__ import annotations

from django.conf import settings
from redis import asyncio as aioredis


def redis_client_create(url: str, *, name: str, **options) -> aioredis.Redis:
    """A `decode_responses` client on a bounded, blocking pool of its own; `name` is the
    connections' Redis client name. `aclose()` closes the pool with it."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=settings.REDIS_MAX_CONNECTIONS, timeout=settings.REDIS_POOL_TIMEOUT_SECONDS,
        decode_responses=True, client_name=name, **options,
    )  # fmt: skip
    return aioredis.Redis.from_pool(pool)
