"""Connection state recovery: sessions of sockets that lost their transport, and each room's log.

Socket.IO v4's connection state recovery (Node socket.io >= 4.6; socket.io-client 4.8 speaks
it by itself) works like this on the wire:

* the server's CONNECT answer is `{sid, pid}`; `pid` is a secret session id;
* every room broadcast carries an offset string as its LAST argument; the client remembers
  the last one it processed;
* after losing its transport the client reconnects with `{pid, offset, ...auth}` in its
  CONNECT packet; if the server still knows the session it answers with the same `sid` and
  `pid` (which sets `socket.recovered` on the client), puts the socket back where it was
  and sends every broadcast it missed, in order, each with its offset.

This module is the storage half, with no Socket.IO in it: `RecoveryLog`, the session store
and the per-room log of broadcasts, in memory (`InMemoryRecoveryLog`, one process) or in
Redis (`realtime.recovery_redis.RedisRecoveryLog`, shared by every process). Both are
bounded: a session lives `window_seconds` after it is saved and is taken once; a room's log
keeps the events of the last `window_seconds`, at most `max_events` of them.

Offsets. `<epoch>:<ms>-<n>`: `n` counts the room's broadcasts one by one (1, 2, 3, ...),
`ms` is the append time in milliseconds (never going back within a log), and `epoch` is a
random token the log gets when it starts, so an offset of another room, or of an earlier
life of this room's log (expired, then started again), is never taken for one of this log.
Because `n` has no gaps, "the log still reaches back to the offset" is exact: it does when
the oldest event kept is the one right after the offset (or nothing came after it), even if
the offset's own event was trimmed long ago, so a client of a quiet room recovers. The log's
head (epoch and last `n`) lives as long as its newest event or the newest session saved for
the room, whichever is later, so "nothing was missed" can be answered after a quiet window.

Concurrency. Every method is one atomic step (the in-memory one never awaits; the Redis one
uses a Lua script or MULTI), and `event_append` hands out offsets in the order it is called
for a room: a caller that delivers a room's broadcasts in the order of their offsets (see
docs/recovery-design.md) gives each client a strictly increasing sequence.
"""

from __future__ import annotations

import abc
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Clock = Callable[[], float]
"""Seconds since the epoch (`time.time`); tests pass a clock they move by hand."""

_OFFSET = re.compile(r"([0-9a-f]{8}):([0-9]{1,15})-([0-9]{1,15})")


@dataclass(frozen=True)
class RecoverySession:
    """What a socket that lost its transport gets back: its sid, and the room and name it had."""

    sid: str
    room_id: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class LoggedEvent:
    """One logged room broadcast. `skip_sids` did not receive it and must not get it replayed."""

    offset: str
    event: str
    args: list
    skip_sids: tuple[str, ...] = ()

    def wire_args(self) -> list:
        """The event's arguments as sent: the offset is the last one."""
        return [*self.args, self.offset]


@dataclass(frozen=True)
class Offset:
    epoch: str
    ms: int
    n: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.ms}-{self.n}"


def offset_parse(text: object) -> Offset | None:
    """The parts of an offset this server issued, or None for anything else (never raises)."""
    if not isinstance(text, str):
        return None
    match = _OFFSET.fullmatch(text)
    if match is None:
        return None
    return Offset(epoch=match[1], ms=int(match[2]), n=int(match[3]))


def offset_seq(text: str) -> int:
    """The position of an offset in its room's log (to order and de-duplicate one room's events)."""
    parsed = offset_parse(text)
    if parsed is None:
        raise ValueError(f"not an offset: {text!r}")
    return parsed.n


def epoch_new() -> str:
    return secrets.token_hex(4)


class RecoveryLog(abc.ABC):
    """Sessions to restore and the broadcasts each room's sockets may have missed."""

    def __init__(self, *, window_seconds: float, max_events: int, clock: Clock = time.time) -> None:
        if window_seconds <= 0 or max_events <= 0:
            raise ValueError("window_seconds and max_events must be positive")
        self.window_seconds = window_seconds
        self.max_events = max_events
        self.clock = clock

    @abc.abstractmethod
    async def session_save(self, *, pid: str, session: RecoverySession) -> None:
        """Keep `session` under `pid` for `window_seconds` (replacing one already there).

        Also keeps the head of the session's room log alive that long, so that a client of
        a room where nothing happens can still be told it missed nothing.
        """

    @abc.abstractmethod
    async def session_take(self, *, pid: str) -> RecoverySession | None:
        """The session saved under `pid`, removed in the same step (a pid restores once);
        None if unknown or older than `window_seconds`."""

    @abc.abstractmethod
    async def event_append(
        self, *, room_id: str, event: str, args: Sequence, skip_sids: Sequence[str] = ()
    ) -> str:
        """Log one broadcast to `room_id` (JSON values only); returns its offset.

        Trims the room's log to the last `window_seconds` and `max_events`.
        """

    @abc.abstractmethod
    async def events_since(self, *, room_id: str, offset: str) -> list[LoggedEvent] | None:
        """Every event logged for `room_id` after `offset`, oldest first ([] if none).

        None when the log cannot say: the offset is malformed, of another room or another
        life of this log, beyond its end, or older than what the log still keeps.
        """

    async def close(self) -> None:
        """Release connections (at shutdown)."""


