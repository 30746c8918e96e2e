"""The embedded database closes pooled connections after its idle timeout, and the async
driver may hand out one it closed (`AutoReconnect` on the next write). Reads are retried by
the driver; message writes are retried by `rooms.writes` (safe: the app makes the `_id`).

Reproduced with a database whose idle timeout (2 s) is shorter than the server's
`MONGO_MAX_IDLE_MS` (60 s): the server's pooled connections are dead after 3 s of quiet.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pymongo import MongoClient

from chillout_project.embedded_db import start_or_reuse
from tests.realtime.conftest import SocketClient

IDLE_TIMEOUT = 2.0


@pytest.fixture
def short_idle_db(tmp_path):
    database = start_or_reuse(tmp_path / "idle-db", idle_timeout_seconds=IDLE_TIMEOUT)
    yield f"{database.uri}/chillout_idle"
    database.stop()


async def test_writes_and_reads_succeed_after_the_database_closed_idle_connections(server_factory, short_idle_db):
    server = server_factory(MONGO_URI=short_idle_db, MONGO_MAX_IDLE_MS="60000")
    client = await SocketClient(server.url).connect()
    try:
        await client.join("idle-room", "alice")
        first = await client.call("send_message", {"roomId": "idle-room", "username": "alice", "message": "before"})
        assert first["ok"], first
        await asyncio.sleep(IDLE_TIMEOUT + 1)
        after = await client.call("send_message", {"roomId": "idle-room", "username": "alice", "message": "after"})
        assert after["ok"], after
        await asyncio.sleep(IDLE_TIMEOUT + 1)
        moved = await client.call("send_message", {"roomId": "other-room", "username": "alice", "message": "moved"})
        assert moved["ok"], moved
        await asyncio.sleep(IDLE_TIMEOUT + 1)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            history = (await http.get("/api/room/idle-room")).json()["messages"]
    finally:
        await client.disconnect()
    assert [m["message"] for m in history] == ["before", "after"]
    stored = MongoClient(short_idle_db).get_default_database().messages
    assert stored.count_documents({"roomId": "idle-room"}) == 2
    assert stored.count_documents({"roomId": "other-room"}) == 1
