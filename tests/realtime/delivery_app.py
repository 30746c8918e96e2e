"""A bare python-socketio app with Chillout's delivery, for tests/realtime/test_delivery_order.py.

Run under Daphne or uvicorn as `tests.realtime.delivery_app:app`. The server is built as
`realtime.server` builds Chillout's (`DirectEmitManager`, the engine.io poll replacement,
`backpressure_install(direct_write=...)`), without the rest of the application. Events:

* `join(room)`: enter a python-socketio room; acknowledged with `wire <name>`, the wire the
  socket's server connection got (`realtime.wire`), or `wire None`;
* `interleave(room, count)`: `count` times, an event `binary` with a binary attachment to
  the room (binary packets always take engine.io's queue), then an event `text` to the room
  (the direct path, when the socket's queue lets it), in one go without waiting in between;
* `texts(room, count)`: `count` events `text` to the room.

Both are acknowledged with the copies sent meanwhile by path (`chillout_socket_copies_total`
of this process): `{"direct": n, "queue": m}`.

`LIBRARY_TUNINGS` in the environment selects the tunings (no Django settings here).
"""

from __future__ import annotations

import socketio
from prometheus_client import REGISTRY

from chillout_project.tunings import reach_active
from realtime.backpressure import backpressure_install
from realtime.delivery import DirectEmitManager, engineio_poll_install, orjson_module

engineio_poll_install()
sio = socketio.AsyncServer(async_mode="asgi", client_manager=DirectEmitManager(), json=orjson_module)
backpressure_install(
    sio, max_outbound_bytes=64 * 1024 * 1024, max_decode_packets=64, direct_write=reach_active("direct_write")
)
app = socketio.ASGIApp(sio)


@sio.on("join")
async def join(sid, room):
    await sio.enter_room(sid, room)
    socket = sio.eio.sockets[sio.manager.eio_sid_from_sid(sid, "/")]
    websocket = getattr(socket, "chillout_ws", None)
    wire = websocket.wire if websocket is not None else None
    return f"wire {type(wire).__name__ if wire is not None else None}"


def copies() -> dict[str, float]:
    return {path: REGISTRY.get_sample_value("chillout_socket_copies_total", {"path": path}) or 0.0
            for path in ("direct", "queue")}  # fmt: skip


@sio.on("interleave")
async def interleave(sid, room, count):
    before = copies()
    for i in range(count):
        await sio.emit("binary", {"i": i, "blob": b"\x00\x01"}, room=room)
        await sio.emit("text", i, room=room)
    return {path: n - before[path] for path, n in copies().items()}


@sio.on("texts")
async def texts(sid, room, count):
    before = copies()
    for i in range(count):
        await sio.emit("text", i, room=room)
    return {path: n - before[path] for path, n in copies().items()}
