"""Coalesced `online_users`: at most one per room per `PRESENCE_COALESCE_MS`, always ending on the true list.

Why. Every join and leave sends the room's whole list to every member, so filling a room
of N members costs O(N²) deliveries (500 joins: 125,000 copies). Here a change in a quiet
room is sent at once (leading edge, with the list the change returned, so a lone join's
`online_users` still reaches everyone, the joiner included, before its ack). Changes that
follow within the interval only mark the room; when the interval ends the list is read
from the state (`state().room_online`), not taken from any of the changes, and sent once,
and another interval starts. A room quiet for a whole interval is forgotten. Filling a room
then costs about N × (fill time ÷ interval) copies instead of N².

What a client sees. The last `online_users` after a burst is the state after the burst's
last change, and every member present at that moment receives it; the lists in between
may be skipped. A joiner inside an interval gets its ack first and the list naming it at
most one interval later, after any other broadcast sent in between (a message sent right
after its join may arrive before that list). `PRESENCE_COALESCE_MS=0` sends every change
at once with its own list, as before.

Caveats.
* Per process. Each process coalesces the changes of its own sockets; with `REDIS_URL`
  the list is read from the shared state, so each process's last emit is true as of its
  read. As without coalescing, two processes' reads and publishes can still cross (one
  reads, the other changes, reads and publishes, then the first publishes); the next
  change in the room corrects it.
* A room whose last member left: its deferred list is `[]` and goes to nobody (the room's
  channel is empty); the entry is dropped after that interval, so nothing is held for
  rooms that are gone.
* Shutdown. `presence_flush` (called by `realtime.events.sockets_close` after every socket's
  clean-up, before the server and the shared state are closed) cancels every pending interval and sends the pending rooms' lists
  at once, so the members served by other processes see this process's sockets leave.
* Emit failures in the deferred send are logged and end that room's interval; the next
  change starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

from realtime.state import state

logger = logging.getLogger(__name__)

Emit = Callable[[str, list[str]], Awaitable[None]]


class RoomWindow:
    """One room's open interval: whether a change is waiting, and the task that ends it."""

    __slots__ = ("dirty", "task")

    def __init__(self) -> None:
        self.dirty = False
        self.task: asyncio.Task | None = None


class PresenceCoalescer:
    def __init__(self, *, interval: float, emit: Emit) -> None:
        self.interval = interval
        self.emit = emit
        self.windows: dict[str, RoomWindow] = {}

    async def changed(self, *, room_id: str, online: list[str]) -> None:
        """The room's presence just became `online`: send it now, or once the interval ends."""
        if self.interval <= 0:
            await self.emit(room_id, online)
            return
        window = self.windows.get(room_id)
        if window is not None:
            window.dirty = True
            return
        window = self.windows[room_id] = RoomWindow()
        window.task = asyncio.get_running_loop().create_task(self.window_run(room_id=room_id, window=window))
        await self.emit(room_id, online)

    async def window_run(self, *, room_id: str, window: RoomWindow) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                if not window.dirty:
                    return
                window.dirty = False
                await self.emit(room_id, await state().room_online(room_id=room_id))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("deferred online_users of room %s failed", room_id)
        finally:
            if self.windows.get(room_id) is window:
                del self.windows[room_id]

    async def flush(self) -> None:
        """Close every interval now; send the list of each room with a change waiting."""
        windows, self.windows = self.windows, {}
        for window in windows.values():
            window.task.cancel()
        await asyncio.gather(*(w.task for w in windows.values()), return_exceptions=True)
        for room_id, window in windows.items():
            if window.dirty:
                await self.emit(room_id, await state().room_online(room_id=room_id))


_coalescer: list[PresenceCoalescer] = []


def presence_coalescer(*, emit: Emit) -> PresenceCoalescer:
    """This process's coalescer (made on first use, with `PRESENCE_COALESCE_MS` then)."""
    if not _coalescer:
        _coalescer.append(PresenceCoalescer(interval=settings.PRESENCE_COALESCE_MS / 1000, emit=emit))
    return _coalescer[0]


async def presence_flush() -> None:
    """Shutdown hook: send what is pending (see the module docstring)."""
    if _coalescer:
        await _coalescer[0].flush()
