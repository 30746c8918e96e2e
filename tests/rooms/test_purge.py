"""The purge service in-process, on a real database of its own (`rooms/purge.py`)."""

from __future__ import annotations

from datetime import timedelta

import mongoengine
import pytest
from bson import ObjectId
from tests.factories import LEGACY, media_chunk_count, media_file, media_file_seed, now, room_leftovers, seed_room
from tests.ops_support import separate_db_uri
from pymongo import MongoClient

from chillout_project import mongo
from rooms import purge, services

TTL = 3600


@pytest.fixture
def purge_db(settings, mongo_uri):
    """Point this process's mongo module at a fresh database whose rooms have no TTL index.

    The session's embedded server sweeps TTL indexes every second and would race the purge
    for the hand-made expired rooms; these tests are about the purge pass alone (what the
    TTL index leaves behind is seeded by deleting the room document by hand)."""
    uri = separate_db_uri(mongo_uri)
    settings.MONGO_URI = uri
    settings.ROOM_TTL_SECONDS = TTL
    settings.PURGE_GRACE_SECONDS = 5
    mongoengine.disconnect_all()
    mongo._uri = None
    mongo.reset_async_client()
    mongo.connect()
    client = MongoClient(uri, tz_aware=True)
    db = client.get_default_database()
    db.rooms.drop_index("lastActivity_1")
    yield db
    client.close()
    mongo.reset_async_client()
    mongoengine.disconnect_all()
    mongo._uri = None


def expired_at():
    return now() - timedelta(seconds=TTL + 60)


async def test_expired_room_leaves_nothing_and_live_room_is_untouched(purge_db):
    gone = seed_room(purge_db, "old-room", last_activity=expired_at(), messages=5, files=4)
    seed_room(purge_db, "live-room", last_activity=now() - timedelta(seconds=10), messages=5, files=2)
    before_live = room_leftovers(purge_db, "live-room")

    report = await purge.room_purge_expired()

    assert set(room_leftovers(purge_db, "old-room", gone["files"]).values()) == {0}
    assert room_leftovers(purge_db, "live-room") == before_live
    assert (report.rooms, report.messages, report.files_total) == (1, 9, 4)
    assert report.files == {"voices": 2, "images": 2}
    assert purge_db.locks.count_documents({}) == 0  # lease released


async def test_orphans_of_a_room_deleted_by_the_ttl_monitor_are_removed(purge_db):
    seeded = seed_room(purge_db, "ttl-deleted", last_activity=expired_at(), files=2)
    purge_db.rooms.delete_one({"roomId": "ttl-deleted"})  # what the TTL index does

    report = await purge.room_purge_expired()

    assert report.rooms == 0 and report.orphan_rooms == 1
    assert set(room_leftovers(purge_db, "ttl-deleted", seeded["files"]).values()) == {0}


async def test_room_written_a_moment_ago_is_not_purged(purge_db):
    seed_room(purge_db, "revived", last_activity=expired_at(), messages=2, files=1)
    stored = await services.message_create(room_id="revived", username="bob", text="still here")

    await purge.room_purge_expired()

    left = room_leftovers(purge_db, "revived")
    assert left["rooms"] == 1 and left["messages"] == 4 and left["voice.files"] == 1
    assert purge_db.messages.find_one({"_id": stored["_id"]}) is not None


async def test_expiry_is_rechecked_when_deleting(purge_db, monkeypatch):
    """A room listed as expired, then written before its delete, stays."""
    seed_room(purge_db, "raced", last_activity=expired_at(), messages=1, files=0)
    real_delete_one = type(mongo.async_db().rooms).delete_one

    async def write_then_delete(self, filter, *args, **kwargs):
        if self.name == "rooms":
            await services.message_create(room_id="raced", username="bob", text="just in time")
        return await real_delete_one(self, filter, *args, **kwargs)

    monkeypatch.setattr(type(mongo.async_db().rooms), "delete_one", write_then_delete)
    report = await purge.room_purge_expired()

    assert report.rooms == 0
    assert room_leftovers(purge_db, "raced")["messages"] == 2


async def test_young_orphans_wait_for_the_grace_period(purge_db):
    """A message stored under a missing room a moment ago may be a write re-creating it."""
    fresh = {"_id": ObjectId(), "roomId": "recreating", "username": "ann", "message": "hi", "type": "text",
             "url": None, "createdAt": now()}
    purge_db.messages.insert_one(fresh)

    await purge.room_purge_expired()
    assert purge_db.messages.find_one({"_id": fresh["_id"]}) is not None

    await purge.room_purge_expired(now=now() + timedelta(seconds=10))
    assert purge_db.messages.find_one({"_id": fresh["_id"]}) is None


async def test_dry_run_counts_and_deletes_nothing(purge_db):
    seed_room(purge_db, "old-dry", last_activity=expired_at(), messages=3, files=2)
    before = room_leftovers(purge_db, "old-dry")

    report = await purge.room_purge_expired(dry_run=True)

    assert (report.rooms, report.messages, report.files_total) == (1, 5, 2)
    assert room_leftovers(purge_db, "old-dry") == before


async def test_lease_is_exclusive_and_taken_over_when_expired(purge_db):
    first = await purge.lease_acquire(name="test", seconds=60)
    assert first is not None
    assert await purge.lease_acquire(name="test", seconds=60) is None

    purge_db.locks.update_one({"_id": "test"}, {"$set": {"expiresAt": now() - timedelta(seconds=1)}})
    second = await purge.lease_acquire(name="test", seconds=60)
    assert second is not None and second != first

    await purge.lease_release(name="test", owner=first)  # a stale owner releases nothing
    assert purge_db.locks.find_one({"_id": "test"})["owner"] == second


async def test_purge_refuses_while_another_process_holds_the_lease(purge_db):
    seed_room(purge_db, "old-busy", last_activity=expired_at(), messages=1, files=0)
    purge_db.locks.insert_one({"_id": purge.LEASE_ID, "owner": "elsewhere", "expiresAt": now() + timedelta(minutes=5)})

    with pytest.raises(purge.PurgeBusy):
        await purge.room_purge_expired()
    assert room_leftovers(purge_db, "old-busy")["rooms"] == 1


async def test_uploads_no_message_claimed_in_time_are_purged(purge_db, settings):
    """An upload unattached for UPLOAD_ATTACH_SECONDS goes; an attached one, a young one and
    a file stored before ownership existed (no `attachedTo`) stay."""
    settings.UPLOAD_ATTACH_SECONDS = 600
    seed_room(purge_db, "living", last_activity=now(), messages=1, files=0)
    old = now() - timedelta(seconds=601)

    def upload(*, attached_to=LEGACY, at=old):
        return media_file_seed(purge_db, kind="voice", room_id="living", data=b"x" * 1000,
                               content_type="audio/webm", upload_date=at, attached_to=attached_to)

    stale, claimed, young, legacy = upload(attached_to=None), upload(attached_to=ObjectId()), \
        upload(attached_to=None, at=now()), upload()

    dry = await purge.room_purge_expired(dry_run=True)
    assert dry.unattached_files == 1 and media_file(purge_db, kind="voice", file_id=stale) is not None
    report = await purge.room_purge_expired()

    assert report.unattached_files == 1 and report.files == {"voices": 1} and report.bytes == 1000
    assert media_file(purge_db, kind="voice", file_id=stale) is None
    assert media_chunk_count(purge_db, kind="voice", file_ids=[stale]) == 0
    for kept in (claimed, young, legacy):
        assert media_file(purge_db, kind="voice", file_id=kept) is not None
    assert room_leftovers(purge_db, "living")["rooms"] == 1
