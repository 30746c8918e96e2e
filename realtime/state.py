"""The shared real-time state: who is in which room, who is in which call, connections per IP.

Handlers never keep this state themselves; they go through `RealtimeState`, so that a
Redis-backed implementation can replace `InMemoryState` when several server processes
must act as one (contract §7), without touching a handler. Every method is async for
that reason, even though the in-memory one never awaits.

Each method is one atomic step: the in-memory implementation does not await inside a
method, so no other task can interleave with it; a Redis implementation must keep that
promise with MULTI/Lua. Between two calls, however, anything can happen, so callers must
not assume that what one call returned still holds at the next (see `realtime.actions`).

Presence is kept per connection (socket id), not per name: a name stays online while any
of its connections is in the room, and `online_users` lists distinct names in the order
they first came online. Python-socketio's own room membership is node-local and is never
used as the source of presence.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Binding:
    """The room a socket is in and the name it speaks as there."""

    room_id: str
    username: str


@dataclass(frozen=True)
class CallMember:
    sid: str
    username: str

    def wire(self) -> dict:
        return {"socketId": self.sid, "username": self.username}


class RealtimeState(abc.ABC):
    shared: bool = False
    """True when other processes see the same state (and need a heartbeat and a reaper)."""

    @abc.abstractmethod
    async def binding_get(self, *, sid: str) -> Binding | None:
        """The room and name `sid` is bound to, or None if it is in no room."""

    @abc.abstractmethod
    async def room_join(self, *, sid: str, room_id: str, username: str) -> list[str]:
        """Bind `sid` to the room as `username`, add it to presence; returns the room's online names.

        A socket is in one room at a time: callers leave the previous room first (with its
        presence update); a binding still left is replaced.
        """

    @abc.abstractmethod
    async def room_leave(self, *, sid: str) -> tuple[Binding | None, list[str]]:
        """Unbind `sid`, drop it from presence; returns what it left and who is still online there."""

    @abc.abstractmethod
    async def room_online(self, *, room_id: str) -> list[str]:
        """The room's online names now (as `room_join` returns them)."""

    @abc.abstractmethod
    async def call_join(self, *, room_id: str, sid: str, username: str) -> list[CallMember] | None:
        """Add `sid` to the room's call; returns the other members, or None if it was already in."""

    @abc.abstractmethod
    async def call_leave(self, *, room_id: str, sid: str) -> bool:
        """Remove `sid` from the room's call; False if it was not in it."""

    @abc.abstractmethod
    async def rooms_online_count(self) -> int:
        """How many rooms have at least one connection in them (for metrics)."""

    def rooms_online_known(self) -> int | None:
        """`rooms_online_count` as last learnt without asking (None: ask). For the gauge,
        set after every join and leave: a shared state returns what its join and leave
        scripts already told it rather than pay a round trip each time."""
        return None

    @abc.abstractmethod
    async def connection_acquire(self, *, ip: str, limit: int) -> bool:
        """Count one more connection from `ip`, unless it already has `limit` (0 = no limit)."""

    @abc.abstractmethod
    async def connection_release(self, *, ip: str) -> None:
        """Forget one connection from `ip` (after a successful `connection_acquire`)."""

    # A single process has no peers: the defaults below are what it needs of these.

    async def heartbeat(self) -> bool:
        """Tell the other processes this one is alive; False if they had given it up for dead."""
        return True

    async def dead_connections(self) -> AsyncIterator[str]:
        """The sids that processes found dead were serving, each handed to one caller only.

        The caller removes each one (`realtime.cluster`) with the effects of a disconnect.
        """
        return
        yield

    async def turn_take(self, *, name: str, seconds: float) -> bool:
        """True if this process should run the periodic job `name` now: once per `seconds`
        across every process sharing the state."""
        return True

    async def close(self) -> None:
        """At shutdown, after every socket has been disconnected: leave the shared state."""


class InMemoryState(RealtimeState):
    """The state of a single server process (the default, when `REDIS_URL` is unset)."""

    def __init__(self) -> None:
        self._bindings: dict[str, Binding] = {}
        # room -> username -> its sids; dicts keep the order in which names came online.
        self._presence: dict[str, dict[str, set[str]]] = {}
        # room -> sid -> username, in the order they joined the call.
        self._calls: dict[str, dict[str, str]] = {}
        self._connections_per_ip: dict[str, int] = {}

    async def binding_get(self, *, sid: str) -> Binding | None:
        return self._bindings.get(sid)

    async def rooms_online_count(self) -> int:
        return len(self._presence)

    async def room_join(self, *, sid: str, room_id: str, username: str) -> list[str]:
        self._presence_drop(sid)
        self._bindings[sid] = Binding(room_id=room_id, username=username)
        self._presence.setdefault(room_id, {}).setdefault(username, set()).add(sid)
        return list(self._presence[room_id])

    async def room_leave(self, *, sid: str) -> tuple[Binding | None, list[str]]:
        binding = self._presence_drop(sid)
        if binding is None:
            return None, []
        return binding, list(self._presence.get(binding.room_id, {}))

    async def room_online(self, *, room_id: str) -> list[str]:
        return list(self._presence.get(room_id, {}))

    def _presence_drop(self, sid: str) -> Binding | None:
        binding = self._bindings.pop(sid, None)
        if binding is None:
            return None
        names = self._presence.get(binding.room_id, {})
        sids = names.get(binding.username, set())
        sids.discard(sid)
        if not sids:
            names.pop(binding.username, None)
        if not names:
            self._presence.pop(binding.room_id, None)
        return binding

    async def call_join(self, *, room_id: str, sid: str, username: str) -> list[CallMember] | None:
        members = self._calls.setdefault(room_id, {})
        if sid in members:
            return None
        others = [CallMember(sid=other, username=name) for other, name in members.items()]
        members[sid] = username
        return others

    async def call_leave(self, *, room_id: str, sid: str) -> bool:
        members = self._calls.get(room_id, {})
        if members.pop(sid, None) is None:
            return False
        if not members:
            self._calls.pop(room_id, None)
        return True

    async def connection_acquire(self, *, ip: str, limit: int) -> bool:
        count = self._connections_per_ip.get(ip, 0)
        if limit and count >= limit:
            return False
        self._connections_per_ip[ip] = count + 1
        return True

    async def connection_release(self, *, ip: str) -> None:
        count = self._connections_per_ip.get(ip, 0) - 1
        if count > 0:
            self._connections_per_ip[ip] = count
        else:
            self._connections_per_ip.pop(ip, None)


_state: list[RealtimeState] = []
_factory: list[Callable[[], RealtimeState]] = [InMemoryState]


def state_factory_set(factory: Callable[[], RealtimeState]) -> None:
    """How this process's state is made (`realtime.composition`: in Redis with `REDIS_URL`)."""
    _factory[:] = [factory]
    _state.clear()


def state() -> RealtimeState:
    """This process's state, created on first use (never at import or build: a Redis client
    is only made when the server runs)."""
    if not _state:
        _state.append(_factory[0]())
    return _state[0]


def state_shared() -> bool:
    """Whether other processes share the state (and a heartbeat and a reaper are needed)."""
    return bool(settings.REDIS_URL)
