"""Engine.io sessions from their handshake: per-IP cap, CONNECT deadline, allowed Host
(contract §6; issue 11, points 4 and 6). Raw engine.io clients (httpx polling, websockets)
do what a hostile client does: handshakes without a Socket.IO CONNECT, a forged Host.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.ops.test_metrics_logging import samples

CAP = 20
POLLING = {"EIO": "4", "transport": "polling"}


@pytest.fixture(scope="module")
def capped_server(server_factory):
    return server_factory(MAX_CONNECTIONS_PER_IP=str(CAP), CONNECT_TIMEOUT_SECONDS="120", METRICS="open")


@pytest.fixture(scope="module")
def impatient_server(server_factory):
    return server_factory(CONNECT_TIMEOUT_SECONDS="1", METRICS="open")


def handshake(http: httpx.Client) -> httpx.Response:
    return http.get("/socket.io/", params=POLLING)


def session_query(response: httpx.Response) -> dict:
    return {**POLLING, "sid": json.loads(response.text[1:])["sid"]}


def socketio_connect(http: httpx.Client, query: dict) -> str:
    """Send the Socket.IO CONNECT on a polling session; the server's answer packet."""
    assert http.post("/socket.io/", params=query, content="40").status_code == 200
    return http.get("/socket.io/", params=query).text.split("\x1e")[0]


def metric(server, name: str, **labels: str) -> float:
    values = samples(httpx.get(f"{server.url}/metrics", timeout=30).text)
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def test_forty_bare_handshakes_against_a_cap_of_twenty(capped_server):
    refused_before = metric(capped_server, "chillout_engineio_sessions_refused_total", reason="too_many_sessions")
    with httpx.Client(base_url=capped_server.url, timeout=30.0) as http:
        opened = [handshake(http) for _ in range(2 * CAP)]
        assert [r.status_code for r in opened] == [200] * (2 * CAP)
        # every one of the 40 holds a slot: the next handshake is refused at once
        beyond = handshake(http)
        assert beyond.status_code == 401
        assert beyond.json() == {"message": "too many connections"}
        answers = [socketio_connect(http, session_query(r)) for r in opened]
        accepted = [a for a in answers if a.startswith("40{")]
        refused = [a for a in answers if a.startswith("44")]
        assert len(accepted) == CAP and len(refused) == CAP, answers[CAP:]
        assert {json.loads(a[2:])["message"] for a in refused} == {"too many connections"}
        # the refused sessions were closed right after their CONNECT_ERROR: their slots are free
        # again for handshakes, which are over the cap (20 connected)
        again = handshake(http)
        assert again.status_code == 200
        assert socketio_connect(http, session_query(again)).startswith("44")
    refused_after = metric(capped_server, "chillout_engineio_sessions_refused_total", reason="too_many_sessions")
    assert refused_after - refused_before == 1
    print(f"\n40 bare handshakes, cap 20: 40 admitted, 41st refused (401); CONNECT: {len(accepted)} accepted, "
          f"{len(refused)} refused with 'too many connections'")


def test_a_session_that_never_connects_is_closed_at_its_deadline(impatient_server):
    before = metric(impatient_server, "chillout_socket_disconnects_total", reason="connect_timeout")
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
    assert metric(impatient_server, "chillout_socket_disconnects_total", reason="connect_timeout") - before == 1
    assert "no Socket.IO CONNECT within 1.0 s" in impatient_server.log_tail(20_000)


async def test_a_session_whose_socketio_connection_ended_is_closed_at_a_new_deadline(impatient_server):
    """The deadline is cancelled at the CONNECT (a connected socket holds no timer), and armed
    again when the Socket.IO connection ends while the engine.io session stays open."""
    before = metric(impatient_server, "chillout_socket_disconnects_total", reason="connect_timeout")
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
    assert metric(impatient_server, "chillout_socket_disconnects_total", reason="connect_timeout") - before == 1


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
