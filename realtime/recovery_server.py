"""Connection state recovery on python-socketio: the server and manager overrides.

python-socketio 5.18 has no connection state recovery (see `realtime.recovery` for the
protocol). These classes add it, on top of a `RecoveryLog`:

* `RecoveringServer._handle_connect`: a CONNECT carrying `{pid, offset}` of a saved session
  whose room log still reaches back to `offset` is a recovery: the socket gets its old sid
  back (`RecoveryManagerMixin.pre_connect`); every other CONNECT is an ordinary new
  connection with a new pid (never an error);
* `RecoveringServer._send_packet`: the CONNECT answer is `{sid, pid}`. For a recovery, the
  socket is first put back (the application's `restore` puts it in its room, with presence)
  and sent what it missed, before that answer, as Node does (socket.io-client buffers
  events received before CONNECT and handles them before its `connect` event);
* `RecoveringServer.emit`: an emit addressed with `room=` (a room broadcast, without a
  callback) is logged and carries its offset as its last argument; `to=` (one socket), acks
  and callbacks carry none and are never replayed (a WebRTC relay must not be replayed to
  a socket that is no longer in the call);
* `RecoveringServer._handle_disconnect`: a socket whose transport was lost (transport close
  or error, ping timeout, an engine.io-level close; Node's list minus its server-side
  reasons) has its session saved once the application's disconnect handler has finished
  its clean-up. A client that says goodbye (Socket.IO DISCONNECT), or a server that
  disconnects a socket, saves nothing.

Ordering. A client keeps the LAST offset it handled, so every process must deliver a room's
broadcasts in the order of their offsets. In one process a room's logged emits are
serialised (`_room_lock`: append, then deliver). With `REDIS_URL`,
`OrderedRedisManagerMixin` logs and publishes each room broadcast in one Redis script on the
room's channel and every process with members there delivers it from its subscription, in
channel order. While a recovering
socket is replayed to, the room broadcasts addressed to it are held back
(`RecoveryManagerMixin.emit`, the local delivery of every process) and sent after the
replay, minus those the replay already carried (same offset number); copies of replayed
broadcasts still on their way from the subscription are dropped (`floors`).

Private hooks of python-socketio (`_handle_connect`, `_handle_disconnect`,
`_handle_eio_disconnect`, `_send_packet`, the manager's `pre_connect` body) are overridden:
the extension `recovery` of `chillout_project.tunings`. On a python-socketio version they
were not checked against, `realtime.server` builds the plain server instead (recovery off,
one warning and `chillout_library_tuning{name="recovery",active="0"}`; clients reconnect
as new sockets and reload the history); tests/realtime/test_recovery_server.py fails when
the library changes under them.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import socketio
from bidict import ValueDuplicationError
from engineio import base_server as eio_base
from socketio import packet

from realtime.recovery import LoggedEvent, Offset, RecoveryLog, RecoverySession, offset_parse


RECOVERABLE_REASONS = frozenset(
    {
        eio_base.BaseServer.reason.TRANSPORT_CLOSE,
        eio_base.BaseServer.reason.TRANSPORT_ERROR,
        eio_base.BaseServer.reason.PING_TIMEOUT,
    }
)

Restore = Callable[[str, RecoverySession], Awaitable[None]]
Snapshot = Callable[[str], Awaitable[RecoverySession]]
LogRoom = Callable[[str], "str | None"]


def pid_new() -> str:
    """A private session id, as Node's (20 random bytes, base64)."""
    return base64.b64encode(secrets.token_bytes(20)).decode()


@dataclass
class _Recovery:
    """A CONNECT being answered: its pid and, for a recovery, what to give back."""

    pid: str
    session: RecoverySession | None = None
    offset: str | None = None
    missed: list[LoggedEvent] | None = None


