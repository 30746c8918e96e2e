"""The python-socketio `AsyncServer`: built once by the composition root, reached through `server()`.

With `REDIS_URL` the server's client manager is python-socketio's `AsyncRedisManager`: an
emit is delivered to this process's sockets and published on Redis for the other
processes to deliver to theirs (a room's members on every process; a sid wherever it is
served). Room membership itself stays local to each process, so presence is never read
from it (see `realtime.state`).

Nothing happens at import: `server_build()` (called by `realtime.composition`) creates the
server (its Redis manager connects on first use, on the server's loop) and installs the
engine.io poll replacement and the outbound / polling-payload bounds
(`realtime.backpressure`); the handlers are registered by `realtime.events.events_register`.
"""

from __future__ import annotations

import socketio
from django.conf import settings

from chillout_project import metrics
from realtime.backpressure import backpressure_install
from realtime.delivery import DirectEmitManager, engineio_poll_install, orjson_module

_server: list[socketio.AsyncServer] = []


def cors_origins():
    return "*" if settings.CORS_ALLOW_ALL_ORIGINS else list(settings.CORS_ALLOWED_ORIGINS)


class RedisDirectEmitManager(socketio.AsyncRedisManager, DirectEmitManager):
    """Redis pub/sub across processes; this process's own copies sent the cheap way.

    `AsyncPubSubManager.emit` publishes, then delivers locally through `super().emit`,
    which this base order resolves to `DirectEmitManager.emit`.
    """


def client_manager() -> socketio.AsyncManager:
    """The Redis pub/sub manager when processes share the work, else a local one."""
    if not settings.REDIS_URL:
        return DirectEmitManager()
    return RedisDirectEmitManager(settings.REDIS_URL, channel=f"{settings.REDIS_PREFIX}socketio")


def server_build() -> socketio.AsyncServer:
    """Create this process's server (once); connects nothing."""
    if not _server:
        engineio_poll_install()
        _server.append(
            socketio.AsyncServer(
                async_mode="asgi",
                client_manager=client_manager(),
                json=orjson_module,
                cors_allowed_origins=cors_origins(),
                max_http_buffer_size=settings.MAX_PACKET_BYTES,
                ping_interval=25,
                ping_timeout=20,
            )
        )
        backpressure_install(
            _server[0],
            max_outbound_bytes=settings.MAX_OUTBOUND_BYTES,
            max_decode_packets=settings.MAX_PENDING_EVENTS,
            on_refusal=lambda reason: metrics.socket_cut(reason=reason),
        )
    return _server[0]


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
