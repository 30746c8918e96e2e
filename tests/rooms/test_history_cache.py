"""The per-process history cache (`rooms/history.py`) never serves a stale history.

Messages are written straight into the database here, as another server process would:
the cache must see them through its range re-read, and see deletes and re-created rooms
through the room document.
"""

from __future__ import annotations

import os
import struct
import time
from datetime import UTC, datetime

from bson import ObjectId


def other_process_message(mongo, room_id: str, text: str, *, age_seconds: float = 0.0) -> ObjectId:
    """Store a message as another process would, its `_id` made `age_seconds` ago."""
    at = time.time() - age_seconds
    oid = ObjectId(struct.pack(">I", int(at)) + os.urandom(8))
    mongo.messages.insert_one({"_id": oid, "roomId": room_id, "username": "other", "message": text, "type": "text",
                               "url": None, "createdAt": datetime.fromtimestamp(int(at * 1000) / 1000, tz=UTC)})
    return oid


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


def test_a_delete_and_a_recreated_room_are_seen(http, mongo, room_id):
    for n in range(3):
        other_process_message(mongo, room_id, f"m{n}", age_seconds=60 - n)
    assert texts(http, room_id) == ["m0", "m1", "m2"]
    mongo.messages.delete_one({"roomId": room_id, "message": "m1"})
    mongo.rooms.update_one({"roomId": room_id}, {"$set": {"historyVersion": ObjectId()}})  # what message_delete does
    assert texts(http, room_id) == ["m0", "m2"]
    mongo.rooms.delete_one({"roomId": room_id})
    mongo.messages.delete_many({"roomId": room_id})
    assert texts(http, room_id) == []
