"""Engine.io wiring of the outbound bound and of the polling payload refusal (contract §6).

`backpressure_install(sio, ...)` is called once where the server is built; importing this
module changes nothing. It reaches into python-engineio 4.15.1 (the extension
`outbound_bound` of `chillout_project.tunings`: `realtime.server` installs it only on the
versions it was checked against; the same kind of replacement as
`realtime.delivery.engineio_poll_install`, independent of it):

* `AsyncSocket.send` counts each packet into the socket's `OutboundMeter` before it goes
  on the socket's (unbounded) queue; a packet that would take the socket's unsent data
  past `max_outbound_bytes` is dropped and the socket is cut as a slow consumer;
* `AsyncSocket.handle_get_request` counts packets out when a polling GET's response takes
  them (the websocket writer's batch is counted out frame by frame by
  `MeteredWebSocket.send` instead). Not `poll`, which the websocket writer shares and
  `realtime.delivery` replaces. The handshake's OPEN packet, taken outside both, is not
  counted in;
* `MeteredWebSocket` (engine.io's ASGI websocket, selected through the server's
  `_async["websocket"]`) counts a frame out once the ASGI `send` completed, and under
  Daphne first waits for the transport to drain (`guards.TransportDrain`), since Daphne's
  `send` returns before anything is written;
* a slow consumer's TCP connection is dropped at once (`guards.server_transport_abort`):
  a close frame would wait behind the data it does not read, and engine.io's own
  `close(wait=True)` waits for the queue to empty. engine.io then ends the session as for
  any lost connection, so the application's `disconnect` handler runs;
* `AsyncSocket.handle_post_request`: a polling body engine.io refuses to decode (more than
  `Payload.max_decode_packets` packets, or not a packet) is one log line, a 400 and a
  closed session — engine.io 4.15.1 logs a traceback, answers 200 and drops every packet
  of the body. A body carrying the client's CLOSE answers the session's waiting GET with a
  NOOP at once, as Node's engine.io does (engine.io 4.15.1 leaves it waiting for the poll
  timeout, 45 s, and python-engineio's client waits for it before `disconnect` returns);
* `direct_write(socket, frame, size)` (used by `realtime.delivery`'s room emits, when
  `direct_write=True` was installed): writes a ready websocket frame into the socket's
  server connection (`realtime.wire`) without the queue and the writer task, but only when
  nothing of the socket can be ahead of it — its queue is empty, its writer is parked
  waiting for the queue (no `MeteredWebSocket.send` in progress, `busy == 0`), it is an
  upgraded websocket that is not closing, its transport is not paused (Daphne's drain,
  uvicorn's `writable`) — else it returns False and the caller queues the packet as
  before. The meter counts the packet in and out around the write (a packet that would
  pass the limit cuts the socket exactly as on the queue path); what the kernel does not
  take waits in the server's transport buffer, which pauses the drain / `writable` past
  64 KiB, so the next packets take the queue and the meter sees them.

  Why order holds: the writer takes a packet off the queue and enters `send` in one step
  (no await in between: `realtime.delivery._poll`, engine.io's writer loop), so "queue
  empty and no send in progress" means every earlier packet of the socket has been handed
  to the server's transport, and the transport keeps the order of what it is handed.
  Under Daphne and uvicorn a `send` only stays in progress while the transport is paused,
  which the pause checks refuse already; `busy` keeps the rule true for a server whose
  `send` could suspend for another reason.

Concurrency: everything runs on the event loop; a meter is touched only by the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engineio import async_socket, exceptions, packet, payload
from engineio.async_drivers import asgi as engineio_asgi

from realtime.guards import OutboundMeter, daphne_drain, packet_bytes, server_transport_abort
from realtime.wire import Wire, wire_for

logger = logging.getLogger(__name__)

Refusal = Callable[[str], None]  # called with a reason: "slow_consumer" or "bad_payload"

_settings = {"max_outbound_bytes": 0, "on_refusal": None, "direct_write": False}
_original = {}


def encoded_size(pkt: packet.Packet) -> int:
    """The size of `pkt.encode()` without encoding it (text: type digit + data)."""
    if isinstance(pkt.data, str):
        return 1 + packet_bytes(pkt.data)
    if isinstance(pkt.data, (bytes, bytearray)):
        return len(pkt.data)
    return packet_bytes(pkt.encode())


def outbound_meter(socket: async_socket.AsyncSocket) -> OutboundMeter:
    meter = getattr(socket, "chillout_outbound", None)
    if meter is None:
        meter = socket.chillout_outbound = OutboundMeter(limit=_settings["max_outbound_bytes"])
    return meter


def _refused(reason: str) -> None:
    callback = _settings["on_refusal"]
    if callback is not None:
        callback(reason)


def slow_consumer_cut(socket: async_socket.AsyncSocket) -> None:
    """Free what waits for the socket and drop its connection (see the module docstring)."""
    meter = outbound_meter(socket)
    while not socket.queue.empty():
        socket.queue.get_nowait()
        socket.queue.task_done()
    logger.info("socket %s cut as a slow consumer (%d bytes unsent)", socket.sid, meter.unsent)
    _refused("slow_consumer")
    abort = getattr(socket, "chillout_abort", None)
    if abort is not None:
        abort()
    else:  # polling, or a server whose transport is unknown: end the session in engine.io
        socket.queue.put_nowait(None)  # ends a waiting long-poll GET
        socket.server.start_background_task(socket.close, wait=False, abort=True)


async def _send(self: async_socket.AsyncSocket, pkt: packet.Packet) -> None:
    meter = outbound_meter(self)
    if meter.tripped:
        return
    if pkt.packet_type != packet.OPEN and not meter.queued(encoded_size(pkt)):
        slow_consumer_cut(self)
        return
    await _original["send"](self, pkt)


async def _handle_get_request(self: async_socket.AsyncSocket, environ: dict):
    result = await _original["handle_get_request"](self, environ)
    if isinstance(result, list):  # a polling GET's packets (else: the websocket, which counts its own)
        outbound_meter(self).sent(sum(encoded_size(pkt) for pkt in result))
    return result


async def _handle_post_request(self: async_socket.AsyncSocket, environ: dict) -> None:
    try:
        await _original["handle_post_request"](self, environ)
    except ValueError as exc:  # the body did not decode into at most max_decode_packets packets
        logger.info("polling payload from %s refused: %s", self.sid, exc)
        _refused("bad_payload")
        await self.close(wait=False, abort=True)  # engine.io's disconnect(sid) would wait for a GET
        raise exceptions.ContentTooLongError() from None  # engine.io answers 400
    if self.closed and not self.upgraded:  # the body carried the client's CLOSE
        self.queue.put_nowait(packet.Packet(packet.NOOP))  # answers its waiting GET now


class MeteredWebSocket(engineio_asgi.WebSocket):
    """engine.io's ASGI websocket, counting frames out and waiting for Daphne to drain.

    `busy` is the number of `send`s in progress (0 or 1: engine.io's writer is the only
    sender after the upgrade's probe); `wire` is the server connection `direct_write`
    writes into, when the server is one `realtime.wire` knows.
    """

    drain = None
    wire: Wire | None = None
    busy = 0

    async def __call__(self, environ):
        # engineio.async_drivers.asgi.WebSocket.__call__ (4.15.1), with the transport found
        # between the accept and the session's handler.
        self.asgi_receive = environ["asgi.receive"]
        self.asgi_send = environ["asgi.send"]
        await self.asgi_send({"type": "websocket.accept"})
        socket = self.handler.__self__
        self.drain = daphne_drain(self.asgi_send)
        socket.chillout_abort = server_transport_abort(self.asgi_send)
        if _settings["direct_write"]:
            self.wire = wire_for(self.asgi_send)
        socket.chillout_ws = self
        try:
            await self.handler(self)
        finally:
            socket.chillout_ws = None
        return ""

    async def send(self, message):
        self.busy += 1
        try:
            await super().send(message)
            if self.drain is not None:
                await self.drain.wait()
        finally:
            self.busy -= 1
        socket = self.handler.__self__
        outbound_meter(socket).sent(packet_bytes(message))


def direct_write_installed() -> bool:
    """Whether room emits may write frames straight into the server's connections."""
    return _settings["direct_write"]


def direct_write(socket: async_socket.AsyncSocket, frame: bytes, size: int) -> bool:
    """Write `frame` (one engine.io packet of `size` bytes, framed) to `socket`'s websocket
    now, if nothing of the socket can be ahead of it (see the module docstring). False: the
    caller sends the packet through the socket's queue instead. True: written, or dropped
    because it cut the socket as a slow consumer (as the queue path would have)."""
    ws = getattr(socket, "chillout_ws", None)
    if (
        ws is None
        or ws.wire is None
        or ws.busy
        or not socket.queue.empty()
        or not socket.upgraded
        or socket.upgrading
        or socket.closing
        or socket.closed
        or (ws.drain is not None and ws.drain.paused)
    ):
        return False
    if socket.last_ping and time.time() - socket.last_ping > socket.server.ping_timeout:
        return False  # engine.io's send closes it
    meter = outbound_meter(socket)
    if meter.tripped:
        return False
    if not meter.queued(size):
        slow_consumer_cut(socket)
        return True
    written = ws.wire.write(frame)
    meter.sent(size)
    return written


def backpressure_install(
    sio,
    *,
    max_outbound_bytes: int,
    max_decode_packets: int,
    on_refusal: Refusal | None = None,
    direct_write: bool = False,
) -> None:
    """Bound what waits for each socket of `sio` (a python-socketio `AsyncServer`);
    `direct_write`: let `direct_write()` write frames into the server's connections."""
    _settings.update(max_outbound_bytes=max_outbound_bytes, on_refusal=on_refusal, direct_write=direct_write)
    payload.Payload.max_decode_packets = max(max_decode_packets, 16)
    if not _original:
        replacements = (
            ("send", _send),
            ("handle_get_request", _handle_get_request),
            ("handle_post_request", _handle_post_request),
        )
        for name, replacement in replacements:
            _original[name] = getattr(async_socket.AsyncSocket, name)
            setattr(async_socket.AsyncSocket, name, replacement)
    sio.eio._async = dict(sio.eio._async, websocket=MeteredWebSocket)
