"""`realtime.wire` against the real servers: frames written straight into the connection
arrive whole and in order among the server's own sends, also when the client stops reading
and the server has to buffer (Daphne: the kernel takes part of a frame, Twisted the rest;
uvicorn: the connection pauses and the wire declines until it resumes).

Each case runs the bare app of tests/realtime/wire_app.py under one server (whatever
CHILLOUT_TEST_SERVER says: this is about each server's wire), with a `websockets` client
that reads nothing for a while (its one-message queue full, so it stops reading the socket).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from chillout_project.embedded_db import free_port
from tests.conftest import PROJECT_ROOT
from tests.waiting import attempts_for, wait_until

APP = "tests.realtime.wire_app:app"
COUNT = 400
SIZE = 30_000  # 400 × 30 KB = 12 MB: far past the kernel's buffers and the servers' 64 KiB mark

SERVERS = {
    "daphne": ([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", "{port}", APP], "DaphneWire"),
    "uvicorn": ([sys.executable, "-m", "uvicorn", "--port", "{port}", "--ws-per-message-deflate", "false", APP],
                "UvicornWire"),  # fmt: skip
    "uvicorn-websockets": ([sys.executable, "-m", "uvicorn", "--port", "{port}", "--ws", "websockets", APP], "None"),
    "uvicorn-wsproto": ([sys.executable, "-m", "uvicorn", "--port", "{port}", "--ws", "wsproto", APP], "None"),
    # The client offers permessage-deflate and this server accepts it: compressed frames
    # are not the same bytes for everyone, so the wire must decline every frame.
    "uvicorn-deflate": ([sys.executable, "-m", "uvicorn", "--port", "{port}", APP], "UvicornWire"),
}


@pytest.fixture(params=list(SERVERS))
def wire_server(request, tmp_path):
    command, wire = SERVERS[request.param]
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        def up() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, attempts=attempts_for(60), message="the wire app did not start")
        yield request.param, f"ws://127.0.0.1:{port}/", wire
    finally:
        process.terminate()
        process.wait(30)
        log.close()


async def test_frames_through_the_wire_keep_their_place_among_the_servers_own(wire_server):
    name, url, wire = wire_server
    async with ws_connect(url, max_queue=1, max_size=None) as ws:
        assert await ws.recv() == f"wire {wire}"
        await ws.send(f"burst {COUNT} {SIZE}")
        await asyncio.sleep(1.0)  # read nothing meanwhile: the server must buffer
        received = [await asyncio.wait_for(ws.recv(), 60) for _ in range(COUNT + 1)]
    numbers = [int(text.split(":", 1)[0]) for text in received[:-1]]
    assert numbers == list(range(COUNT))
    assert all(len(text) == 7 + SIZE for text in received[:-1])
    direct = int(received[-1].removeprefix("done "))
    if wire == "None" or name == "uvicorn-deflate":
        assert direct == 0
    else:
        assert 0 < direct <= COUNT // 2
