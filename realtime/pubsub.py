"""Emits across processes with `REDIS_URL`: one Redis channel per room, one per process.

python-socketio's `AsyncRedisManager` publishes every emit on one channel, so every
process receives and decodes every emit of every room, and delivers it to nobody when it
serves no member. `RoomChannelsMixin` does what Centrifugo and Phoenix PubSub do instead:

* a room emit is published on the room's channel (`<prefix>sio:r:<room>`), and a process
  is subscribed to that channel exactly while it serves at least one member of the room
  (subscribed on the first local `enter_room`, unsubscribed after the last local leave or
  disconnect). A process pays nothing for the rooms it has no member in;
* a process has one channel of its own (`<prefix>sio:n:<node>`) for emits to one socket
  (a relay, `call_participants`): the socket's binding in the shared state says which
  process serves it (`node_of`); a socket served here is sent to directly, no Redis;
* one channel for the rare broadcast to a whole namespace (`<prefix>sio:all`).

The message is text: four header lines (origin process, target sid or empty, the sids to
skip comma-separated, a token) and then the Socket.IO event as the JSON array `[event,
*args]`, encoded once by the emitter. The receiving process parses it once and delivers it
through the local manager after this mixin (`DirectEmitManager`: one encode for all of its
local members). `room_broadcast_ordered` lets the caller (the recovery log's Lua script)
publish a message whose JSON it completes itself, in the same script as the log append.

A room's subscription is changed under that room's lock (dropped when nobody holds or waits
for it), each time to what the room's local membership is *then*, and only when confirmed by
Redis (the listener sees the confirmation) does the subscriber count as subscribed: a join and a leave racing each other end on the state
membership says, and a member that has joined hears every emit published after its join.
Emits a process publishes for its own members are not delivered back to it (origin), except
the ordered ones (empty origin: every process delivers them from the channel, in order).

Relies on python-socketio's client-manager API (`rooms`, `enter_room`, `leave_room`,
`disconnect`, `get_participants`: what the library's own pub/sub managers build on) and
redis-py's asyncio `PubSub` (subscribing from one task while another reads): public
behaviour, so not a reach of `chillout_project.tunings`; tests/scale exercises it on the
locked versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

import orjson
from redis import asyncio as aioredis

from chillout_project import metrics
from realtime.delivery import orjson_module
from realtime.redis_pipe import redis_commands_create
from realtime.redis_pool import redis_client_create

logger = logging.getLogger(__name__)

CONFIRM_SECONDS = 5.0
"""How long a (un)subscribe waits for Redis's confirmation before going on (Redis lost)."""

ORDERED_WAIT_SECONDS = 5.0
"""How long an ordered broadcast waits for its own subscriber to deliver it."""

NodeOf = Callable[[str], Awaitable["str | None"]]
Message = Callable[[str], "tuple[str, str]"]


def _header(*, origin: str, target: str, skip: list[str], token: str) -> str:
    return f"{origin}\n{target}\n{','.join(skip)}\n{token}\n"


def _payload(event: str, args: list) -> str:
    return orjson_module.dumps([event, *args])


