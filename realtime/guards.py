"""Per-socket bounds on waiting work and unsent data (contract §6), as small parts.

A client must not be able to make the server hold unbounded work or memory for it. Two
places fill up when a client misbehaves, and each gets a counter here:

* **Inbound** (`EventBacklog`): python-socketio starts one task per received event
  (`async_handlers`), and each waits for the socket's lock (realtime/connections.py), so
  a client that sends faster than its events are handled piles up tasks without bound.
  The backlog admits at most `MAX_PENDING_EVENTS` waiting or running events per socket;
  the first one beyond is refused and the socket is to be disconnected. Counting happens
  when the task starts, before the lock: a polling POST starts at most
  `Payload.max_decode_packets` tasks before any runs, so the count lags by no more.

* **Outbound** (`OutboundMeter`): data for a socket waits in engine.io's per-socket queue
  until the transport takes it. The meter counts bytes put on that queue minus bytes the
  transport has taken (a polling GET's response; a websocket `send` that completed), so it
  is the socket's unsent data; past `MAX_OUTBOUND_BYTES` the socket is a slow consumer.
  This only measures what the server has not yet written if `await send()` waits while
  the connection's write buffer is full:

  - uvicorn (every `--ws` implementation of 0.54) waits: its ASGI `send` awaits the
    protocol's `writable` event, cleared by asyncio's `pause_writing()` above the
    transport's 64 KiB high-water mark;
  - Daphne does not: `send` hands the frame to Twisted, whose transport buffer grows
    without bound (what let one reader that stopped reading grow the server by ~800 MB in
    10 s). `TransportDrain` gives Daphne the same behaviour: registered as the streaming
    producer of the websocket's Twisted transport (public Twisted API), it is paused
    when the transport buffers more than 64 KiB and resumed when it has drained; the
    metered `send` awaits it after handing over each frame.

  So under both servers the transport holds at most ~64 KiB plus one frame, and the rest
  waits in engine.io's queue, where the meter sees it.

Reaching the server's connection object from an ASGI `send` callable is server-specific
and private (`daphne_protocol`, `uvicorn_protocol`): each is a reach of
`chillout_project.tunings` (`daphne_transport`, `uvicorn_transport`), returns None on a
version it was not checked against or for anything else, and has a unit test that fails
loudly when the shape changes. Without them the limits still hold (refused events; dropped
packets and an engine.io close); only the TCP connection waits for the server's own
ping timeout to be torn down.

Nothing here imports Django or touches a socket; the wiring is in realtime/ (see
/work/notes/hardening-design.md).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import orjson
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from chillout_project.tunings import reach_active

CONTROL_PACKET_BYTES = 1  # an engine.io packet without data (ping, pong, noop, close)


class EventBacklog:
    """Events of one socket started and not finished: at most `limit` (0 = no limit).

    `admit()` before waiting for the socket's lock, `done()` when the event is over (only
    after an admitted one). The first refusal closes the backlog: every later event is
    refused too, since the socket is being disconnected.
    """

    __slots__ = ("limit", "waiting", "overflowed", "cut")

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self.overflowed = False
        self.cut = False  # set by the caller once it has started the disconnect

    def admit(self) -> bool:
        if self.overflowed:
            return False
        if self.limit > 0 and self.waiting >= self.limit:
            self.overflowed = True
            return False
        self.waiting += 1
        return True

    def done(self) -> None:
        self.waiting -= 1


class OutboundMeter:
    """Bytes queued for one socket and not yet taken by its transport (limit 0 = none).

    `queued(size)` before a packet is put on the socket's queue: False means the packet
    would take the unsent data past the limit, so it must be dropped and the socket closed
    as a slow consumer; from then on `tripped` stays set and every packet is refused.
    `sent(size)` when the transport has taken a packet.
    """

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.unsent = 0
        self.tripped = False

    def queued(self, size: int) -> bool:
        if self.tripped:
            return False
        if self.limit > 0 and self.unsent + size > self.limit:
            self.tripped = True
            return False
        self.unsent += size
        return True

    def sent(self, size: int) -> None:
        self.unsent = max(0, self.unsent - size)


def packet_bytes(data: object) -> int:
    """The bytes an engine.io packet's data takes on the wire (UTF-8 for text).

    Text is measured exactly: by its length when ASCII (no copy), else by its UTF-8
    encoding. Control packets without data count as one byte; a dict (the handshake's
    OPEN packet) by a rough constant, as it is small and sent once.
    """
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    if data is None:
        return CONTROL_PACKET_BYTES
    return 256


def json_bytes(value: object) -> int:
    """The size of `value` as compact JSON in UTF-8: what a relayed WebRTC body costs on the
    wire (`MAX_RELAY_BYTES`). orjson, ~1 ms per MB; values orjson refuses (integers beyond
    64 bits) are measured by the standard library."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        import json

        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


