"""The python-socketio `AsyncServer`: built once by the composition root, reached through `server()`.

With `REDIS_URL` the server's client manager publishes on Redis per room
(`realtime.pubsub.RoomChannelsMixin`): an emit is delivered to this process's sockets and
published on the room's channel, which only the processes serving a member of the room
listen to; an emit to a sid of another process goes to that process's own channel. Room membership itself stays local to each process, so presence is never read
from it (see `realtime.state`).

Connection state recovery (contract §4, `RECOVERY_WINDOW_SECONDS` > 0): the server is a
`realtime.recovery_server.RecoveringServer` whose log is keyed by chat room id (a channel
`room:<id>` maps back with `room_of_channel`; sids and internal rooms are never logged), in
memory or, with `REDIS_URL`, in Redis; with Redis every process delivers room broadcasts
from its subscription, in offset order (`OrderedRedisManagerMixin`). The application's
`restore`/`snapshot` hooks (`realtime.events.socket_restore` / `socket_snapshot`) are
passed by the composition root. With recovery off the server is a plain `AsyncServer`
that accepts (and ignores) `volatile=`.

Nothing happens at import: `server_build()` (called by `realtime.composition`) creates the
server (its Redis manager connects on first use, on the server's loop) and installs the
engine.io poll replacement and the outbound / polling-payload bounds
(`realtime.backpressure`); the handlers are registered by `realtime.events.events_register`.
Each of those reaches into python-socketio / python-engineio is asked of
`chillout_project.tunings` first: on versions it was not checked against the library's
own behaviour is built instead (`recovery`: the plain server; `engineio_poll`,
`outbound_bound`: engine.io's own poll and queue; `direct_write`: python-socketio's emit).
"""

from __future__ import annotations

import socketio
from django.conf import settings

from chillout_project import metrics
from chillout_project.tunings import reach_active
from realtime.backpressure import backpressure_install
from realtime.channels import room_of_channel
from realtime.delivery import DirectEmitManager, engineio_poll_install, orjson_module
from realtime.pubsub import RoomChannelsMixin
from realtime.recovery import RecoveryLog, recovery_log_create
from realtime.recovery_server import (
    OrderedRedisManagerMixin,
    RecoveringServer,
    RecoveryManagerMixin,
    Restore,
    Snapshot,
)
from realtime.state import state

_server: list[socketio.AsyncServer] = []


def cors_origins():
    return "*" if settings.CORS_ALLOW_ALL_ORIGINS else list(settings.CORS_ALLOWED_ORIGINS)


class RedisDirectEmitManager(RoomChannelsMixin, DirectEmitManager):
    """Per-room Redis channels across processes (`realtime.pubsub`); this process's own
    copies, and those it receives from the others, sent the cheap way (`DirectEmitManager`)."""


class RecoveryDirectEmitManager(RecoveryManagerMixin, DirectEmitManager):
    """One process with recovery: held and already-replayed deliveries, then the cheap send."""


class RecoveryRedisManager(OrderedRedisManagerMixin, RoomChannelsMixin, RecoveryManagerMixin, DirectEmitManager):
    """Several processes with recovery: room broadcasts logged and published on the room's
    channel in one Redis script, delivered by every process with members there from its
    subscription (see `realtime.recovery_server`)."""


class PlainServer(socketio.AsyncServer):
    """Recovery off: `emit(volatile=...)` accepted like `RecoveringServer`'s, and ignored."""

    async def emit(self, *args, volatile: bool = False, **kwargs):
        return await super().emit(*args, **kwargs)


def client_manager(*, recovery: bool) -> socketio.AsyncManager:
    """The Redis per-room-channel manager when processes share the work, else a local one."""
    if not settings.REDIS_URL:
        return RecoveryDirectEmitManager() if recovery else DirectEmitManager()
    manager = RecoveryRedisManager() if recovery else RedisDirectEmitManager()
    manager.channels_init(url=settings.REDIS_URL, prefix=settings.REDIS_PREFIX, node_id=node_id, node_of=sid_node)
    return manager


def node_id() -> str:
    """This process's name in the shared state (its own channel carries emits to its sockets)."""
    return state().node_id


async def sid_node(sid: str) -> str | None:
    return await state().node_of(sid=sid)


def recovery_log_build() -> RecoveryLog:
    return recovery_log_create(
        redis_url=settings.REDIS_URL,
        prefix=settings.REDIS_PREFIX,
        window_seconds=settings.RECOVERY_WINDOW_SECONDS,
        max_events=settings.RECOVERY_MAX_EVENTS,
    )


def server_build(*, restore: Restore | None = None, snapshot: Snapshot | None = None) -> socketio.AsyncServer:
    """Create this process's server (once); connects nothing. `restore`/`snapshot` are the
    application's recovery hooks (used when `settings.RECOVERY`)."""
    if not _server:
        if reach_active("engineio_poll"):
            engineio_poll_install(polling_batch=settings.POLLING_RESPONSE_PACKETS)
        recovery = settings.RECOVERY and reach_active("recovery")
        options = dict(
            async_mode="asgi",
            client_manager=client_manager(recovery=recovery),
            json=orjson_module,
            cors_allowed_origins=cors_origins(),
            max_http_buffer_size=settings.MAX_PACKET_BYTES,
            ping_interval=25,
            ping_timeout=20,
        )
        if recovery:
            sio = RecoveringServer(
                recovery_log=recovery_log_build(),
                restore=restore,
                snapshot=snapshot,
                log_room=room_of_channel,
                **options,
            )
        else:
            sio = PlainServer(**options)
        _server.append(sio)
        if reach_active("outbound_bound"):
            backpressure_install(
                sio,
                max_outbound_bytes=settings.MAX_OUTBOUND_BYTES,
                max_decode_packets=settings.MAX_PENDING_EVENTS,
                on_refusal=lambda reason: metrics.socket_cut(reason=reason),
                direct_write=reach_active("direct_write"),  # written through the bound's websocket
            )
    return _server[0]


async def recovery_log_close() -> None:
    """At shutdown, after the server stopped: release the recovery log's and the
    subscriber's connections."""
    log = getattr(server(), "recovery_log", None)
    if log is not None:
        await log.close()
    if isinstance(server().manager, RoomChannelsMixin):
        await server().manager.channels_close()


def server() -> socketio.AsyncServer:
    """The server `server_build()` created (the actions emit through it)."""
    if not _server:
        raise RuntimeError("the Socket.IO server is not built yet (realtime.composition.realtime_build)")
    return _server[0]


async def pubsub_start() -> None:
    """Subscribe to the other processes' emits now rather than at this process's first socket.

    python-socketio starts its manager (for Redis: the subscriber task) on the first
    connection; an emit published before the subscription is in place is lost for this
    process. Registered as a background loop, so run at the process's start.
    """
    sio = server()
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()
