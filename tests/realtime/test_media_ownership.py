"""A media file belongs to at most one message, of its uploader, in its room (contract §2).

`send_voice_message` / `send_image_message` may only name a file uploaded to that room under
the sender's bound name and not attached to another message; deleting a message deletes
only the file that message owns.
"""

import asyncio

import pytest
from bson import ObjectId

from tests.factories import media_file
from tests.realtime.conftest import media_upload, stored_messages

pytestmark = pytest.mark.parametrize("kind", ["voice", "image"])


def file_id_of(path: str) -> ObjectId:
    return ObjectId(path.rsplit("/", 1)[1])


async def test_another_users_file_is_refused_and_nothing_is_stored(joined, server, room_id, mongo, kind):
    path = await media_upload(server.url, room_id=room_id, kind=kind, username="bob")
    mallory = await joined("mallory")
    ack = await mallory.call(f"send_{kind}_message", {"roomId": room_id, "username": "mallory", "url": path})
    assert ack == {"ok": False, "error": f"this {kind} file was uploaded by another user"}
    barrier = await mallory.call("send_message", {"roomId": room_id, "username": "mallory", "message": "barrier"})
    assert (await mallory.next("receive_message"))["_id"] == barrier["message"]["_id"]
    assert mallory.received(f"receive_{kind}_message") == []
    assert [doc["type"] for doc in stored_messages(mongo, room_id)] == ["text"]
    assert media_file(mongo, kind=kind, file_id=file_id_of(path))["metadata"]["attachedTo"] is None


async def test_a_file_of_another_room_is_refused(joined, server, room_id, mongo, kind):
    path = await media_upload(server.url, room_id=f"{room_id}-elsewhere", kind=kind, username="alice")
    alice = await joined("alice")
    ack = await alice.call(f"send_{kind}_message", {"roomId": room_id, "username": "alice", "url": path})
    assert ack == {"ok": False, "error": f"no such {kind} file in this room"}
    assert stored_messages(mongo, room_id) == []


async def test_a_file_is_attached_once(joined, server, room_id, mongo, kind):
    path = await media_upload(server.url, room_id=room_id, kind=kind)
    alice = await joined("alice")
    first = await alice.call(f"send_{kind}_message", {"roomId": room_id, "username": "alice", "url": path})
    assert first["ok"] is True
    second = await alice.call(f"send_{kind}_message", {"roomId": room_id, "username": "alice", "url": path})
    assert second == {"ok": False, "error": f"this {kind} file is already attached to a message"}
    (doc,) = stored_messages(mongo, room_id)
    assert str(doc["_id"]) == first["message"]["_id"]
    assert media_file(mongo, kind=kind, file_id=file_id_of(path))["metadata"]["attachedTo"] == doc["_id"]


async def test_concurrent_sends_of_one_file_have_exactly_one_winner(connect, server, room_id, mongo, kind):
    path = await media_upload(server.url, room_id=room_id, kind=kind)
    senders = []
    for _ in range(6):  # six sockets of the same user: their events really run concurrently
        client = await connect()
        await client.join(room_id, "alice")
        senders.append(client)
    acks = await asyncio.gather(
        *(c.call(f"send_{kind}_message", {"roomId": room_id, "username": "alice", "url": path}) for c in senders)
    )
    assert sorted(ack["ok"] for ack in acks) == [False] * 5 + [True]
    assert {ack["error"] for ack in acks if not ack["ok"]} == {f"this {kind} file is already attached to a message"}
    (doc,) = stored_messages(mongo, room_id)
    winner = next(ack for ack in acks if ack["ok"])
    assert str(doc["_id"]) == winner["message"]["_id"]
    assert media_file(mongo, kind=kind, file_id=file_id_of(path))["metadata"]["attachedTo"] == doc["_id"]


async def test_delete_deletes_only_the_file_its_message_owns(joined, server, room_id, mongo, http, kind):
    """A message stored before ownership existed may name a file it does not own: deleting it
    must not delete that file (here: bob's file, named by a message of mallory's)."""
    bobs = await media_upload(server.url, room_id=room_id, kind=kind, username="bob")
    bob = await joined("bob")
    owned = await bob.call(f"send_{kind}_message", {"roomId": room_id, "username": "bob", "url": bobs})
    assert owned["ok"] is True
    pirate_id = ObjectId()
    mongo.messages.insert_one({**mongo.messages.find_one({"_id": ObjectId(owned["message"]["_id"])}),
                               "_id": pirate_id, "username": "mallory"})
    mallory = await joined("mallory")
    assert (await mallory.call("delete_message", {"roomId": room_id, "messageId": str(pirate_id)}))["ok"] is True
    await mallory.next("message_deleted")
    assert http.get(bobs).status_code == 200  # still there: mallory's message did not own it
    assert (await bob.call("delete_message", {"roomId": room_id, "messageId": owned["message"]["_id"]}))["ok"] is True
    assert http.get(bobs).status_code == 404
    assert media_file(mongo, kind=kind, file_id=file_id_of(bobs)) is None
