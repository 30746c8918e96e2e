"""Writing one pre-built websocket frame straight into a server's connection.

A frame from server to client is not masked (RFC 6455 §5.1), so a room broadcast is the
same bytes for every recipient: `text_frame` builds them once per broadcast. Each server
frames every `websocket.send` again in Python per recipient (Daphne: autobahn's
`sendMessage` then a Twisted write that registers the socket with the event loop and sends
one loop iteration later; uvicorn: websockets' `Frame.serialize`), and reaching the ASGI
`send` at all takes engine.io's per-socket queue and a writer-task wake-up. A `Wire` writes
the ready frame into the server's connection object instead, as the server itself would:

* `DaphneWire` (Daphne 4.2.3 on autobahn 26.11.1 and Twisted 26.10.0, plain TCP or UNIX
  socket): when Twisted holds nothing unsent for the connection, the frame is sent at once
  with the transport's own `writeSomeData` (one `send` syscall, no writer registration);
  what the kernel does not take, or a frame behind data Twisted still holds, goes through
  `transport.write`, in order. Not under TLS, nor with per-message compression, nor while
  autobahn is in the middle of a message or holds queued chopped writes;
* `UvicornWire` (uvicorn 0.54.0's `websockets-sansio` protocol, `--ws auto` with
  websockets 17.4 installed): `transport.write(frame)` when the protocol would send now
  (handshake done, no close sent, writable, the connection OPEN with no extension
  negotiated and nothing waiting in websockets' own output).

`write` returns False when the connection is not in that state; the caller then sends
through engine.io's queue as before. Whether ORDER allows a direct write is the caller's
business (`realtime.backpressure.direct_write`): a wire only knows the server's side.

Every other server (granian, uvicorn's `websockets` and `wsproto` protocols) gets no wire
(`wire_for` returns None). The private attributes read here were checked against the
versions of the `direct_write` reach (`chillout_project.tunings`): on any other the tuning
is off and every copy takes engine.io's queue; tests/unit/test_direct_write.py fails when
one of them changes (tests/realtime/test_wire.py
runs each wire against its real server).

Concurrency: called on the event loop only (Daphne's reactor runs on the asyncio loop).
Importing this module imports no server module (`wire_for` does, when called).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from realtime.guards import daphne_protocol, uvicorn_protocol

_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying `payload` (UTF-8)."""
    size = len(payload)
    if size < 126:
        head = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        head = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return head + payload


class DaphneWire:
    """Frames into one Daphne websocket connection (autobahn protocol, Twisted transport)."""

    __slots__ = ("protocol", "transport", "_open")

    def __init__(self, protocol) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self._open = type(protocol).STATE_OPEN

    def write(self, frame: bytes) -> bool:
        protocol, transport = self.protocol, self.transport
        if (
            protocol.state != self._open
            or protocol.send_state != protocol.SEND_STATE_GROUND
            or protocol.send_queue
            or protocol._perMessageCompress is not None
            or 0 < protocol.maxMessagePayloadSize < len(frame)
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
            or transport.TLS
        ):
            return False
        if transport._tempDataLen or transport.offset != len(transport.dataBuffer):
            transport.write(frame)  # behind what Twisted still holds
            return True
        written = transport.writeSomeData(frame)
        if not isinstance(written, int):  # the connection is lost: Twisted's next write attempt finds out
            transport.write(frame)
        elif written < len(frame):
            transport.write(frame[written:])
        return True


class UvicornWire:
    """Frames into one uvicorn websockets-sansio connection (asyncio transport)."""

    __slots__ = ("protocol", "_open")

    def __init__(self, protocol) -> None:
        from websockets.protocol import State

        self.protocol = protocol
        self._open = State.OPEN

    def write(self, frame: bytes) -> bool:
        protocol = self.protocol
        conn = protocol.conn
        if (
            not protocol.writable.is_set()
            or protocol.disconnected
            or not protocol.handshake_complete
            or protocol.close_sent
            or protocol.initial_response is not None
            or conn.state is not self._open
            or conn.extensions
            or conn.expect_continuation_frame
            or conn.writes
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(frame)
        return True


Wire = DaphneWire | UvicornWire


def wire_for(send: Callable) -> Wire | None:
    """The wire behind an ASGI websocket `send` (after the accept), or None: another server,
    TLS, or another websocket implementation. Asked only when the `direct_write` tuning is
    active (`realtime.backpressure`), so on the versions it was checked against."""
    protocol = daphne_protocol(send)
    if protocol is not None:
        from twisted.internet import tcp

        transport = getattr(protocol, "transport", None)
        if isinstance(transport, tcp.Connection) and not transport.TLS:
            return DaphneWire(protocol)
        return None
    protocol = uvicorn_protocol(send)
    if protocol is not None:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

        if type(protocol) is WebSocketsSansIOProtocol and getattr(protocol, "transport", None) is not None:
            return UvicornWire(protocol)
    return None
