"""Several server processes as one (with `REDIS_URL`): the heartbeat and the reaper.

Two background loops per process (and the Socket.IO manager's subscription), registered with
`chillout_project.lifecycle` by `cluster_register()` when the composition root builds
`realtime`, and so started with the process (on the first request or socket under Daphne):

* the heartbeat tells the others this process is alive, every quarter of
  `DEAD_PROCESS_SECONDS` (the key lives three quarters of it). If it finds it had been
  given up for dead (frozen longer than that, or Redis lost its data), the others may already have removed its sockets from
  presence and calls, so it disconnects them all: their clients reconnect and join again,
  and the state is right again;
* the reaper looks as often for processes whose heartbeat expired (kill -9, a lost
  machine) and removes each of their sockets exactly as a disconnect would
  (`actions.do_room_leave`): `online_users` to the room, and for a socket in a call the
  persisted "left the audio call" notice and `user_left_call`. Emits reach the room's
  clients on every process through the Socket.IO Redis manager.

So a killed process's users disappear within `DEAD_PROCESS_SECONDS` (its heartbeat's
remaining life, at most 3/4 of it, plus one reaper period, 1/4), plus the time to write the
notices.
Without `REDIS_URL` (`state_shared()` is False) nothing is registered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

from chillout_project.lifecycle import background_loop_add
from realtime import actions
from realtime.connections import Connection, connection_sids
from realtime.server import pubsub_start
from realtime.state import state, state_shared

logger = logging.getLogger(__name__)


def cluster_period() -> float:
    return settings.DEAD_PROCESS_SECONDS / 4


async def every_period(*, what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` every `cluster_period()` until cancelled; an error is logged, and the loop goes on.

    A cancellation that arrives inside a step can be swallowed by a library on the way
    (seen at shutdown while a reaper step was emitting): the task's `cancelling()` count
    still says it was asked to stop, so the loop checks it after every step.
    """
    task = asyncio.current_task()
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s failed", what)
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(cluster_period())


async def heartbeat_step() -> None:
    """Refresh the heartbeat (and with it the rooms-online gauge, which joins and leaves on
    the other processes change too)."""
    if await state().heartbeat():
        await actions.rooms_online_publish()
        return
    logger.error(
        "this process was taken for dead (no heartbeat for %s s): disconnecting its %d socket(s) so that they rejoin",
        settings.DEAD_PROCESS_SECONDS,
        len(connection_sids()),
    )
    await actions.do_sockets_disconnect()


async def reaper_step() -> None:
    """Remove every socket of the dead processes this one claimed, one at a time.

    The sockets are not served here, so there is no `Connection` of this process for them:
    a stand-in carries the sid (`media_base` is unused, the notices have no media URL).
    One failing socket (the database down while its notice is stored) is logged and the
    others still go.
    """
    reaped = 0
    async for sid in state().dead_connections():
        try:
            await actions.do_room_leave(connection=Connection(sid=sid, ip=None, media_base=settings.PUBLIC_URL))
        except Exception:
            logger.exception("could not remove %s of a dead process", sid)
        reaped += 1
    if reaped:
        logger.warning("removed %d socket(s) of dead processes", reaped)


async def heartbeat_loop() -> None:
    await every_period(what="heartbeat", step=heartbeat_step)


async def reaper_loop() -> None:
    await every_period(what="reaping dead processes", step=reaper_step)


def cluster_register() -> None:
    """Register the loops when other processes share the state (by `realtime.composition`)."""
    if not state_shared():
        return
    background_loop_add(name="chillout-pubsub", loop=pubsub_start)
    background_loop_add(name="chillout-heartbeat", loop=heartbeat_loop)
    background_loop_add(name="chillout-reaper", loop=reaper_loop)
