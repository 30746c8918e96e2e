"""Raw engine.io sessions, as a hostile client opens them: a handshake and nothing else.

Shared by tests/realtime/test_sessions.py (one process) and tests/scale/test_sessions_cluster.py
(two processes on Redis). A polling session is an httpx handshake (`polling_open`), a
websocket session a `websockets` connection that has read engine.io's OPEN packet
(`websocket_open`); neither sends a Socket.IO CONNECT unless the test does (`connect_polling`,
`connect_websocket`).

Waiting for the server: a session that a client closes, or whose TCP connection drops, is
released by the server after the client has gone, so a test that counts slots first waits
for the server's own gauge of admitted sessions (`chillout_engineio_sessions`) to reach the
expected value (`sessions_wait`), then asserts exactly. That is a condition, not a delay:
the gauge drops only once a slot is back in the per-IP count.
"""

from __future__ import annotations

import json

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.ops.test_metrics_logging import samples
from tests.waiting import async_wait_until, attempts_for

POLLING = {"EIO": "4", "transport": "polling"}
WEBSOCKET_PATH = "/socket.io/?EIO=4&transport=websocket"
TOO_MANY = {"message": "too many connections"}  # engine.io's refusal body (realtime/sessions.py)
SESSIONS_GAUGE = "chillout_engineio_sessions"
REFUSED_COUNTER = "chillout_engineio_sessions_refused_total"
SERVER_WAIT = 60.0  # a guard against a hang only: how long the server may take to release


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of the server's `GET /metrics` (0 when the series does not exist yet)."""
    values = samples(httpx.get(f"{url}/metrics", timeout=30).text)
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def refused_count(url: str) -> float:
    return metric(url, REFUSED_COUNTER, reason="too_many_sessions")


async def sessions_wait(url: str, expected: int) -> None:
    """Until the server at `url` holds exactly `expected` admitted sessions."""
    await async_wait_until(lambda: metric(url, SESSIONS_GAUGE) == expected, attempts=attempts_for(SERVER_WAIT, 0.05),
                           pause=0.05, message=lambda: f"{url} holds {metric(url, SESSIONS_GAUGE)} sessions, not {expected}")  # fmt: skip


def websocket_url(url: str) -> str:
    return url.replace("http://", "ws://") + WEBSOCKET_PATH


async def polling_handshake(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/socket.io/", params=POLLING)


def polling_query(response: httpx.Response) -> dict:
    """The query of the session a polling handshake opened (its OPEN packet's sid)."""
    assert response.status_code == 200, (response.status_code, response.text)
    return {**POLLING, "sid": json.loads(response.text[1:])["sid"]}


async def polling_open(http: httpx.AsyncClient) -> dict:
    """A bare polling session (admitted, else the assertion fails); its query."""
    return polling_query(await polling_handshake(http))


async def polling_fill(http: httpx.AsyncClient, count: int) -> list[dict]:
    """`count` bare polling sessions (e.g. an IP's whole cap); their queries."""
    return [await polling_open(http) for _ in range(count)]


async def polling_refused(http: httpx.AsyncClient) -> None:
    """A polling handshake refused for the per-IP cap: engine.io's 401 JSON."""
    response = await polling_handshake(http)
    assert (response.status_code, response.headers["content-type"]) == (401, "application/json"), response.text
    assert response.json() == TOO_MANY


async def polling_close(http: httpx.AsyncClient, query: dict) -> None:
    """Close a polling session as a client does: engine.io's CLOSE packet."""
    response = await http.post("/socket.io/", params=query, content="1")
    assert (response.status_code, response.text) == (200, "OK")


async def polling_close_all(http: httpx.AsyncClient, queries: list[dict]) -> None:
    for query in queries:
        await polling_close(http, query)


async def connect_polling(http: httpx.AsyncClient, query: dict) -> str:
    """Send the Socket.IO CONNECT on a polling session; the server's answer packet."""
    assert (await http.post("/socket.io/", params=query, content="40")).status_code == 200
    return (await http.get("/socket.io/", params=query)).text.split("\x1e")[0]


async def websocket_open(url: str) -> ClientConnection:
    """A bare websocket session (admitted: its OPEN packet read). The caller closes it."""
    ws = await ws_connect(websocket_url(url))
    opening = await ws.recv()
    assert opening.startswith("0{"), opening
    return ws


async def websocket_refused(url: str) -> None:
    """A websocket handshake refused: engine.io closes it before accepting, which Daphne and
    uvicorn answer with HTTP 403 and an empty body (engine.io's JSON reason is dropped: ASGI's
    `websocket.close` before `accept` carries no body)."""
    try:
        ws = await ws_connect(websocket_url(url))
    except InvalidStatus as refused:
        assert (refused.response.status_code, bytes(refused.response.body or b"")) == (403, b"")
        return
    await ws.close()
    raise AssertionError("the websocket handshake was admitted")


async def connect_websocket(ws: ClientConnection) -> str:
    await ws.send("40")
    return await ws.recv()


def websocket_lose(ws: ClientConnection) -> None:
    """Drop the TCP connection without a close handshake (a lost network)."""
    ws.transport.abort()
