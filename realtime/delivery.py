"""The cost of delivering one packet to one socket: what python-socketio does per copy, made cheaper.

`DirectEmitManager` (on `realtime.room_index.IndexedRoomsManager`: a disconnect costs the
socket's own rooms). python-socketio's room emit encodes the packet once, then creates one
asyncio task per recipient just to put it on that socket's queue, and waits for all of
them. Putting on an engine.io socket's queue (unbounded) never suspends, so the tasks buy
nothing: this manager awaits the sends one after the other, in recipient order. With a
callback (an ack per recipient) it defers to python-socketio unchanged. A manager that
spreads emits across processes (e.g. a Redis one) must inherit its local delivery from
this class to keep the saving.

It also frames the packet once: a single text packet (every JSON event) becomes one
websocket frame (`realtime.wire.text_frame`; server frames are unmasked, so the bytes are
the same for every recipient), and each recipient whose websocket can take it now gets it
written straight into its server connection (`realtime.backpressure.direct_write`: only
when nothing of that socket is queued or being sent, so its order holds; the outbound
meter and the slow-consumer cut apply as on the queue). Every other recipient — polling,
upgrading, closing, busy or paused sockets, servers without a `realtime.wire` — gets the
packet through engine.io's queue exactly as before. Binary packets always take the queue.

`engineio_poll_install()`. Each engine.io socket has a writer task that waits for its next
packet with `asyncio.wait_for(queue.get(), timeout)`; on Python 3.11 `wait_for` wraps the
`get()` in a new task, once per delivered packet. The replacement waits under
`asyncio.timeout` (a timer, no task) — for an upgraded websocket's writer, one lazy timer
per socket instead (`_WriterDeadline`) — and takes a packet already queued without waiting
at all; the behaviour (timeout → `QueueEmpty`, `None` ends the stream, the rest of the queue
drained in one go) is engine.io 4.15.1's `AsyncSocket.poll`, which is pinned — except that
a long-polling GET's response carries at most `polling_batch` packets (the rest waits for
the client's next GET, in order). engine.io sends the whole queue in one response, and
python-engineio's client refuses a payload of more than its `Payload.max_decode_packets`
(16 unless the client changed it) and drops every packet in it, silently: a burst of 17
packets lost an ack and 16 messages of a python-socketio client on long-polling.

`orjson_module`. The JSON module python-socketio and engine.io encode and decode packets
with: orjson, ~5–10× the standard library's speed. It falls back to the standard library
for the values orjson refuses (integers beyond 64 bits, lone surrogates, NaN literals from
a client), so every packet that was accepted before is accepted now. Output differs only in
that non-ASCII characters are sent as UTF-8 rather than `\\uXXXX` escapes: the same JSON.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import orjson
from engineio import async_socket, exceptions as eio_exceptions
from engineio import packet as eio_packet
from socketio import packet

from chillout_project import metrics
from realtime.backpressure import direct_write, direct_write_installed
from realtime.room_index import IndexedRoomsManager
from realtime.wire import text_frame


def _dumps(obj, **_options) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"))


def _loads(text):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


orjson_module = SimpleNamespace(dumps=_dumps, loads=_loads)


class DirectEmitManager(IndexedRoomsManager):
    async def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, **kwargs):
        """Send one encoded event to every participant of `room` (or to one sid); with the
        `direct_write` tuning off, python-socketio's own emit."""
        if callback is not None or namespace not in self.rooms or not direct_write_installed():
            return await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
            )
        if isinstance(data, tuple):
            data = list(data)
        elif data is not None:
            data = [data]
        else:
            data = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        encoded = self.server.packet_class(packet.EVENT, namespace=namespace, data=[event] + data).encode()
        eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in (encoded if isinstance(encoded, list) else [encoded])]
        frame, size = _frame_of(encoded)
        sockets = self.server.eio.sockets
        # The room may change while a send awaits (a socket closing): take the list first.
        recipients = [eio_sid for sid, eio_sid in self.get_participants(namespace, to or room) if sid not in skip]
        direct = 0
        for eio_sid in recipients:
            if frame is not None and (socket := sockets.get(eio_sid)) is not None and direct_write(socket, frame, size):
                direct += 1
                continue
            for eio_pkt in eio_packets:
                await self.server._send_eio_packet(eio_sid, eio_pkt)
        metrics.socket_copies_sent(direct=direct, queued=len(recipients) - direct)


