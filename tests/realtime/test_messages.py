"""send_message, send_voice_message, send_image_message, delete_message (contract §4)."""

import pytest
from bson import ObjectId

from tests.realtime.conftest import media_upload, stored_messages

WIRE_KEYS = ["username", "message", "type", "url", "_id", "createdAt"]
MEDIA_KEYS = {"voice": ["duration", "waveform"], "image": ["width", "height"]}  # after the fixed keys


async def test_send_message_reaches_everyone_in_the_room_once(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    outsider = await joined("carol", room=f"{room_id}-other")
    ack = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "  hello  "})
    assert ack["ok"] is True
    sent = ack["message"]
    assert list(sent) == WIRE_KEYS
    assert sent["username"] == "alice" and sent["message"] == "  hello  " and sent["type"] == "text"
    assert sent["url"] is None and sent["createdAt"].endswith("Z")
    assert await alice.next("receive_message") == sent
    assert await bob.next("receive_message") == sent
    await alice.assert_no("receive_message")
    await outsider.assert_no("receive_message")
    (doc,) = stored_messages(mongo, room_id)
    assert str(doc["_id"]) == sent["_id"] and doc["message"] == "  hello  " and doc["username"] == "alice"


@pytest.mark.parametrize(
    "message, error",
    [("", "empty"), ("   \n\t", "empty"), ("x" * 5001, "at most 5000"), (None, "string"), (42, "string")],
)
async def test_send_message_refuses_bad_text(joined, room_id, mongo, message, error):
    alice = await joined("alice")
    ack = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": message})
    assert ack["ok"] is False and error in ack["error"]
    await alice.assert_no("receive_message")
    assert stored_messages(mongo, room_id) == []


async def test_text_length_is_counted_in_code_points(joined, room_id):
    alice = await joined("alice")
    ack = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "😀" * 5000})
    assert ack["ok"] is True and ack["message"]["message"] == "😀" * 5000


@pytest.mark.parametrize("kind", ["voice", "image"])
@pytest.mark.parametrize("prefix", ["", "http://localhost:5000", "https://attacker.example"])
async def test_media_message_stores_the_path_and_broadcasts_absolute_urls(
    joined, server, room_id, mongo, kind, prefix
):
    path = await media_upload(server.url, room_id=room_id, kind=kind)
    alice = await joined("alice")
    bob = await joined("bob")
    ack = await alice.call(f"send_{kind}_message", {"roomId": room_id, "username": "alice", "url": prefix + path})
    assert ack["ok"] is True, ack
    sent = ack["message"]
    assert list(sent) == WIRE_KEYS + MEDIA_KEYS[kind]
    assert sent["type"] == kind
    assert sent["message"] == {"voice": "Voice message", "image": "Image message"}[kind]
    assert sent["url"] == server.url + path
    event = f"receive_{kind}_message"
    assert await bob.next(event) == sent
    assert await alice.next(event) == sent
    await alice.assert_no(event)
    (doc,) = stored_messages(mongo, room_id)
    assert doc["url"] == path and doc["type"] == kind


@pytest.mark.parametrize(
    "url",
    [
        "/api/image/{id}",  # other bucket
        "/api/voice/000000000000000000000000",  # no such file
        "ftp://host/api/voice/{id}",
        "/api/voice/{id}?x=1",
        "/api/voice/{id}/",
        "//host/api/voice/{id}",
        "http:///api/voice/{id}",
        "javascript:alert(1)",
        "http://[bad/api/voice/{id}",
        "x" * 3000,
        {"$ne": None},
        None,
    ],
)
async def test_voice_message_refuses_urls_that_name_no_voice_file_of_the_room(
    joined, server, room_id, mongo, url
):
    path = await media_upload(server.url, room_id=room_id, kind="voice")
    file_id = path.rsplit("/", 1)[1]
    alice = await joined("alice")
    payload_url = url.replace("{id}", file_id) if isinstance(url, str) else url
    ack = await alice.call("send_voice_message", {"roomId": room_id, "username": "alice", "url": payload_url})
    assert ack["ok"] is False, ack
    await alice.assert_no("receive_voice_message")
    assert stored_messages(mongo, room_id) == []


async def test_media_of_another_room_is_refused(joined, server, room_id, mongo):
    path = await media_upload(server.url, room_id=f"{room_id}-other", kind="image")
    alice = await joined("alice")
    ack = await alice.call("send_image_message", {"roomId": room_id, "username": "alice", "url": path})
    assert ack == {"ok": False, "error": "no such image file in this room"}
    assert stored_messages(mongo, room_id) == []


async def test_delete_message_by_its_author(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    sent = (await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "oops"}))["message"]
    assert await alice.call("delete_message", {"roomId": room_id, "messageId": sent["_id"]}) == {"ok": True}
    assert await alice.next("message_deleted") == {"messageId": sent["_id"]}
    assert await bob.next("message_deleted") == {"messageId": sent["_id"]}
    assert stored_messages(mongo, room_id) == []


async def test_delete_message_by_someone_else_is_refused(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    sent = (await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "mine"}))["message"]
    ack = await bob.call("delete_message", {"roomId": room_id, "messageId": sent["_id"]})
    assert ack["ok"] is False and "author" in ack["error"]
    await alice.assert_no("message_deleted")
    assert len(stored_messages(mongo, room_id)) == 1


async def test_delete_unknown_message_emits_nothing(joined, room_id):
    alice = await joined("alice")
    ack = await alice.call("delete_message", {"roomId": room_id, "messageId": str(ObjectId())})
    assert ack == {"ok": False, "error": "message not found"}
    await alice.assert_no("message_deleted")


async def test_delete_media_message_deletes_its_file(joined, server, room_id, mongo, http):
    path = await media_upload(server.url, room_id=room_id, kind="voice")
    alice = await joined("alice")
    sent = (await alice.call("send_voice_message", {"roomId": room_id, "username": "alice", "url": path}))["message"]
    assert http.get(path).status_code == 200
    assert (await alice.call("delete_message", {"roomId": room_id, "messageId": sent["_id"]}))["ok"] is True
    await alice.next("message_deleted")
    assert http.get(path).status_code == 404
    assert mongo["voices.files"].find_one({"_id": ObjectId(path.rsplit("/", 1)[1])}) is None


async def test_history_has_the_sent_messages_in_wire_shape(joined, room_id, http):
    alice = await joined("alice")
    sent = (await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "kept"}))["message"]
    history = http.get(f"/api/room/{room_id}").json()["messages"]
    assert history == [sent]


async def test_public_url_is_the_base_of_media_urls(connect, server_factory, room_id):
    public = server_factory(PUBLIC_URL="https://chat.example.org")
    path = await media_upload(public.url, room_id=room_id, kind="image")
    alice = await connect(url=public.url)
    await alice.join(room_id, "alice")
    ack = await alice.call("send_image_message", {"roomId": room_id, "url": f"http://evil.example{path}"})
    assert ack["message"]["url"] == f"https://chat.example.org{path}"
    assert (await alice.next("receive_image_message"))["url"] == f"https://chat.example.org{path}"
