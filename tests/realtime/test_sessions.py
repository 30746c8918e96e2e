"""Engine.io sessions from their handshake: per-IP cap, CONNECT deadline, allowed Host
(contract §6; issue 11, points 4 and 6; issue 20: half-open sessions). Raw engine.io clients
(httpx polling, websockets) do what a hostile client does: handshakes without a Socket.IO
CONNECT, a forged Host, dropped connections.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import uuid
from pathlib import Path

import httpx
import pytest
import socketio
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.engineio_sessions import (
    POLLING,
    SESSIONS_GAUGE,
    TOO_MANY,
    connect_polling,
    connect_websocket,
    metric,
    polling_close,
    polling_close_all,
    polling_fill,
    polling_handshake,
    polling_open,
    polling_query,
    polling_refused,
    refused_count,
    sessions_wait,
    websocket_lose,
    websocket_open,
    websocket_refused,
)
from tests.realtime.conftest import SocketClient

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
NODE_WAIT = 90.0  # a guard against a hang only
CAP = 20
DEADLINE_CAP = 3


@pytest.fixture(scope="module")
def capped_server(server_factory):
    """Slots are only given back by what a test does (its deadline is far away)."""
    return server_factory(MAX_CONNECTIONS_PER_IP=str(CAP), CONNECT_TIMEOUT_SECONDS="120", METRICS="open")


@pytest.fixture(scope="module")
def impatient_server(server_factory):
    return server_factory(CONNECT_TIMEOUT_SECONDS="1", METRICS="open")


@pytest.fixture(scope="module")
def impatient_capped_server(server_factory):
    return server_factory(MAX_CONNECTIONS_PER_IP=str(DEADLINE_CAP), CONNECT_TIMEOUT_SECONDS="1", METRICS="open")


@pytest.fixture
async def capped(capped_server):
    """The capped server with every slot free, and free again after the test (its tests
    share it and fill it to the cap)."""
    await sessions_wait(capped_server.url, 0)
    yield capped_server
    await sessions_wait(capped_server.url, 0)


def handshake(http: httpx.Client) -> httpx.Response:
    return http.get("/socket.io/", params=POLLING)


def session_query(response: httpx.Response) -> dict:
    return {**POLLING, "sid": json.loads(response.text[1:])["sid"]}


def socketio_connect(http: httpx.Client, query: dict) -> str:
    """Send the Socket.IO CONNECT on a polling session; the server's answer packet."""
    assert http.post("/socket.io/", params=query, content="40").status_code == 200
    return http.get("/socket.io/", params=query).text.split("\x1e")[0]


async def test_forty_bare_polling_handshakes_against_a_cap_of_twenty(capped):
    """Issue 20: 40 bare polling handshakes from one address, none followed by a CONNECT,
    were all admitted under a cap of 20. Now the 21st handshake is already refused."""
    refused_before = refused_count(capped.url)
    async with httpx.AsyncClient(base_url=capped.url, timeout=30.0) as http:
        answers = [await polling_handshake(http) for _ in range(2 * CAP)]
        assert [r.status_code for r in answers] == [200] * CAP + [401] * CAP
        assert {r.text for r in answers[CAP:]} == {'{"message":"too many connections"}'}
        assert {r.headers["content-type"] for r in answers[CAP:]} == {"application/json"}
        await websocket_refused(capped.url)  # the cap counts sessions of both transports
        assert metric(capped.url, SESSIONS_GAUGE) == CAP
        assert refused_count(capped.url) - refused_before == CAP + 1
        for response in answers[:CAP]:
            await polling_close(http, polling_query(response))


async def test_bare_websocket_handshakes_count_against_the_cap(capped):
    refused_before = refused_count(capped.url)
    sockets = [await websocket_open(capped.url) for _ in range(CAP)]
    try:
        await websocket_refused(capped.url)
        async with httpx.AsyncClient(base_url=capped.url, timeout=30.0) as http:
            await polling_refused(http)
        assert metric(capped.url, SESSIONS_GAUGE) == CAP
        assert refused_count(capped.url) - refused_before == 2
    finally:
        for ws in sockets:
            await ws.close()


