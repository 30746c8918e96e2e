"""An acknowledged message survives a crash of the database (contract §2, Durability).

The worst moment: every `send_message` has been answered `ok: true`, and the database is
SIGKILLed at once, before it could flush anything on its own. On restart (same data
directory) every acknowledged message must be in the history, exactly once.

The database here is a private embedded one (`private_db_dir`: the session's is shared by
every test and must not be killed); the server under test points at it with `MONGO_URI`. The messages go
out concurrently, so the server's grouped inserts (rooms/writes.py) are exercised too: a
group is acknowledged by one write command, and its durability must cover all of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter

import httpx
from pymongo import MongoClient

from tests.realtime.conftest import SocketClient

MESSAGES = 40
DB_NAME = "chillout_durability"


async def send_acknowledged(url: str, room_id: str, count: int) -> list[str]:
    """Send `count` messages at once; return the ids of those acknowledged `ok: true`."""
    client = await SocketClient(url).connect()
    try:
        await client.join(room_id, "alice")
        acks = await asyncio.gather(
            *(
                client.call("send_message", {"roomId": room_id, "username": "alice", "message": f"durable {i}"})
                for i in range(count)
            )
        )
    finally:
        await client.disconnect()
    assert all(ack["ok"] is True for ack in acks), [ack for ack in acks if not ack.get("ok")]
    return [ack["message"]["_id"] for ack in acks]


async def test_acknowledged_messages_survive_a_sigkill_of_the_database(private_db_dir, server_factory, room_id):
    database = private_db_dir()
    server = server_factory(MONGO_URI=f"{database.uri}/{DB_NAME}", SEND_RATE="0")

    acknowledged = await send_acknowledged(server.url, room_id, MESSAGES)
    os.kill(database.pid, signal.SIGKILL)  # at once: no clean shutdown, no checkpoint
    database.process.wait()
    server.stop()

    restarted = private_db_dir()
    assert restarted.pid != database.pid
    client = MongoClient(restarted.uri, tz_aware=True)
    try:
        stored = [str(doc["_id"]) for doc in client[DB_NAME].messages.find({"roomId": room_id}, {"_id": 1})]
    finally:
        client.close()
    assert Counter(stored) == Counter(acknowledged), (
        f"{len(set(acknowledged) - set(stored))} of {len(acknowledged)} acknowledged messages lost, "
        f"{len(stored) - len(set(stored))} duplicated"
    )

    # And the history the clients read says the same, in the order they were sent.
    after = server_factory(MONGO_URI=f"{restarted.uri}/{DB_NAME}")
    with httpx.Client(base_url=after.url, timeout=30.0) as http:
        response = http.get(f"/api/room/{room_id}")
    assert response.status_code == 200
    history = [message["_id"] for message in response.json()["messages"]]
    assert Counter(history) == Counter(acknowledged)
    assert len(history) == MESSAGES
