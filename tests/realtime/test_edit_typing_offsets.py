"""Issue 12's additive events (contract §4): `edit_message`, `typing`, `clientOffset` on sends."""

import asyncio
import signal

import pytest
from bson import ObjectId

from rooms.documents import MESSAGES
from tests.realtime.conftest import WAIT, media_upload, stored_messages
from tests.waiting import async_wait_until, attempts_for

WIRE_KEYS = ["username", "message", "type", "url", "_id", "createdAt"]


# --- edit_message ----------------------------------------------------------------------------


async def test_edit_by_the_author_reaches_the_room_and_the_history(joined, room_id, mongo, http):
    alice = await joined("alice")
    bob = await joined("bob")
    sent = (await alice.call("send_message", {"roomId": room_id, "message": "draft"}))["message"]
    assert [m["message"] for m in http.get(f"/api/room/{room_id}").json()["messages"]] == ["draft"]  # cached
    ack = await alice.call("edit_message", {"roomId": room_id, "messageId": sent["_id"], "message": "final ✓"})
    assert ack["ok"] is True
    edited = ack["message"]
    assert list(edited) == [*WIRE_KEYS, "editedAt"]
    assert {k: edited[k] for k in WIRE_KEYS} == {**sent, "message": "final ✓"}
    notice = {"messageId": sent["_id"], "message": "final ✓", "editedAt": edited["editedAt"]}
    assert await alice.next("message_edited") == notice
    assert await bob.next("message_edited") == notice
    assert edited["editedAt"].endswith("Z") and edited["editedAt"] >= sent["createdAt"]
    history = http.get(f"/api/room/{room_id}").json()["messages"]
    assert history == [edited]
    (doc,) = stored_messages(mongo, room_id)
    assert doc["message"] == "final ✓" and "editedAt" in doc


@pytest.mark.parametrize(
    "message, error",
    [("", "empty"), ("  \n", "empty"), ("x" * 5001, "at most 5000"), (None, "string"), ({"$set": 1}, "string")],
)
async def test_edit_follows_the_text_rules(joined, room_id, mongo, message, error):
    alice = await joined("alice")
    sent = (await alice.call("send_message", {"roomId": room_id, "message": "keep"}))["message"]
    ack = await alice.call("edit_message", {"roomId": room_id, "messageId": sent["_id"], "message": message})
    assert ack["ok"] is False and error in ack["error"]
    await alice.assert_no("message_edited")
    assert [doc["message"] for doc in stored_messages(mongo, room_id)] == ["keep"]


async def test_edit_by_someone_else_unknown_or_not_text_is_refused(joined, server, room_id, mongo, http):
    alice = await joined("alice")
    bob = await joined("bob")
    sent = (await alice.call("send_message", {"roomId": room_id, "message": "mine"}))["message"]
    ack = await bob.call("edit_message", {"roomId": room_id, "messageId": sent["_id"], "message": "yours"})
    assert ack == {"ok": False, "error": "only the author of a message can edit it"}
    ack = await alice.call("edit_message", {"roomId": room_id, "messageId": str(ObjectId()), "message": "x"})
    assert ack == {"ok": False, "error": "message not found"}
    path = await media_upload(server.url, room_id=room_id, kind="voice")
    voice = (await alice.call("send_voice_message", {"roomId": room_id, "url": path}))["message"]
    ack = await alice.call("edit_message", {"roomId": room_id, "messageId": voice["_id"], "message": "x"})
    assert ack == {"ok": False, "error": "only text messages can be edited"}
    for client in (alice, bob):
        await client.assert_no("message_edited")
    assert [doc["message"] for doc in stored_messages(mongo, room_id)] == ["mine", "Voice message"]
    assert all("editedAt" not in m for m in http.get(f"/api/room/{room_id}").json()["messages"])


# --- typing ----------------------------------------------------------------------------------