@dataclass
class _RoomLog:
    epoch: str
    until: float  # the log (its head) is forgotten after this time
    last_ms: int = 0
    last_n: int = 0
    events: deque = field(default_factory=deque)  # (ms, n, LoggedEvent), oldest first


class InMemoryRecoveryLog(RecoveryLog):
    """The recovery log of a single server process (no `REDIS_URL`).

    Memory is bounded by the live rooms and sessions: expired sessions and room logs are
    swept at most every quarter window, on the next call.
    """

    def __init__(self, *, window_seconds: float, max_events: int, clock: Clock = time.time) -> None:
        super().__init__(window_seconds=window_seconds, max_events=max_events, clock=clock)
        self._sessions: dict[str, tuple[RecoverySession, float]] = {}
        self._rooms: dict[str, _RoomLog] = {}
        self._next_sweep = 0.0

    async def session_save(self, *, pid: str, session: RecoverySession) -> None:
        now = self._now()
        until = now + self.window_seconds
        self._sessions[pid] = (session, until)
        log = self._room_log(session.room_id, now) if session.room_id is not None else None
        if log is not None:
            log.until = max(log.until, until)

    async def session_take(self, *, pid: str) -> RecoverySession | None:
        now = self._now()
        saved = self._sessions.pop(pid, None) if isinstance(pid, str) else None
        if saved is None or saved[1] < now:
            return None
        return saved[0]

    async def event_append(
        self, *, room_id: str, event: str, args: Sequence, skip_sids: Sequence[str] = ()
    ) -> str:
        now = self._now()
        log = self._room_log(room_id, now)
        if log is None:
            log = self._rooms[room_id] = _RoomLog(epoch=epoch_new(), until=now)
        log.last_ms = max(int(now * 1000), log.last_ms)
        log.last_n += 1
        offset = str(Offset(epoch=log.epoch, ms=log.last_ms, n=log.last_n))
        logged = LoggedEvent(offset=offset, event=event, args=list(args), skip_sids=tuple(skip_sids))
        log.events.append((log.last_ms, log.last_n, logged))
        log.until = max(log.until, now + self.window_seconds)
        self._trim(log, now)
        return offset

    async def events_since(self, *, room_id: str, offset: str) -> list[LoggedEvent] | None:
        now = self._now()
        parsed = offset_parse(offset)
        log = self._room_log(room_id, now)
        if parsed is None or log is None or parsed.epoch != log.epoch or parsed.n > log.last_n:
            return None
        self._trim(log, now)
        if parsed.n == log.last_n:
            return []
        if not log.events:
            return None
        first_n = log.events[0][1]
        start = parsed.n + 1 - first_n
        if start < 0:
            return None  # the events right after the offset were trimmed
        ms, _, _ = log.events[start]
        if ms < parsed.ms:
            return None  # not an offset of this log's history (as Redis's exclusive range sees it)
        return [logged for _, _, logged in list(log.events)[start:]]

    def _now(self) -> float:
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + self.window_seconds / 4
        return now

    def _room_log(self, room_id: str, now: float) -> _RoomLog | None:
        log = self._rooms.get(room_id)
        if log is not None and log.until < now:
            del self._rooms[room_id]
            return None
        return log

    def _trim(self, log: _RoomLog, now: float) -> None:
        oldest_ms = int((now - self.window_seconds) * 1000)
        while log.events and (len(log.events) > self.max_events or log.events[0][0] < oldest_ms):
            log.events.popleft()

    def _sweep(self, now: float) -> None:
        for pid in [pid for pid, (_, until) in self._sessions.items() if until < now]:
            del self._sessions[pid]
        for room_id in [room_id for room_id, log in self._rooms.items() if log.until < now]:
            del self._rooms[room_id]
        for log in self._rooms.values():
            self._trim(log, now)


def recovery_log_create(
    *, redis_url: str, prefix: str, window_seconds: float, max_events: int
) -> RecoveryLog:
    """The process's recovery log: in Redis when `redis_url` is set (shared by every
    process, so a socket can recover on another one), else in memory."""
    if not redis_url:
        return InMemoryRecoveryLog(window_seconds=window_seconds, max_events=max_events)
    from realtime.recovery_redis import RedisRecoveryLog

    return RedisRecoveryLog(url=redis_url, prefix=prefix, window_seconds=window_seconds, max_events=max_events)
