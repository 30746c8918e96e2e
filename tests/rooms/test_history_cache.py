"""The per-process history cache (`rooms/history.py`) never serves a stale history.

Messages are written straight into the database here, and deleted by the services running
in this test process, as another server process would: the cache must see new messages
through its range re-read, and deletes and re-created rooms through the room document.
"""

from __future__ import annotations

import mongoengine
import pytest

from chillout_project import mongo as process_mongo
from rooms import purge, services
from tests.factories import message_from_other_process as other_process_message


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
