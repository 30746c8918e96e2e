"""`realtime`'s part of the composition root: the Socket.IO ASGI app, and what it registers.

`realtime_build()` is called once by `chillout_project.asgi.build_application`. It creates
the server, puts the handlers on it, and registers with `chillout_project.lifecycle` the
socket clean-up at shutdown, the turn-taking of periodic jobs across processes, and (with
`REDIS_URL`) the cluster loops. It starts nothing: no task, no connection; those start with
the process (`lifecycle.startup`).
"""

from __future__ import annotations

import socketio
from django.conf import settings

from chillout_project.lifecycle import shutdown_hook_add, turn_taker_set
from realtime.cluster import cluster_register
from realtime.events import events_register, sockets_close
from realtime.server import server_build
from realtime.sessions import sessions_install
from realtime.state import RealtimeState, state, state_factory_set


def redis_state_create() -> RealtimeState:
    """The state in Redis. A heartbeat lives 3/4 of DEAD_PROCESS_SECONDS and the reaper looks
    every 1/4 (`realtime.cluster`): a killed process's users are gone within DEAD_PROCESS_SECONDS.
    """
    from realtime.redis_state import RedisState

    return RedisState(
        url=settings.REDIS_URL, prefix=settings.REDIS_PREFIX, dead_after=settings.DEAD_PROCESS_SECONDS * 3 / 4
    )


async def turn_take(*, name: str, seconds: float) -> bool:
    return await state().turn_take(name=name, seconds=seconds)


def realtime_build() -> socketio.ASGIApp:
    if settings.REDIS_URL:
        state_factory_set(redis_state_create)
    sio = server_build()
    events_register(sio)
    sessions_install(sio)
    shutdown_hook_add(sockets_close)
    turn_taker_set(turn_take)
    cluster_register()
    return socketio.ASGIApp(sio, socketio_path="socket.io")