async def test_released_slots_come_back_exactly_once(capped):
    """Fill the cap with sessions of every kind, end some in every way a session ends;
    then exactly as many new handshakes are admitted as sessions ended, and the next one
    is refused (a slot released twice would let one more in; one never released, one
    fewer)."""
    refused_before = refused_count(capped.url)
    async with httpx.AsyncClient(base_url=capped.url, timeout=30.0) as http:
        bare_polls = [await polling_open(http) for _ in range(5)]
        bare_sockets = [await websocket_open(capped.url) for _ in range(5)]
        connected_polls = [await polling_open(http) for _ in range(5)]
        connected_sockets = [await websocket_open(capped.url) for _ in range(5)]
        for query in connected_polls:
            assert (await connect_polling(http, query)).startswith("40{")
        for ws in connected_sockets:
            assert (await connect_websocket(ws)).startswith("40{")
        await polling_refused(http)

        for query in bare_polls[:2]:
            await polling_close(http, query)  # the client's CLOSE, bare
        await bare_sockets[0].close()  # a clean websocket close, bare
        websocket_lose(bare_sockets[1])  # a lost transport, bare
        websocket_lose(connected_sockets[0])  # a lost transport, connected
        await connected_sockets[1].close()  # a clean close, connected
        await polling_close(http, connected_polls[0])  # the client's CLOSE, connected
        # A Socket.IO DISCONNECT ends the Socket.IO connection, not the engine.io session:
        # its slot stays taken (until the session's new deadline).
        assert (await http.post("/socket.io/", params=connected_polls[1], content="41")).status_code == 200
        ended = 7
        await sessions_wait(capped.url, CAP - ended)

        again = [await polling_open(http) for _ in range(ended - 1)]
        last = await websocket_open(capped.url)
        await polling_refused(http)
        await websocket_refused(capped.url)
        assert metric(capped.url, SESSIONS_GAUGE) == CAP
        assert refused_count(capped.url) - refused_before == 3

        for query in bare_polls[2:] + connected_polls[1:] + again:
            await polling_close(http, query)
        for ws in bare_sockets[2:] + connected_sockets[2:] + [last]:
            await ws.close()


async def test_sessions_closed_at_their_deadline_give_their_slots_back(impatient_capped_server):
    url = impatient_capped_server.url
    await sessions_wait(url, 0)
    cut_before = metric(url, "chillout_socket_disconnects_total", reason="connect_timeout")
    refused_before = refused_count(url)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        polls = [await polling_open(http) for _ in range(DEADLINE_CAP - 1)]
        ws = await websocket_open(url)
        await polling_refused(http)
        # the deadline closes all three (a websocket gets engine.io's CLOSE packet)
        assert await ws.recv() == "1"
        await sessions_wait(url, 0)
        assert metric(url, "chillout_socket_disconnects_total", reason="connect_timeout") - cut_before == DEADLINE_CAP
        for query in polls:
            assert (await http.get("/socket.io/", params=query)).status_code == 400  # gone
        again = [await polling_open(http) for _ in range(DEADLINE_CAP)]
        await polling_refused(http)
        assert refused_count(url) - refused_before == 2
        for query in again:
            await polling_close(http, query)
    await ws.close()
    await sessions_wait(url, 0)


@pytest.mark.parametrize(
    ("transport", "raised", "seen"),
    [
        # engine.io's JSON body reaches python-socketio's `connect_error` handler on polling...
        ("polling", "Unexpected status code 401 in server response", [TOO_MANY]),
        # ...but a refused websocket upgrade has no body: only aiohttp's failure
        ("websocket", "Connection error", ["Connection error"]),
    ],
)
async def test_python_socketio_client_past_the_cap(capped, transport, raised, seen):
    refused_before = refused_count(capped.url)
    async with httpx.AsyncClient(base_url=capped.url, timeout=30.0) as http:
        held = await polling_fill(http, CAP)
        client = SocketClient(capped.url, transports=(transport,))
        with pytest.raises(socketio.exceptions.ConnectionError, match=f"^{raised}$"):
            await client.connect()
        assert client.connect_errors == seen
        assert refused_count(capped.url) - refused_before == 1
        await polling_close_all(http, held)


