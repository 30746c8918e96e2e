"""Order of direct-written copies against packets already queued for the same socket.

The bare app of tests/realtime/delivery_app.py (Chillout's delivery on a plain
python-socketio server) runs under Daphne and under uvicorn, whatever CHILLOUT_TEST_SERVER
says, with the `direct_write` tuning on whatever LIBRARY_TUNINGS says (off, python-socketio's
own emit sends every copy: nothing of Chillout's to order). `interleave` sends, without waiting in between,
an event with a binary attachment (always through engine.io's queue) then a text event
(direct when the socket's queue lets it) to a room of two websocket clients, 200 times: a
text event written straight into the connection while the binary one before it still waits
in the queue would overtake it. Every client must see binary 0, text 0, binary 1, … and
every copy must have gone through the queue. Once the queues are empty, `texts` goes
direct to both.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from chillout_project.embedded_db import free_port
from tests.conftest import PROJECT_ROOT
from tests.realtime.conftest import SocketClient
from tests.waiting import attempts_for, wait_until

APP = "tests.realtime.delivery_app:app"
COUNT = 200
TEXTS = 50
TUNED = {"LIBRARY_TUNINGS": "on"}
SERVERS = {
    "daphne": ([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", "{port}", APP], TUNED, "DaphneWire"),
    "uvicorn": ([sys.executable, "-m", "uvicorn", "--port", "{port}", "--ws-per-message-deflate", "false", APP], TUNED,
                "UvicornWire"),  # fmt: skip
}


@pytest.fixture(params=list(SERVERS))
def delivery_server(request, tmp_path):
    command, env, wire = SERVERS[request.param]
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([part.replace("{port}", str(port)) for part in command], cwd=PROJECT_ROOT,
                                   env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"{url}/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, attempts=attempts_for(60), message="the delivery app did not start")
        yield url, wire
    finally:
        process.terminate()
        process.wait(30)


async def test_a_direct_copy_never_overtakes_a_queued_one(delivery_server):
    url, wire = delivery_server
    clients = [await SocketClient(url).connect(), await SocketClient(url).connect()]
    try:
        for client in clients:
            assert await client.call("join", "r") == f"wire {wire}"
        paths = await clients[0].call("interleave", "r", COUNT)
        expected = [event for i in range(COUNT) for event in (("binary", {"i": i, "blob": b"\x00\x01"}), ("text", i))]
        for client in clients:
            for _ in range(COUNT):
                await client.next("text")
            assert client.events == expected
        assert paths == {"direct": 0, "queue": 2 * 2 * COUNT}
        assert await clients[1].call("texts", "r", TEXTS) == {"direct": 2 * TEXTS, "queue": 0}
        for client in clients:
            for _ in range(TEXTS):
                await client.next("text")
            assert client.events[2 * COUNT :] == [("text", i) for i in range(TEXTS)]
    finally:
        for client in clients:
            await client.disconnect()