class RoomChannelsMixin:
    """The cross-process part of a client manager; put it right before the local delivery:
    `class M(RoomChannelsMixin, DirectEmitManager)` (see the module doc).

    `node_id()` names this process (its own channel); `node_of(sid)` the process serving a
    sid that is not served here (None if unknown); `is_room(name)` tells a room from a sid
    (a room name contains `:`, a sid never does: `realtime.channels`).
    """

    def channels_init(self, *, url: str, prefix: str, node_id: Callable[[], str], node_of: NodeOf,
                      is_room: Callable[[str], bool] = lambda name: ":" in name) -> None:  # fmt: skip
        self.redis_url = url
        self.channel_prefix = f"{prefix}sio:"
        self.node_id = node_id
        self.node_of = node_of
        self.is_room = is_room
        self._redis: aioredis.Redis | None = None
        self._pubsub = None
        self._subscribed: set[str] = set()  # room channels confirmed subscribed
        self._channel_locks: dict[str, list] = {}  # channel -> [lock, holders and waiters]
        self._confirmations: dict[tuple[str, str], list[asyncio.Future]] = {}
        self._delivered: dict[str, tuple[str, asyncio.Future]] = {}  # token -> (room, future)

    # --- channel names ------------------------------------------------------------------------

    def room_channel_name(self, room: str) -> str:
        return f"{self.channel_prefix}r:{room}"

    def node_channel_name(self, node: str) -> str:
        return f"{self.channel_prefix}n:{node}"

    def all_channel_name(self) -> str:
        return f"{self.channel_prefix}all"

    # --- start and stop -------------------------------------------------------------------------

    def initialize(self):
        super().initialize()
        self._redis = redis_client_create(self.redis_url, name=f"{self.channel_prefix}pubsub")
        self._pipe = redis_commands_create(self.redis_url, name=f"{self.channel_prefix}commands")
        self._pubsub = self._redis.pubsub()
        self._listener = self.server.start_background_task(self._listen)

    async def _listen(self) -> None:
        """Read every message of this process's channels and deliver it; reconnects by itself
        (redis-py subscribes again to the channels it had)."""
        await self._pubsub.subscribe(self.node_channel_name(self.node_id()), self.all_channel_name())
        delay = 0.5
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the Redis subscriber failed; retrying in %s s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if message is None:
                continue
            try:
                await self._message_handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("could not deliver a message from channel %s", message.get("channel"))

    async def _message_handle(self, message: dict) -> None:
        kind, channel = message["type"], message["channel"]
        if kind in ("subscribe", "unsubscribe"):
            waiters = self._confirmations.get((kind, channel))
            if waiters:
                waiter = waiters.pop(0)
                if not waiters:
                    del self._confirmations[(kind, channel)]
                if not waiter.done():
                    waiter.set_result(None)
            return
        if kind != "message":
            return
        origin, target, skip, token, payload = message["data"].split("\n", 4)
        room_prefix = self.channel_prefix + "r:"
        metrics.pubsub_received(kind="room" if channel.startswith(room_prefix) else "node")  # node: or all
        try:
            if origin == self.node_id():
                return
            event, *args = orjson.loads(payload)
            room = target or (channel[len(room_prefix):] if channel.startswith(room_prefix) else None)
            await super().emit(event, tuple(args), "/", room=room, skip_sid=skip.split(",") if skip else None)
        finally:
            waiter = self._delivered.pop(token, None) if token else None
            if waiter is not None and not waiter[1].done():
                waiter[1].set_result(None)

    # --- subscriptions ------------------------------------------------------------------------

    async def _confirmed(self, kind: str, channel: str, command: Callable[[], Awaitable]) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault((kind, channel), []).append(waiter)
        try:
            await command()
            async with asyncio.timeout(CONFIRM_SECONDS):
                await waiter
        except TimeoutError:
            logger.warning("Redis did not confirm %s %s within %s s", kind, channel, CONFIRM_SECONDS)
        finally:
            waiters = self._confirmations.get((kind, channel), [])
            if waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    self._confirmations.pop((kind, channel), None)

    async def room_channel_sync(self, room: str) -> None:
        """Subscribe to or drop the room's channel so that it matches whether this process
        serves a member of the room now."""
        if self._pubsub is None or not self.is_room(room):
            return
        channel = self.room_channel_name(room)
        lock = self._channel_locks.setdefault(channel, [asyncio.Lock(), 0])
        lock[1] += 1
        try:
            async with lock[0]:
                await self._channel_match(room, channel)
        finally:
            lock[1] -= 1
            if lock[1] == 0:
                del self._channel_locks[channel]

    async def _channel_match(self, room: str, channel: str) -> None:
        wanted = bool(self.rooms.get("/", {}).get(room))
        if wanted == (channel in self._subscribed):
            return
        if wanted:
            await self._confirmed("subscribe", channel, lambda: self._pubsub.subscribe(channel))
            self._subscribed.add(channel)
        else:
            self._subscribed.discard(channel)
            await self._confirmed("unsubscribe", channel, lambda: self._pubsub.unsubscribe(channel))
            self._waiters_release(room)
        metrics.pubsub_room_channels_set(count=len(self._subscribed))

    def _waiters_release(self, room: str) -> None:
        """Ordered broadcasts to a room whose channel was just dropped will not come back."""
        for token, (waited_room, future) in list(self._delivered.items()):
            if waited_room == room and not future.done():
                future.set_result(None)

    async def enter_room(self, sid, namespace, room, eio_sid=None):
        result = await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        if (namespace or "/") == "/":
            await self.room_channel_sync(room)
        return result

    async def leave_room(self, sid, namespace, room):
        result = await super().leave_room(sid, namespace, room)
        if (namespace or "/") == "/":
            await self.room_channel_sync(room)
        return result

    async def disconnect(self, sid, namespace, **kwargs):
        rooms = self.get_rooms(sid, namespace) if (namespace or "/") == "/" else []
        result = await super().disconnect(sid, namespace, **kwargs)
        for room in rooms:
            await self.room_channel_sync(room)
        return result

    async def close_room(self, room, namespace):
        result = await super().close_room(room, namespace)
        if (namespace or "/") == "/":
            await self.room_channel_sync(room)
        return result

    # --- emits ----------------------------------------------------------------------------------

    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        """Deliver to this process's sockets; publish where other processes may serve some."""
        target = to or room
        local_only = kwargs.pop("ignore_queue", False) or callback is not None or (namespace or "/") != "/"
        if local_only or self._pubsub is None:
            return await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                                      to=to, **kwargs)  # fmt: skip
        if target is not None and not self.is_room(target):
            if self.is_sid_room("/", target):
                return await super().emit(event, data, namespace, to=target, skip_sid=skip_sid, **kwargs)
            node = await self.node_of(target)
            if node is None:
                logger.info("emit %s to %s dropped: the socket is served by no process", event, target)
                return
            await self._publish(self.node_channel_name(node), event, data, target=target, skip_sid=skip_sid)
            return
        await super().emit(event, data, namespace, room=target, skip_sid=skip_sid, **kwargs)
        channel = self.all_channel_name() if target is None else self.room_channel_name(target)
        await self._publish(channel, event, data, target="", skip_sid=skip_sid)

    async def _publish(self, channel: str, event: str, data, *, target: str, skip_sid) -> None:
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        skip = [sid for sid in (skip_sid if isinstance(skip_sid, list) else [skip_sid]) if sid]
        message = _header(origin=self.node_id(), target=target, skip=skip, token="") + _payload(event, args)
        try:
            await self._pipe.call("PUBLISH", channel, message)
        except Exception:
            logger.exception("could not publish %s on %s", event, channel)

    async def room_broadcast_ordered(
        self, *, room: str, event: str, skip_sids: list[str], publish: Callable[[str, Message], Awaitable]
    ) -> None:
        """A room broadcast delivered by every process from the room's channel, this one
        included, in the order Redis publishes them. `publish(channel, message)` publishes
        `head + <the last argument as JSON> + tail`, where `message(args_json)` gives head and
        tail for the other arguments (the recovery log's script: the offset is the last one).
        When this process serves a member of the room, waits (at most `ORDERED_WAIT_SECONDS`)
        until its subscriber has delivered it, so that a sender gets it before its ack."""
        token = secrets.token_hex(8)
        channel = self.room_channel_name(room)
        waiter = None
        if channel in self._subscribed:
            waiter = asyncio.get_running_loop().create_future()
            self._delivered[token] = (room, waiter)
        header = _header(origin="", target="", skip=skip_sids, token=token) + "[" + orjson_module.dumps(event) + ","

        def message(args_json: str) -> tuple[str, str]:
            return header + args_json[1:-1] + ("," if args_json != "[]" else ""), "]"

        try:
            await publish(channel, message)
            if waiter is not None:
                try:
                    async with asyncio.timeout(ORDERED_WAIT_SECONDS):
                        await waiter
                except TimeoutError:
                    logger.warning("room broadcast %s to %s not delivered back within %s s", event, room,
                                   ORDERED_WAIT_SECONDS)  # fmt: skip
        finally:
            self._delivered.pop(token, None)

    async def channels_close(self) -> None:
        """At shutdown: stop listening and release the connections."""
        if self._pubsub is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            await self._pubsub.aclose()
            await self._pipe.close()
            await self._redis.aclose()
