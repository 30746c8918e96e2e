"""The periodic purge inside a real server: an idle room disappears with everything it had,
while a room that keeps being written stays whole."""

from __future__ import annotations


import httpx
from tests.factories import PNG, WAV, media_chunk_count, media_file, room_leftovers
from tests.realtime.conftest import SocketClient, media_upload
from tests.ops_support import separate_db_uri
from tests.waiting import async_wait_until, attempts_for, wait_until
from bson import ObjectId
from pymongo import MongoClient
from prometheus_client.parser import text_string_to_metric_families


def test_idle_room_is_purged_whole_and_busy_room_is_kept(server_factory, mongo_uri):
    uri = separate_db_uri(mongo_uri)
    server = server_factory(MONGO_URI=uri, ROOM_TTL_SECONDS="2", PURGE_INTERVAL_SECONDS="1",
                            PURGE_GRACE_SECONDS="1", METRICS="open")
    db = MongoClient(uri, tz_aware=True).get_default_database()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        idle_files = []
        for field, blob in (("voice", WAV), ("image", PNG)):
            response = client.post(f"/api/room/idle/{field}", files={field: ("blob", blob)}, data={"username": "ann"})
            assert response.status_code == 200, response.text
            idle_files.append((field, response.json()["url"].rsplit("/", 1)[1]))
        client.post("/api/room/busy/image", files={"image": ("blob", PNG)})
        db.messages.insert_one({"roomId": "idle", "username": "ann", "message": "hi", "type": "text", "url": None,
                                "createdAt": db.rooms.find_one({"roomId": "idle"})["lastActivity"]})
        idle_ids = [(kind, ObjectId(i)) for kind, i in idle_files]

        def idle_room_purged_while_busy_one_is_written() -> bool:
            # Every write touches its room: this one never goes idle for 2 s.
            assert client.post("/api/room/busy/image", files={"image": ("blob", PNG)}).status_code == 200
            return set(room_leftovers(db, "idle", idle_ids).values()) == {0}

        wait_until(idle_room_purged_while_busy_one_is_written, attempts=attempts_for(120, 0.3), pause=0.3,
                   message=lambda: f"idle room not purged: {room_leftovers(db, 'idle', idle_ids)}")  # fmt: skip
        busy = room_leftovers(db, "busy")
        assert busy["rooms"] == 1 and busy["image.files"] >= 2 and busy["image.chunks"] >= 2
        assert purge_removed(client.get("/metrics").text) > 0


def purge_removed(metrics_text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "chillout_purge_removed_total"
    )


async def test_an_upload_no_message_claims_is_purged_after_upload_attach_seconds(server_factory, mongo_uri):
    uri = separate_db_uri(mongo_uri)
    server = server_factory(MONGO_URI=uri, UPLOAD_ATTACH_SECONDS="2", PURGE_INTERVAL_SECONDS="1")
    db = MongoClient(uri, tz_aware=True).get_default_database()
    # Joined before the upload, so that only the send itself stands between the upload and
    # its claim (the claim must come within UPLOAD_ATTACH_SECONDS, however slow the machine).
    client = await SocketClient(server.url).connect()
    try:
        await client.join("room-a", "ann")
        attached = await media_upload(server.url, room_id="room-a", kind="image", username="ann")
        assert (await client.call("send_image_message", {"roomId": "room-a", "url": attached}))["ok"] is True
    finally:
        await client.disconnect()
    unattached = await media_upload(server.url, room_id="room-a", kind="image", username="ann")
    unattached_id = ObjectId(unattached.rsplit("/", 1)[1])

    # Gone: a pass ran with a cutoff after both uploads (the attached one is the older).
    await async_wait_until(lambda: media_file(db, kind="image", file_id=unattached_id) is None,
                           attempts=attempts_for(120), message="the unattached upload was not purged")  # fmt: skip
    assert media_chunk_count(db, kind="image", file_ids=[unattached_id]) == 0
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get(attached)).status_code == 200
        assert (await http.get(unattached)).status_code == 404
