"""A bare ASGI app for tests/realtime/test_wire.py: `realtime.wire` against each real server.

Run under Daphne or uvicorn as `tests.realtime.wire_app:app`. `GET /` answers 200 (the
test waits for it). A websocket is accepted and told which wire the server gave it
(`wire DaphneWire`, `wire UvicornWire`, `wire None`); then each text message
`burst <count> <size>` is answered with `count` numbered messages of `size` bytes, every
odd-numbered one written through the wire when it takes it (else, and for the even ones,
through the ASGI `send`, which under uvicorn waits while the connection is paused), and
`done <written through the wire>`.
"""

from __future__ import annotations

from realtime.wire import text_frame, wire_for


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    else:
        await websocket(receive, send)


async def websocket(receive, send):
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    wire = wire_for(send)
    await send({"type": "websocket.send", "text": f"wire {type(wire).__name__ if wire else None}"})
    while (message := await receive())["type"] == "websocket.receive":
        _, count, size = message["text"].split()
        direct = 0
        for i in range(int(count)):
            text = f"{i:06d}:" + "x" * int(size)
            if i % 2 and wire is not None and wire.write(text_frame(text.encode())):
                direct += 1
            else:
                await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.send", "text": f"done {direct}"})