async def test_typing_reaches_the_others_only_when_it_changes(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    for _ in range(3):
        assert await alice.call("typing", {"roomId": room_id, "typing": True}) == {"ok": True}
    assert await bob.next("user_typing") == {"username": "alice", "typing": True}
    assert await alice.call("typing", {"roomId": room_id, "typing": False}) == {"ok": True}
    assert await bob.next("user_typing") == {"username": "alice", "typing": False}
    assert await alice.call("typing", {"roomId": room_id, "typing": False}) == {"ok": True}  # not typing: nothing
    # `true` is volatile (no offset, never replayed), `false` is a logged room broadcast
    assert bob.offsets_of("user_typing")[0] is None and bob.offsets_of("user_typing")[1] is not None
    await alice.assert_no("user_typing")  # never to the typist
    await bob.assert_no("user_typing")
    assert stored_messages(mongo, room_id) == []


async def test_a_typist_who_disconnects_or_leaves_stops_typing(joined, room_id):
    alice = await joined("alice")
    carol = await joined("carol")
    bob = await joined("bob")
    await alice.call("typing", {"roomId": room_id, "typing": True})
    await carol.call("typing", {"roomId": room_id, "typing": True})
    assert [await bob.next("user_typing") for _ in range(2)] == [
        {"username": "alice", "typing": True}, {"username": "carol", "typing": True}
    ]  # fmt: skip
    await alice.disconnect()
    assert await bob.next("user_typing") == {"username": "alice", "typing": False}
    assert await carol.call("leave_room", {"roomId": room_id}) == {"ok": True}
    assert await bob.next("user_typing") == {"username": "carol", "typing": False}


async def test_typing_stops_by_itself_after_the_timeout(server_factory, connect, room_id):
    quick = server_factory(TYPING_TIMEOUT_SECONDS="0.3")
    alice = await connect(url=quick.url)
    bob = await connect(url=quick.url)
    await alice.join(room_id, "alice")
    await bob.join(room_id, "bob")
    await alice.call("typing", {"roomId": room_id, "typing": True})
    assert await bob.next("user_typing") == {"username": "alice", "typing": True}
    assert await bob.next("user_typing") == {"username": "alice", "typing": False}  # nobody said so
    await alice.call("typing", {"roomId": room_id, "typing": True})  # typing again: announced again
    assert await bob.next("user_typing") == {"username": "alice", "typing": True}


async def test_typing_has_its_own_rate_limit(server_factory, connect, room_id):
    limited = server_factory(TYPING_RATE="0.01", TYPING_BURST="2", SEND_RATE="0.01", SEND_BURST="1")
    alice = await connect(url=limited.url)
    await alice.join(room_id, "alice")
    for typing in (True, False):
        assert await alice.call("typing", {"roomId": room_id, "typing": typing}) == {"ok": True}
    assert await alice.call("typing", {"roomId": room_id, "typing": True}) == {"ok": False, "error": "rate limited"}
    # the write bucket is untouched by typing
    assert (await alice.call("send_message", {"roomId": room_id, "message": "hi"}))["ok"] is True


# --- clientOffset ------------------------------------------------------------------------------


async def test_a_repeated_client_offset_stores_and_broadcasts_once(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    payload = {"roomId": room_id, "username": "alice", "message": "once", "clientOffset": "c-1"}
    first = await alice.call("send_message", payload)
    assert first["ok"] is True and list(first["message"]) == WIRE_KEYS  # the offset is never on the wire
    assert await alice.call("send_message", payload) == first
    assert await alice.call("send_message", {**payload, "message": "changed text"}) == first  # the key is the offset
    # another sender's offset, or another room's, is another message
    other = await bob.call("send_message", {**payload, "username": "bob"})
    assert other["ok"] is True and other["message"]["_id"] != first["message"]["_id"]
    assert [(await alice.next("receive_message"))["_id"] for _ in range(2)] == [
        first["message"]["_id"], other["message"]["_id"]
    ]  # fmt: skip
    await alice.assert_no("receive_message")
    docs = stored_messages(mongo, room_id)
    assert [(d["username"], d["message"], d.get("clientOffset")) for d in docs] == [
        ("alice", "once", "c-1"), ("bob", "once", "c-1")
    ]  # fmt: skip


async def test_copies_sent_at_once_store_one_message(connect, room_id, mongo):
    """Two sockets of one user send the same offset in the same moment: one insert batch
    (rooms.writes.InsertGroup) holds both; the loser acks the winner, nothing is broadcast twice."""
    tabs = [await connect() for _ in range(3)]
    for tab in tabs:
        await tab.join(room_id, "alice")
    payload = {"roomId": room_id, "username": "alice", "message": "twin", "clientOffset": "burst-1"}
    acks = await asyncio.gather(*(tab.call("send_message", payload) for tab in tabs))
    assert acks[0]["ok"] is True and acks.count(acks[0]) == 3
    barrier = await tabs[0].call("send_message", {"roomId": room_id, "message": "barrier"})
    assert [(await tabs[1].next("receive_message"))["message"] for _ in range(2)] == ["twin", "barrier"]
    assert barrier["ok"] is True
    assert [d["message"] for d in stored_messages(mongo, room_id)] == ["twin", "barrier"]


async def test_a_send_stored_by_a_server_killed_before_its_ack_is_used_is_stored_once(
    server_factory, server, connect, room_id, mongo
):
    """The lost acknowledgement at its worst: the server is SIGKILLed as soon as the message
    is in the database, before the client has taken any ack. The client sends it again, with
    the same clientOffset, to another process: it gets the stored message back, nothing is
    stored or broadcast a second time."""
    doomed = server_factory()
    alice = await connect(url=doomed.url)
    await alice.join(room_id, "alice")
    payload = {"roomId": room_id, "username": "alice", "message": "through the crash", "clientOffset": "kill-1"}
    await alice.emit("send_message", payload)  # its ack is never read
    stored = await async_wait_until(
        lambda: asyncio.to_thread(mongo[MESSAGES].find_one, {"roomId": room_id, "clientOffset": "kill-1"}),
        attempts=attempts_for(WAIT), message="the send never reached the database",
    )  # fmt: skip
    doomed.stop(sig=signal.SIGKILL)
    bob = await connect(url=server.url)
    await bob.join(room_id, "bob")
    again = await connect(url=server.url)
    await again.join(room_id, "alice")
    ack = await again.call("send_message", payload)
    assert ack["ok"] is True and ack["message"]["_id"] == str(stored["_id"])
    await bob.assert_no("receive_message")
    assert [(d["message"], d["clientOffset"]) for d in stored_messages(mongo, room_id)] == [("through the crash", "kill-1")]


@pytest.mark.parametrize("kind", ["voice", "image"])
async def test_a_repeated_media_send_acks_the_original(joined, server, room_id, mongo, kind):
    path = await media_upload(server.url, room_id=room_id, kind=kind, username="alice")
    alice = await joined("alice")
    payload = {"roomId": room_id, "url": path, "clientOffset": f"{kind}-1"}
    first = await alice.call(f"send_{kind}_message", payload)
    assert first["ok"] is True
    assert await alice.call(f"send_{kind}_message", payload) == first
    assert await alice.next(f"receive_{kind}_message") == first["message"]
    await alice.assert_no(f"receive_{kind}_message")
    assert len(stored_messages(mongo, room_id)) == 1


@pytest.mark.parametrize("bad", ["", "x" * 65, 5, ["a"], {"$ne": None}, True])
@pytest.mark.parametrize("event", ["send_message", "send_voice_message", "send_image_message"])
async def test_a_bad_client_offset_is_refused(joined, server, room_id, mongo, event, bad):
    alice = await joined("alice")
    kind = event.split("_")[1]
    url = await media_upload(server.url, room_id=room_id, kind=kind) if kind != "message" else None
    payload = {"roomId": room_id, "message": "x", "url": url, "clientOffset": bad}
    ack = await alice.call(event, payload)
    assert ack == {"ok": False, "error": "clientOffset must be a string of 1 to 64 characters"}
    assert stored_messages(mongo, room_id) == []


@pytest.mark.parametrize("kind", ["voice", "image"])
async def test_media_copies_sent_at_once_store_one_message(connect, server, room_id, mongo, kind):
    """Both copies pass the repeat check; one claims the file, the other loses the claim and
    acks the winner (rooms.services.message_media_create_once): one message, one broadcast."""
    path = await media_upload(server.url, room_id=room_id, kind=kind, username="alice")
    tabs = [await connect() for _ in range(2)]
    for tab in tabs:
        await tab.join(room_id, "alice")
    payload = {"roomId": room_id, "url": path, "clientOffset": f"{kind}-twin"}
    one, two = await asyncio.gather(*(tab.call(f"send_{kind}_message", payload) for tab in tabs))
    assert one["ok"] is True and one == two
    barrier = await tabs[0].call("send_message", {"roomId": room_id, "message": "barrier"})
    assert await tabs[1].next(f"receive_{kind}_message") == one["message"]
    assert (await tabs[1].next("receive_message"))["_id"] == barrier["message"]["_id"]
    tabs[1].assert_none_pending(f"receive_{kind}_message")
    assert [d["type"] for d in stored_messages(mongo, room_id)] == [kind, "text"]