@implementer(IPushProducer)
class TransportDrain:
    """Lets a coroutine wait until a Twisted transport's write buffer has drained.

    Register it with `transport.registerProducer(drain, True)`: Twisted calls
    `pauseProducing()` when the transport buffers more than its `bufferSize` (64 KiB),
    `resumeProducing()` once the buffer is empty, and `stopProducing()` when the
    connection is lost. Under Daphne the reactor runs on the asyncio loop, so these calls
    come from the loop's thread.

    A transport takes one producer. Daphne's websocket keeps the upgraded HTTP channel
    (`twisted.web.http.HTTPChannel`) registered as its streaming producer, so the drain
    takes its place and passes every call on to it (`forward`): the channel still pauses
    and resumes as before.
    """

    __slots__ = ("_paused", "stopped", "forward")

    def __init__(self, *, forward: IPushProducer | None = None) -> None:
        # The event exists only while paused: an idle websocket holds no `asyncio.Event`
        # (~760 bytes with its waiters' deque), and most sockets are never paused.
        self._paused: asyncio.Event | None = None
        self.stopped = False
        self.forward = forward

    def pauseProducing(self) -> None:  # noqa: N802 (Twisted's interface)
        if not self.stopped and self._paused is None:
            self._paused = asyncio.Event()
        if self.forward is not None:
            self.forward.pauseProducing()

    def resumeProducing(self) -> None:  # noqa: N802
        self._release()
        if self.forward is not None:
            self.forward.resumeProducing()

    def stopProducing(self) -> None:  # noqa: N802
        self.stopped = True
        self._release()
        if self.forward is not None:
            self.forward.stopProducing()

    def _release(self) -> None:
        """Wake every waiter (each holds the event) and forget the event."""
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.set()

    @property
    def paused(self) -> bool:
        return self._paused is not None

    async def wait(self) -> None:
        """Return once the transport takes more data; `ConnectionError` if it is gone."""
        paused = self._paused
        if paused is not None:
            await paused.wait()
        if self.stopped:
            raise ConnectionError("connection lost while waiting for it to drain")


def daphne_protocol(send: Callable) -> object | None:
    """The Daphne protocol object behind an ASGI `send`, or None (another server, or a
    Daphne version whose shape was not checked).

    Daphne 4.2.3 passes every application `functools.partial(server.handle_reply,
    protocol)` as `send` (daphne/server.py `Server.create_application`); for a websocket
    the protocol is autobahn's `WebSocketServerProtocol`, whose `transport` is Twisted's.
    """
    if not isinstance(send, functools.partial) or not reach_active("daphne_transport"):
        return None
    owner = getattr(send.func, "__self__", None)
    if getattr(send.func, "__name__", None) != "handle_reply" or type(owner).__module__ != "daphne.server":
        return None
    return send.args[0] if send.args else None


def uvicorn_protocol(send: Callable) -> object | None:
    """The uvicorn websocket protocol behind an ASGI `send` (its bound `send` method), or None."""
    owner = getattr(send, "__self__", None)
    if owner is None or not reach_active("uvicorn_transport"):
        return None
    if getattr(send, "__name__", None) != "send" or not type(owner).__module__.startswith("uvicorn.protocols.websockets"):
        return None
    return owner


def server_transport_abort(send: Callable) -> Callable[[], None] | None:
    """A function that drops the TCP connection behind an ASGI websocket `send` at once
    (no close handshake, unsent data discarded), or None when the server is not known.

    For a slow consumer: a close frame would wait behind the data it does not read.
    """
    protocol = daphne_protocol(send)
    if protocol is not None and getattr(protocol, "transport", None) is not None:
        return protocol.transport.abortConnection
    protocol = uvicorn_protocol(send)
    if protocol is not None and getattr(protocol, "transport", None) is not None:
        return protocol.transport.abort
    return None


def daphne_drain(send: Callable) -> TransportDrain | None:
    """Put a `TransportDrain` on the Daphne websocket behind `send`, in front of the producer
    the transport has (Daphne's HTTP channel); None for other servers (uvicorn's `send`
    already waits) or a transport that is gone."""
    protocol = daphne_protocol(send)
    transport = getattr(protocol, "transport", None) if protocol is not None else None
    if transport is None or getattr(transport, "disconnected", True):
        return None
    previous = transport.producer
    if previous is not None:
        transport.unregisterProducer()
    drain = TransportDrain(forward=previous)
    transport.registerProducer(drain, True)
    return drain