async def node_line(process: asyncio.subprocess.Process) -> dict:
    line = await asyncio.wait_for(process.stdout.readline(), NODE_WAIT)
    assert line, f"node ended: {(await process.stderr.read()).decode()}"
    return json.loads(line)


@pytest.mark.parametrize(
    ("transport", "error"),
    [
        # the TransportError carries the status and, in its XHR, engine.io's JSON body
        ("polling", {"message": "xhr poll error", "type": "TransportError", "description": 401, "status": 401,
                     "body": '{"message":"too many connections"}'}),
        # the web client's transport: the upgrade's 403 and nothing more (a browser sees less:
        # its WebSocket error event has no message)
        ("websocket", {"message": "websocket error", "type": "TransportError",
                       "description": "Unexpected server response: 403", "status": None, "body": None}),
    ],
)  # fmt: skip
async def test_socket_io_client_past_the_cap_retries_until_a_slot_is_free(capped, transport, error):
    """socket.io-client 4.8 (the web client's library) treats a refused handshake as a
    transport error: `connect_error`, then its own reconnection, which gets in as soon as a
    slot is free (a CONNECT_ERROR from the server would have stopped it for good)."""
    node = shutil.which("node")
    assert node, "node is not installed; the Node compatibility tests need Node 20+"
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "run `npm ci --prefix tests/node` before pytest"
    refused_before = refused_count(capped.url)
    async with httpx.AsyncClient(base_url=capped.url, timeout=30.0) as http:
        held = await polling_fill(http, CAP)
        process = await asyncio.create_subprocess_exec(
            node, str(NODE_DIR / "refused_flow.mjs"), capped.url, transport, cwd=NODE_DIR,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert await node_line(process) == {"event": "connect_error", **error}
            await polling_close(http, held.pop())
            connected = await node_line(process)
            assert await asyncio.wait_for(process.wait(), NODE_WAIT) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert connected == {"event": "connect", "errors": connected["errors"], "transport": transport}
        # every attempt before the slot came back was one refused handshake, counted once
        assert refused_count(capped.url) - refused_before == connected["errors"] >= 1
        await polling_close_all(http, held)


def test_a_session_that_never_connects_is_closed_at_its_deadline(impatient_server):
    before = metric(impatient_server.url, "chillout_socket_disconnects_total", reason="connect_timeout")
    with httpx.Client(base_url=impatient_server.url, timeout=30.0) as http:
        query = session_query(handshake(http))
        # the long-poll is answered with engine.io's CLOSE packet once the deadline passed
        packets: list[str] = []
        while "1" not in packets:
            response = http.get("/socket.io/", params=query)
            if response.status_code == 400:  # closed between two long-polls
                break
            assert response.status_code == 200, response.text
            packets = response.text.split("\x1e")
            assert all(p in ("1", "2") for p in packets), packets  # CLOSE or PING, no CONNECT answer
        assert http.get("/socket.io/", params=query).status_code == 400  # the session is gone
        # a session that does connect in time is kept past the deadline (barrier: a later ping round)
        connected = session_query(handshake(http))
        assert socketio_connect(http, connected).startswith("40{")
    assert metric(impatient_server.url, "chillout_socket_disconnects_total", reason="connect_timeout") - before == 1
    assert "no Socket.IO CONNECT within 1.0 s" in impatient_server.log_tail(20_000)


async def test_a_session_whose_socketio_connection_ended_is_closed_at_a_new_deadline(impatient_server):
    """The deadline is cancelled at the CONNECT (a connected socket holds no timer), and armed
    again when the Socket.IO connection ends while the engine.io session stays open."""
    before = metric(impatient_server.url, "chillout_socket_disconnects_total", reason="connect_timeout")
    url = impatient_server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with ws_connect(url) as kept, ws_connect(url) as left:
        for ws in (kept, left):
            assert (await ws.recv()).startswith("0{")
            await ws.send("40")
            assert (await ws.recv()).startswith("40{")
        await left.send("41")  # Socket.IO DISCONNECT; the websocket stays open

        packets = [await asyncio.wait_for(left.recv(), 30)]
        while packets[-1] != "1":  # engine.io's CLOSE: a client closes its websocket on it
            packets.append(await asyncio.wait_for(left.recv(), 30))
        assert set(packets) <= {"1", "2"}  # CLOSE, or a PING before it
        # Barrier: `kept`'s handshake deadline, had it not been cancelled, ran out before
        # `left`'s second one (armed after `kept` connected); `kept` is still served.
        await kept.send('421["join_room",{"roomId":"deadline-%s","username":"kept"}]' % uuid.uuid4().hex[:8])
        while not (answer := await asyncio.wait_for(kept.recv(), 30)).startswith("431"):
            pass
        assert json.loads(answer[3:]) == [{"ok": True, "username": "kept"}]
    assert metric(impatient_server.url, "chillout_socket_disconnects_total", reason="connect_timeout") - before == 1


async def test_a_second_connect_on_the_same_session_is_served_from_the_slimmed_environ(server):
    """After `connect` the handshake environ keeps only `realtime.events.ENVIRON_KEPT`;
    python-socketio hands that dict to `connect` again on a repeated CONNECT, which must
    still see the client's Host (media URLs) and address."""
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    room_id = f"environ-{uuid.uuid4().hex[:8]}"
    async with ws_connect(url) as ws:
        assert (await ws.recv()).startswith("0{")
        for _ in range(2):
            await ws.send("40")
            assert (await ws.recv()).startswith("40{")
            await ws.send("41")
        await ws.send("40")
        assert (await ws.recv()).startswith("40{")
        await ws.send('421["join_room",{"roomId":"%s","username":"again"}]' % room_id)
        while not (answer := await asyncio.wait_for(ws.recv(), 30)).startswith("431"):
            pass
        assert json.loads(answer[3:]) == [{"ok": True, "username": "again"}]


def test_environ_slim_keeps_what_connect_and_engineio_read():
    from realtime.events import ENVIRON_KEPT, environ_slim

    environ = {key: key for key in ENVIRON_KEPT} | {"HTTP_COOKIE": "x" * 4000, "HTTP_USER_AGENT": "ua", "QUERY_STRING": "q"}
    environ_slim(environ)
    assert environ == {key: key for key in ENVIRON_KEPT}


def test_a_handshake_with_a_host_not_allowed_is_refused_on_both_transports(server):
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        polling = http.get("/socket.io/", params=POLLING, headers={"Host": "evil.example"})
        assert polling.status_code == 401
        assert polling.json() == {"message": "host not allowed"}
        # REST builds media URLs from the Host: Django refuses it there (400 JSON)
        room = http.get("/api/room/host-check", headers={"Host": "evil.example"})
        assert room.status_code == 400 and room.json() == {"error": "bad request"}
        for host in ("localhost", f"localhost:{server.port}", "127.0.0.1"):
            assert http.get("/socket.io/", params=POLLING, headers={"Host": host}).status_code == 200, host


async def test_a_websocket_with_a_host_not_allowed_is_refused(server):
    path = "/socket.io/?EIO=4&transport=websocket"
    with socket.create_connection(("127.0.0.1", server.port)) as raw:  # Host: evil.example, same server
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(f"ws://evil.example:{server.port}{path}", sock=raw)
    assert refused.value.response.status_code == 403
    async with ws_connect(server.url.replace("http://", "ws://") + path) as allowed:
        assert (await allowed.recv()).startswith("0{")


async def test_a_polling_client_that_closes_gets_its_waiting_poll_answered_at_once(server):
    """Node's engine.io answers the pending GET of a session the client closes with a NOOP;
    engine.io 4.15.1 alone left it waiting for the poll timeout (then 400)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as http:
        query = session_query(await http.get("/socket.io/", params=POLLING))
        assert (await http.post("/socket.io/", params=query, content="40")).status_code == 200
        assert (await http.get("/socket.io/", params=query)).text.startswith("40")
        waiting = asyncio.create_task(http.get("/socket.io/", params=query))
        await asyncio.sleep(0)
        closing = await http.post("/socket.io/", params=query, content="1")
        answer = await waiting
    assert (closing.status_code, closing.text) == (200, "OK")
    assert (answer.status_code, answer.text) == (200, "6")
