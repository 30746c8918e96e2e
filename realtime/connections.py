"""What this process knows about each of its own sockets: lock, rate buckets, IP, media base.

Unlike `realtime.state`, nothing here is shared between processes: a socket is served by
one process for its whole life (sticky sessions), so its lock and buckets live with it.

The lock serialises a socket's events. Python-socketio runs every event in its own task,
so without it a `send_message` emitted right after `join_room` could be handled while the
join is still awaiting the database, and an `ice_candidate` could overtake the `offer` it
belongs to. Tasks are started in arrival order and `asyncio.Lock` is FIFO, so holding it
for the whole handler processes a socket's events one by one, in the order they came.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from django.conf import settings

from chillout_project.http import media_origin
from realtime.guards import EventBacklog
from realtime.ratelimit import TokenBucket, bucket_create, bucket_take


@dataclass(slots=True)
class Typing:
    """A socket shown as typing in a room: what to announce when it stops, and the timer
    (`TYPING_TIMEOUT_SECONDS`) that stops it if the client does not."""

    room_id: str
    username: str
    timer: asyncio.Task


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One of a socket's rate limits: the `Connection` slot its bucket lives in, and the
    settings of its rate and burst."""

    slot: str
    rate: str
    burst: str


WRITE_LIMIT = RateLimit(slot="write_bucket", rate="SEND_RATE", burst="SEND_BURST")
RELAY_LIMIT = RateLimit(slot="relay_bucket", rate="RELAY_RATE", burst="RELAY_BURST")
JOIN_LIMIT = RateLimit(slot="join_bucket", rate="JOIN_RATE", burst="JOIN_BURST")
TYPING_LIMIT = RateLimit(slot="typing_bucket", rate="TYPING_RATE", burst="TYPING_BURST")


@dataclass(slots=True, eq=False)
class Connection:
    """Slots, and nothing made before it is needed: a quiet socket holds this object, its
    lock (whose waiters' deque asyncio makes on first contention) and its backlog counter.
    A bucket is made at the socket's first event of its kind (`connection_bucket_take`):
    a bucket made then is the full bucket one made at the connect would have become."""

    sid: str
    ip: str | None  # None when the ASGI server reports no client address (no per-IP count)
    media_base: str  # absolute media URLs start with this: PUBLIC_URL, else scheme://Host
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Events started and not finished (waiting for `lock` or running): MAX_PENDING_EVENTS.
    backlog: EventBacklog = field(default_factory=lambda: EventBacklog(limit=settings.MAX_PENDING_EVENTS))
    write_bucket: TokenBucket | None = None
    relay_bucket: TokenBucket | None = None
    join_bucket: TokenBucket | None = None
    typing_bucket: TokenBucket | None = None
    typing: Typing | None = None  # shown as typing to its room (see realtime.actions.do_typing)


def connection_bucket(connection: Connection, limit: RateLimit) -> TokenBucket | None:
    """The socket's bucket for `limit`, made on first use; None when that limit is off."""
    bucket = getattr(connection, limit.slot)
    if bucket is None:
        bucket = bucket_create(rate=getattr(settings, limit.rate), burst=getattr(settings, limit.burst))
        setattr(connection, limit.slot, bucket)
    return bucket


def connection_bucket_take(connection: Connection, limit: RateLimit) -> None:
    """Spend one of the socket's tokens for `limit`, or raise `RateLimited`."""
    bucket_take(connection_bucket(connection, limit))


_connections: dict[str, Connection] = {}


def connection_register(*, sid: str, ip: str | None, media_base: str) -> Connection:
    connection = Connection(sid=sid, ip=ip, media_base=media_base)
    _connections[sid] = connection
    return connection


def connection_get(*, sid: str) -> Connection | None:
    return _connections.get(sid)


def connection_sids() -> list[str]:
    """The sids of every connection this process serves now."""
    return list(_connections)


def connection_drop(*, sid: str) -> None:
    _connections.pop(sid, None)


def client_ip(environ: dict) -> str | None:
    """The peer address from the ASGI scope (engine.io's REMOTE_ADDR is always 127.0.0.1)."""
    client = environ.get("asgi.scope", {}).get("client")
    return client[0] if client else None


def socket_media_base(environ: dict) -> str:
    """`media_origin` of a Socket.IO handshake: the scheme and Host the client used, the
    server's own address when that Host is not allowed."""
    scope = environ.get("asgi.scope", {})
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    server = scope.get("server") or ("localhost", None)
    fallback = f"{server[0]}:{server[1]}" if server[1] else server[0]
    return media_origin(scheme=scheme, host=lambda: environ.get("HTTP_HOST", ""), fallback_host=fallback)
