"""The per-process history cache (`rooms/history.py`) never serves a stale history.

Messages are written straight into the database here, and deleted by the services running
in this test process, as another server process would: the cache must see new messages
through its range re-read, and deletes and re-created rooms through the room document.
"""

from __future__ import annotations

import asyncio
import os
import struct
from datetime import UTC, datetime

import httpx
import mongoengine
import pytest
from bson import ObjectId

from chillout_project import mongo as process_mongo
from rooms import backup, purge, services
from rooms.documents import MESSAGES
from rooms.history import OWN_SPAN_MIN
from tests.factories import message_doc
from tests.factories import message_from_other_process as other_process_message
from tests.realtime.conftest import connect  # noqa: F401  (fixture)


@pytest.fixture
async def services_here(settings, mongo_uri):
    """This test process's services write to the session database, as another server process would."""
    settings.MONGO_URI = mongo_uri
    mongoengine.disconnect_all()
    process_mongo._uri = None
    process_mongo.reset_async_client()
    process_mongo.connect(ensure_indexes=False)
    yield
    process_mongo.reset_async_client()
    mongoengine.disconnect_all()
    process_mongo._uri = None


def texts(http, room_id: str, query: str = "") -> list[str]:
    response = http.get(f"/api/room/{room_id}{query}")
    assert response.status_code == 200
    return [m["message"] for m in response.json()["messages"]]


def test_a_message_stored_by_another_process_appears_in_id_order(http, mongo, room_id):
    first = other_process_message(mongo, room_id, "first", age_seconds=60)
    assert texts(http, room_id) == ["first"]
    other_process_message(mongo, room_id, "late", age_seconds=2)  # made before the last read, stored after it
    other_process_message(mongo, room_id, "new")
    assert texts(http, room_id) == ["first", "late", "new"]
    assert texts(http, room_id, "?limit=2") == ["late", "new"]
    assert texts(http, room_id, f"?before={first}") == []


async def test_a_delete_and_a_recreated_room_are_seen(http, mongo, room_id, services_here):
    ids = [other_process_message(mongo, room_id, f"m{n}", age_seconds=60 - n) for n in range(3)]
    assert texts(http, room_id) == ["m0", "m1", "m2"]
    await services.message_delete(room_id=room_id, message_id=ids[1], username="other")
    assert texts(http, room_id) == ["m0", "m2"]
    await purge.room_delete(room_id=room_id)
    assert texts(http, room_id) == []


async def sent_in_one_second(client, room_id: str) -> tuple[bytes, list[str]]:
    """Send messages through the server until `OWN_SPAN_MIN` of them share one (second,
    process) `_id` prefix, the range its re-read stops reading back; returns that prefix and
    every text sent."""
    texts_sent: list[str] = []
    for attempt in range(5):
        batch = [f"own{attempt}.{n}" for n in range(3 * OWN_SPAN_MIN)]
        acks = await asyncio.gather(
            *(client.call("send_message", {"roomId": room_id, "username": "alice", "message": t}) for t in batch)
        )
        assert all(ack["ok"] for ack in acks), acks
        texts_sent += batch
        prefixes: dict[bytes, int] = {}
        for ack in acks:
            prefix = ObjectId(ack["message"]["_id"]).binary[:9]
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
        prefix, count = max(prefixes.items(), key=lambda item: item[1])
        if count >= OWN_SPAN_MIN:
            return prefix, texts_sent
    raise AssertionError("no second held enough of the sends")


def stored_beside(mongo, room_id: str, text: str, oid: ObjectId) -> None:
    created = datetime.fromtimestamp(struct.unpack(">I", oid.binary[:4])[0], tz=UTC)
    mongo[MESSAGES].insert_one(message_doc(room_id, text, username="other", created_at=created, oid=oid))


@pytest.fixture(scope="module")
def unlimited_server(server_factory):
    """A server without the per-socket send rate: one socket sends dozens of messages in a second."""
    return server_factory(SEND_RATE="0")


async def test_another_process_message_in_a_second_this_process_wrote_appears(connect, unlimited_server, mongo, room_id):  # noqa: F811
    http = httpx.Client(base_url=unlimited_server.url, timeout=30.0)
    assert texts(http, room_id) == []  # a reader opened the room: the server caches it
    alice = await connect(url=unlimited_server.url)
    await alice.join(room_id, "alice")
    prefix, own = await sent_in_one_second(alice, room_id)
    stored = [d["message"] for d in mongo[MESSAGES].find({"roomId": room_id}).sort("_id", 1)]
    assert sorted(stored) == sorted(own)
    assert await asyncio.to_thread(texts, http, room_id) == stored  # the server's own, merged from its notes
    # Another process's messages of that same second, on both sides of the server's range,
    # stored (made visible) only now, after the read above.
    second, process = prefix[:4], prefix[4:]
    below = ObjectId(second + bytes(x - 1 if x else 0 for x in process[:1]) + b"\x00" * 4 + os.urandom(3))
    above = ObjectId(second + b"\xff" * 5 + os.urandom(3))
    assert below.binary[:9] != prefix != above.binary[:9]
    stored_beside(mongo, room_id, "other, below", below)
    stored_beside(mongo, room_id, "other, above", above)
    expected = sorted(mongo[MESSAGES].find({"roomId": room_id}), key=lambda d: d["_id"])
    got = await asyncio.to_thread(texts, http, room_id)
    assert got == [d["message"] for d in expected]
    assert {"other, below", "other, above"} <= set(got) and len(got) == len(own) + 2


@pytest.fixture(scope="module")
def quick_quiet_server(server_factory):
    """A server whose rooms go quiet (`rooms.history.history_quiet`) 2.5 s after their last touch."""
    return server_factory(HISTORY_CACHE_LAG_SECONDS="0.5", ROOM_TOUCH_RESOLUTION_SECONDS="1")


async def test_a_quiet_room_still_sees_every_message_of_another_process(
    quick_quiet_server, room_id, services_here, settings
):
    settings.HISTORY_CACHE_LAG_SECONDS = 0.5  # this test process is the other server process
    settings.ROOM_TOUCH_RESOLUTION_SECONDS = 1
    http = httpx.Client(base_url=quick_quiet_server.url, timeout=30.0)
    await services.message_create(room_id=room_id, username="other", text="first")
    assert await asyncio.to_thread(texts, http, room_id) == ["first"]
    await asyncio.sleep(3)  # the room goes quiet: its reads stop re-reading the lag window
    assert await asyncio.to_thread(texts, http, room_id) == ["first"]
    await services.message_create(room_id=room_id, username="other", text="second")  # moves lastActivity
    assert await asyncio.to_thread(texts, http, room_id) == ["first", "second"]
    await services.message_create(room_id=room_id, username="other", text="third")  # within the resolution: no move
    assert await asyncio.to_thread(texts, http, room_id) == ["first", "second", "third"]


async def test_a_room_replaced_by_an_import_is_seen(http, mongo, room_id, services_here):
    """A replace-import restores the room under its old `_id`: only its new `historyVersion`
    tells the cache that what it holds is gone."""
    for n in range(3):
        other_process_message(mongo, room_id, f"m{n}", age_seconds=60 - n)
    assert texts(http, room_id) == ["m0", "m1", "m2"]
    export = await asyncio.to_thread(backup.room_export, room_id=room_id)
    other_process_message(mongo, room_id, "after the export")
    assert texts(http, room_id) == ["m0", "m1", "m2", "after the export"]
    await asyncio.to_thread(backup.room_import, data=export, replace=True)
    assert texts(http, room_id) == ["m0", "m1", "m2"]