class RecoveryManagerMixin:
    """Local delivery side: restored sids, held-back and already-replayed deliveries.

    Put it right before the class that delivers to this process's sockets, and after a
    pub/sub manager, so that emits from other processes pass through it too:
    `class M(RoomChannelsMixin, RecoveryManagerMixin, DirectEmitManager)`, or
    `class M(RecoveryManagerMixin, DirectEmitManager)` for one process.
    """

    def recovery_init(self) -> None:
        self.sid_wanted: dict[str, str] = {}  # eio_sid -> sid to give back
        self.held: dict[str, list[tuple[str, list]]] = {}  # sid -> held (event, args), during a replay
        self.floors: dict[str, Offset] = {}  # sid -> last offset replayed to it, after a replay

    async def pre_connect(self, eio_sid, namespace):
        wanted = self.sid_wanted.pop(eio_sid, None)
        if wanted is None or self.is_sid_room(namespace, wanted):
            return await super().pre_connect(eio_sid, namespace)
        # python-socketio 5.18.1 BaseManager.pre_connect, with the sid given instead of generated.
        try:
            self.basic_enter_room(wanted, namespace, None, eio_sid=eio_sid)
        except ValueDuplicationError:
            return None
        self.basic_enter_room(wanted, namespace, wanted, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(wanted)
        return wanted

    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        """Local delivery, except for a sid being replayed to (its copy is held) and for a
        sid that was replayed this very broadcast already (it arrives late from pub/sub)."""
        target = to or room
        if (self.held or self.floors) and callback is None and namespace in self.rooms:
            args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
            skipped = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
            extra = [sid for sid, _ in self.get_participants(namespace, target)
                     if sid not in skipped and self._recovery_intercepts(sid, event, args)]  # fmt: skip
            if extra:
                skip_sid = [*(sid for sid in skipped if sid is not None), *extra]
        return await super().emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
        )

    def _recovery_intercepts(self, sid: str, event: str, args: list) -> bool:
        held = self.held.get(sid)
        if held is not None:
            held.append((event, args))
            return True
        floor = self.floors.get(sid)
        offset = offset_parse(args[-1]) if args and floor is not None else None
        if offset is None:
            return False
        if offset.epoch == floor.epoch and offset.n <= floor.n:
            return True
        del self.floors[sid]  # deliveries are in offset order: no older one can follow
        return False

    async def disconnect(self, sid, namespace, **kwargs):
        self.floors.pop(sid, None)
        return await super().disconnect(sid, namespace, **kwargs)


class OrderedRedisManagerMixin:
    """With `REDIS_URL`: a room broadcast is logged and published by one Redis script on the
    room's channel, and every process serving a member of the room, the emitting one
    included, delivers it from its subscription (`realtime.pubsub.RoomChannelsMixin`).

    Redis runs scripts one at a time and a process's subscriber handles messages one by
    one, so every process delivers a room's broadcasts in the order of their offsets (a
    local delivery first and a publish after would not). The emitter waits until its own
    subscriber has delivered it, so its sender still gets the broadcast before its ack.
    Put it first: `class M(OrderedRedisManagerMixin, RoomChannelsMixin, RecoveryManagerMixin,
    DirectEmitManager)`.
    """

    def ordered_init(self, log) -> None:
        self.ordered_log = log

    async def broadcast_logged(self, *, event: str, args: list, room: str, log_room: str, skip_sids: list[str]) -> None:
        async def publish(channel: str, message) -> None:
            await self.ordered_log.event_append_publish(
                room_id=log_room, event=event, args=args, skip_sids=skip_sids, channel=channel, message=message
            )

        await self.room_broadcast_ordered(room=room, event=event, skip_sids=skip_sids, publish=publish)


