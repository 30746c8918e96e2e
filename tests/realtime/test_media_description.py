"""Issue 13: media messages describe their file — voice `duration` (ms) and `waveform` (64 ints
0–255), image `width` and `height` — after the fixed keys, in receive_* payloads, in the
history, through export/import; and an image message takes its thumbnails with it."""

import json

from bson import ObjectId

from tests import factories
from tests.factories import media_thumbnails, tagged_media
from tests.ops_support import manage
from tests.realtime.conftest import media_upload, stored_messages

WIRE_KEYS = ["username", "message", "type", "url", "_id", "createdAt"]


def assert_waveform(waveform) -> None:
    assert isinstance(waveform, list) and len(waveform) == 64
    assert all(isinstance(v, int) and 0 <= v <= 255 for v in waveform)
    assert max(waveform) == 255


async def test_receive_voice_message_carries_duration_and_waveform_after_the_fixed_keys(joined, server, room_id, mongo):
    note = tagged_media.voice("webm", seconds=1.5, silent_first_half=True)
    path = await media_upload(server.url, room_id=room_id, kind="voice", data=note)
    alice, bob = await joined("alice"), await joined("bob")
    ack = await alice.call("send_voice_message", {"roomId": room_id, "username": "alice", "url": path})
    assert ack["ok"] is True, ack
    sent = ack["message"]
    assert list(sent) == WIRE_KEYS + ["duration", "waveform"]
    assert abs(sent["duration"] - 1500) <= 60
    assert_waveform(sent["waveform"])
    assert max(sent["waveform"][:28]) == 0 < min(sent["waveform"][36:])  # silent, then the tone
    received = await bob.next("receive_voice_message")
    assert received == sent and list(received) == list(sent)
    (doc,) = stored_messages(mongo, room_id)
    assert doc["duration"] == sent["duration"] and doc["waveform"] == sent["waveform"]


async def test_receive_image_message_carries_width_and_height_as_displayed(joined, server, room_id, mongo):
    photo = tagged_media.jpeg(width=64, height=32, orientation=6)  # shown turned: 32 × 64
    path = await media_upload(server.url, room_id=room_id, kind="image", data=photo)
    alice, bob = await joined("alice"), await joined("bob")
    sent = (await alice.call("send_image_message", {"roomId": room_id, "username": "alice", "url": path}))["message"]
    assert list(sent) == WIRE_KEYS + ["width", "height"]
    assert (sent["width"], sent["height"]) == (32, 64)
    assert await bob.next("receive_image_message") == sent
    (doc,) = stored_messages(mongo, room_id)
    assert (doc["width"], doc["height"]) == (32, 64)


async def test_text_and_call_messages_carry_no_media_keys(joined, room_id):
    alice = await joined("alice")
    sent = (await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "hi"}))["message"]
    assert list(sent) == WIRE_KEYS
    assert (await alice.call("join_call", {"roomId": room_id, "username": "alice"}))["ok"] is True
    assert list(await alice.next("call_notification")) == WIRE_KEYS + ["callInitiator"]


async def test_history_keeps_the_description_in_the_same_order(joined, server, room_id, http):
    alice = await joined("alice")
    voice = await media_upload(server.url, room_id=room_id, kind="voice", data=tagged_media.voice("ogg", seconds=1.0))
    image = await media_upload(server.url, room_id=room_id, kind="image", data=tagged_media.png(width=30, height=20))
    sent = [
        (await alice.call("send_voice_message", {"roomId": room_id, "url": voice}))["message"],
        (await alice.call("send_message", {"roomId": room_id, "message": "between"}))["message"],
        (await alice.call("send_image_message", {"roomId": room_id, "url": image}))["message"],
    ]
    history = http.get(f"/api/room/{room_id}").json()["messages"]
    assert history == sent
    assert [list(m) for m in history] == [
        WIRE_KEYS + ["duration", "waveform"], WIRE_KEYS, WIRE_KEYS + ["width", "height"]
    ]
    assert http.get(f"/api/room/{room_id}", params={"limit": 2}).json()["messages"] == sent[1:]


async def test_export_import_round_trip_keeps_the_description(joined, server, room_id, http, mongo, mongo_uri, tmp_path):
    alice = await joined("alice")
    voice = await media_upload(server.url, room_id=room_id, kind="voice", data=tagged_media.voice("webm", seconds=1.0))
    image = await media_upload(server.url, room_id=room_id, kind="image", data=tagged_media.webp())
    await alice.call("send_voice_message", {"roomId": room_id, "url": voice})
    await alice.call("send_image_message", {"roomId": room_id, "url": image})
    before = http.get(f"/api/room/{room_id}").json()["messages"]
    voice_bytes, image_bytes = http.get(voice).content, http.get(image).content

    export = manage("export_room", room_id, "--with-media", str(tmp_path / "media"), mongo_uri=mongo_uri)
    assert export.returncode == 0, export.stderr
    exported = json.loads(export.stdout)
    assert [m.get("duration") is not None for m in exported["messages"]] == [True, False]
    assert {e["file"]["metadata"]["description"].keys().__len__() for e in exported["media"]} == {2}
    assert manage("delete_room", room_id, mongo_uri=mongo_uri).returncode == 0
    assert http.get(voice).status_code == 404
    imported = manage("import_room", "-", "--media", str(tmp_path / "media"), mongo_uri=mongo_uri, stdin=export.stdout)
    assert imported.returncode == 0, imported.stderr

    after = http.get(f"/api/room/{room_id}").json()["messages"]
    assert after == before
    assert [list(m)[6:] for m in after] == [["duration", "waveform"], ["width", "height"]]
    assert http.get(voice).content == voice_bytes and http.get(image).content == image_bytes
    # The imported files keep their description and stay owned by their imported message.
    stored = factories.media_file(mongo, kind="image", file_id=ObjectId(image.rsplit("/", 1)[1]))
    assert stored["metadata"]["description"] == {"width": before[1]["width"], "height": before[1]["height"]}
    again = await alice.call("send_image_message", {"roomId": room_id, "url": image})
    assert again == {"ok": False, "error": "this image file is already attached to a message"}


async def test_deleting_the_image_message_deletes_its_thumbnails(joined, server, room_id, mongo, http):
    path = await media_upload(server.url, room_id=room_id, kind="image", data=tagged_media.jpeg(width=400, height=300))
    file_id = ObjectId(path.rsplit("/", 1)[1])
    alice = await joined("alice")
    sent = (await alice.call("send_image_message", {"roomId": room_id, "username": "alice", "url": path}))["message"]
    for width in (160, 320):
        assert http.get(path, params={"w": width}).status_code == 200
    assert len(media_thumbnails(mongo, file_id=file_id)) == 2

    assert (await alice.call("delete_message", {"roomId": room_id, "messageId": sent["_id"]}))["ok"] is True
    await alice.next("message_deleted")
    assert media_thumbnails(mongo, file_id=file_id) == []
    assert http.get(path, params={"w": 160}).json() == {"error": "File not found"}