def _frame_of(encoded) -> tuple[bytes | None, int]:
    """The websocket frame of an engine.io MESSAGE carrying `encoded` (a Socket.IO text
    packet) and that packet's size on the wire; (None, 0) for a binary packet."""
    if not isinstance(encoded, str):
        return None, 0
    try:
        payload = ("4" + encoded).encode()
    except UnicodeEncodeError:  # a lone surrogate: let the server refuse it as before
        return None, 0
    return text_frame(payload), len(payload)


class _WriterDeadline:
    """The websocket writer's wait timeout, as one timer per socket rather than one per wait.

    `asyncio.timeout` creates and cancels a timer for every packet the writer waits for
    (~10 % of a queued copy's CPU). Here a wait only notes when it started; the timer, armed
    by the first wait, fires at most once per timeout and then either re-arms itself for the
    current wait's remaining time, or, if that wait has lasted the whole timeout, cancels
    the waiting task (which `_poll` turns into `QueueEmpty`, as engine.io does). Only for the
    websocket writer (one waiter per socket); a polling GET keeps its own `asyncio.timeout`,
    since a client may hold several GETs waiting at once.
    """

    __slots__ = ("task", "since", "armed", "expired")

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.since: float | None = None
        self.armed = False
        self.expired = False

    async def get(self, queue: asyncio.Queue, timeout: float):
        loop = asyncio.get_running_loop()
        self.task, self.since, self.expired = asyncio.current_task(), loop.time(), False
        if not self.armed:
            self.armed = True
            loop.call_at(self.since + timeout, self._fire, loop, timeout)
        try:
            return await queue.get()
        except asyncio.CancelledError:
            if self.expired and self.task is not None:
                self.task.uncancel()
                raise TimeoutError() from None
            raise
        finally:
            self.task = self.since = None

    def _fire(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.armed = False
        if self.since is None:
            return  # not waiting: the next wait arms the timer again
        if loop.time() < self.since + timeout:
            self.armed = True
            loop.call_at(self.since + timeout, self._fire, loop, timeout)
        else:
            self.expired = True
            self.task.cancel()


def _writer_deadline(socket: async_socket.AsyncSocket) -> _WriterDeadline | None:
    """The writer's deadline if `socket` is an upgraded websocket (its writer is the only waiter)."""
    if getattr(socket, "chillout_ws", None) is None or not socket.upgraded:
        return None
    deadline = getattr(socket, "chillout_deadline", None)
    if deadline is None:
        deadline = socket.chillout_deadline = _WriterDeadline()
    return deadline


async def _poll(self: async_socket.AsyncSocket) -> list:
    """Wait for packets to send to the client (engine.io's `AsyncSocket.poll`, without a task)."""
    try:
        if self.queue.empty():
            timeout = self.server.ping_interval + self.server.ping_timeout
            if (deadline := _writer_deadline(self)) is not None:
                first = await deadline.get(self.queue, timeout)
            else:
                async with asyncio.timeout(timeout):
                    first = await self.queue.get()
        else:
            first = self.queue.get_nowait()
        self.queue.task_done()
    except (TimeoutError, asyncio.CancelledError):
        raise eio_exceptions.QueueEmpty() from None
    if first is None:
        return []
    packets = [first]
    limit = _polling_batch[0] if not self.upgraded else None
    while not self.queue.empty() and (limit is None or len(packets) < limit):
        pkt = self.queue.get_nowait()
        self.queue.task_done()
        if pkt is None:
            self.queue.put_nowait(None)
            break
        packets.append(pkt)
    return packets


_polling_batch = [16]


def engineio_poll_install(*, polling_batch: int = 16) -> None:
    """Replace engine.io's `AsyncSocket.poll`; a polling GET takes at most `polling_batch` packets."""
    _polling_batch[0] = polling_batch
    async_socket.AsyncSocket.poll = _poll