class RecoveringServer(socketio.AsyncServer):
    """An `AsyncServer` with connection state recovery (namespace `/` only).

    `restore(sid, session)` puts a recovered socket back in its room (with the app's
    presence); `snapshot(sid)` says, when a socket's transport is lost and before the app's
    disconnect handler runs, what to give back. Both default to python-socketio's rooms.
    `log_room(room)` names the log a broadcast to Socket.IO room `room` goes to (the
    session's `room_id` names the same log), or None for a room whose broadcasts are not
    logged (sockets' own rooms, internal ones); by default every room is its own log.
    """

    def __init__(
        self,
        *args,
        recovery_log: RecoveryLog,
        restore: Restore | None = None,
        snapshot: Snapshot | None = None,
        log_room: LogRoom | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.manager, RecoveryManagerMixin):
            raise TypeError("the client manager must include RecoveryManagerMixin")
        self.manager.recovery_init()
        if isinstance(self.manager, OrderedRedisManagerMixin):
            self.manager.ordered_init(recovery_log)
        self.recovery_log = recovery_log
        self.restore = restore or self._rooms_restore
        self.snapshot = snapshot or self._rooms_snapshot
        self.log_room = log_room or (lambda room: room)
        self._connecting: dict[str, _Recovery] = {}  # eio_sid -> CONNECT being answered
        self._pids: dict[str, str] = {}  # sid -> pid, of connected sockets
        self._room_locks: dict[str, list] = {}  # room -> [lock, holders and waiters]

    # --- emit: offsets on room broadcasts --------------------------------------------------

    async def emit(self, event, data=None, to=None, room=None, skip_sid=None, namespace=None, callback=None,
                   ignore_queue=False, volatile=False):  # fmt: skip
        """As `AsyncServer.emit`; a room broadcast (`room=` one room, no callback, not
        `volatile`, JSON arguments) is logged and carries its offset as its last argument. `volatile` is Node's flag: an
        event not worth replaying (e.g. `typing: true`)."""
        logged = isinstance(room, str) and to is None and callback is None and not volatile and (namespace or "/") == "/"
        log_room = self.log_room(room) if logged else None
        if log_room is None:
            return await super().emit(event, data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                                      callback=callback, ignore_queue=ignore_queue)  # fmt: skip
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        skips = skip_sid if isinstance(skip_sid, list) else ([] if skip_sid is None else [skip_sid])
        if isinstance(self.manager, OrderedRedisManagerMixin) and not ignore_queue:
            await self.manager.broadcast_logged(event=event, args=args, room=room, log_room=log_room, skip_sids=skips)
            return
        async with self._room_lock(room):
            offset = await self.recovery_log.event_append(room_id=log_room, event=event, args=args, skip_sids=skips)
            await super().emit(event, (*args, offset), room=room, skip_sid=skip_sid, namespace=namespace,
                               ignore_queue=ignore_queue)  # fmt: skip

    def _room_lock(self, room: str) -> _RoomLock:
        return _RoomLock(self._room_locks, room)

    # --- connect: restore ---------------------------------------------------------------------

    async def _handle_connect(self, eio_sid, namespace, data):
        namespace = namespace or "/"
        recovery = await self._recovery_find(namespace, data)
        self._connecting[eio_sid] = recovery
        if recovery.session is not None:
            self.manager.sid_wanted[eio_sid] = recovery.session.sid
        try:
            await super()._handle_connect(eio_sid, namespace, data)
        finally:
            self._connecting.pop(eio_sid, None)
            self.manager.sid_wanted.pop(eio_sid, None)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and namespace == "/":
            self._pids[sid] = recovery.pid

    async def _recovery_find(self, namespace: str, data) -> _Recovery:
        """A recovery if `data` names a saved session whose room log reaches back to its offset."""
        pid, offset = (data.get("pid"), data.get("offset")) if isinstance(data, dict) else (None, None)
        if namespace != "/" or not isinstance(pid, str) or not isinstance(offset, str):
            return _Recovery(pid=pid_new())
        session = await self.recovery_log.session_take(pid=pid)
        if session is None:
            return _Recovery(pid=pid_new())
        missed: list[LoggedEvent] | None = []
        if session.room_id is not None:
            missed = await self.recovery_log.events_since(room_id=session.room_id, offset=offset)
        if missed is None:
            return _Recovery(pid=pid_new())
        return _Recovery(pid=pid, session=session, offset=offset, missed=missed)

    async def _send_packet(self, eio_sid, pkt):
        recovery = self._connecting.get(eio_sid)
        if recovery is not None and pkt.packet_type == packet.CONNECT and isinstance(pkt.data, dict):
            if recovery.session is not None and pkt.data.get("sid") != recovery.session.sid:
                recovery.pid = pid_new()  # its old sid could not be given back: not a recovery
            pkt.data = {**pkt.data, "pid": recovery.pid}
            if recovery.session is not None and pkt.data["sid"] == recovery.session.sid:
                try:
                    await self._recovery_replay(eio_sid, recovery)
                except Exception:
                    # Not put back (the database down while the room is joined again): an
                    # ordinary connection with its old sid; its next event joins the room.
                    self.logger.exception("could not restore %s; connecting it afresh", recovery.session.sid)
                    recovery.pid = pkt.data["pid"] = pid_new()
        await super()._send_packet(eio_sid, pkt)

    async def _recovery_replay(self, eio_sid: str, recovery: _Recovery) -> None:
        """Put the socket back, then send what it missed, then what was held meanwhile."""
        session = recovery.session
        self.manager.held[session.sid] = []
        try:
            await self.restore(session.sid, session)
            replay = list(recovery.missed)
            if session.room_id is not None:
                since = replay[-1].offset if replay else recovery.offset
                more = await self.recovery_log.events_since(room_id=session.room_id, offset=since)
                if more is None:  # trimmed past `since` in between: more than max_events came meanwhile
                    raise RuntimeError("the room's log no longer reaches back to the replay")
                replay += more
            for event in replay:
                if session.sid not in event.skip_sids:
                    await self._event_send(eio_sid, event.event, event.wire_args())
            last = offset_parse(replay[-1].offset if replay else recovery.offset)
            while held := self.manager.held[session.sid]:
                self.manager.held[session.sid] = []
                for event, args in held:
                    if not _replayed(args, last):
                        await self._event_send(eio_sid, event, args)
                        sent = offset_parse(args[-1]) if args else None
                        last = sent if sent is not None else last
            if last is not None:
                self.manager.floors[session.sid] = last  # copies still on their way from pub/sub
        finally:
            self.manager.held.pop(session.sid, None)

    async def _event_send(self, eio_sid: str, event: str, args: list) -> None:
        await super()._send_packet(eio_sid, self.packet_class(packet.EVENT, namespace="/", data=[event, *args]))

    async def _rooms_restore(self, sid: str, session: RecoverySession) -> None:
        if session.room_id is not None:
            await self.enter_room(sid, session.room_id)

    async def _rooms_snapshot(self, sid: str) -> RecoverySession:
        rooms = [room for room in self.rooms(sid) if room != sid]
        return RecoverySession(sid=sid, room_id=rooms[0] if rooms else None)

    # --- disconnect: save -----------------------------------------------------------------------

    async def _handle_eio_disconnect(self, eio_sid, reason):
        """The Engine.IO connection ended. A `client disconnect` here is an engine.io CLOSE
        packet (a polling client's `engine.close()`), which Node counts as `transport close`;
        a Socket.IO DISCONNECT (the client's `socket.disconnect()`) has already disconnected
        the namespace by then and saves nothing."""
        if reason == self.reason.CLIENT_DISCONNECT:
            reason = self.reason.TRANSPORT_CLOSE
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_disconnect(self, eio_sid, namespace, reason=None):
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        pid = self._pids.pop(sid, None) if namespace == "/" and sid is not None else None
        session = None
        if pid is not None and reason in RECOVERABLE_REASONS and self.manager.is_connected(sid, namespace):
            session = await self.snapshot(sid)
        await super()._handle_disconnect(eio_sid, namespace, reason)
        if session is not None:
            await self.recovery_log.session_save(pid=pid, session=session)

    async def disconnect(self, sid, namespace=None, ignore_queue=False):
        if (namespace or "/") == "/":
            self._pids.pop(sid, None)
        await super().disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)


def _replayed(args: list, last) -> bool:
    """True if a held event is a room broadcast the replay already carried."""
    held = offset_parse(args[-1]) if args else None
    return held is not None and last is not None and held.epoch == last.epoch and held.n <= last.n


class _RoomLock:
    """`async with`: one room's logged emits of this process, one at a time (FIFO). A room's
    entry is dropped when nobody holds or waits for its lock, so the dict stays as small as
    the rooms being emitted to right now."""

    def __init__(self, locks: dict[str, list], room: str) -> None:
        self.locks, self.room = locks, room

    async def __aenter__(self) -> None:
        entry = self.locks.setdefault(self.room, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._leave(entry)
            raise

    async def __aexit__(self, *exc) -> None:
        entry = self.locks[self.room]
        entry[0].release()
        self._leave(entry)

    def _leave(self, entry: list) -> None:
        entry[1] -= 1
        if entry[1] == 0:
            self.locks.pop(self.room, None)
