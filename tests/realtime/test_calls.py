"""join_call, leave_call, disconnect in a call, and the WebRTC relays (contract §4)."""

import asyncio

import pytest

from tests.realtime.conftest import JOINED_CALL, stored_messages

CALL_NOTICE_KEYS = ["username", "message", "type", "url", "_id", "createdAt", "callInitiator"]


def call_ids(client):
    return [name for name in client.names() if "call" in name]


async def test_join_call_notifies_in_order_and_persists(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    assert await alice.call("join_call", {"roomId": room_id, "username": "alice"}) == JOINED_CALL
    notice = await bob.next("call_notification")
    assert list(notice) == CALL_NOTICE_KEYS
    assert notice["username"] == "System" and notice["message"] == "alice is in the audio call"
    assert notice["type"] == "call_notification" and notice["url"] is None and notice["callInitiator"] == "alice"
    assert await alice.next("call_notification") == notice
    assert await bob.next("user_joined_call") == {"socketId": alice.sid, "username": "alice"}
    assert await alice.next("call_participants") == []
    await alice.assert_no("user_joined_call")
    await bob.assert_no("call_participants")
    assert call_ids(bob) == ["call_notification", "user_joined_call"]
    assert call_ids(alice) == ["call_notification", "call_participants"]
    (doc,) = stored_messages(mongo, room_id)
    assert doc["username"] == "System" and doc["callInitiator"] == "alice" and doc["type"] == "call_notification"


async def test_call_participants_lists_the_others(joined, room_id):
    alice = await joined("alice")
    bob = await joined("bob")
    carol = await joined("carol")
    await alice.call("join_call", {"roomId": room_id, "username": "alice"})
    await bob.call("join_call", {"roomId": room_id, "username": "bob"})
    assert await bob.next("call_participants") == [{"socketId": alice.sid, "username": "alice"}]
    await carol.call("join_call", {"roomId": room_id})
    assert await carol.next("call_participants") == [
        {"socketId": alice.sid, "username": "alice"},
        {"socketId": bob.sid, "username": "bob"},
    ]
    assert await alice.next("user_joined_call") == {"socketId": bob.sid, "username": "bob"}
    assert await alice.next("user_joined_call") == {"socketId": carol.sid, "username": "carol"}


async def test_second_join_call_of_a_socket_emits_nothing(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.call("join_call", {"roomId": room_id, "username": "alice"})
    await bob.next("user_joined_call")
    assert await alice.call("join_call", {"roomId": room_id, "username": "alice"}) == JOINED_CALL
    await bob.next("call_notification")
    await bob.assert_no("call_notification")
    await bob.assert_no("user_joined_call")
    assert len(stored_messages(mongo, room_id)) == 1


async def test_leave_call_notifies_in_order_and_persists(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.call("join_call", {"roomId": room_id, "username": "alice"})
    assert await alice.call("leave_call", {"roomId": room_id, "username": "alice"}) == {"ok": True}
    ended = await bob.next("call_ended_notification")
    assert ended["username"] == "System" and ended["message"] == "alice left the audio call"
    assert ended["type"] == "call_ended" and "callInitiator" not in ended
    assert await alice.next("call_ended_notification") == ended
    assert await bob.next("user_left_call") == {"socketId": alice.sid}
    await alice.assert_no("user_left_call")
    assert call_ids(bob) == ["call_notification", "user_joined_call", "call_ended_notification", "user_left_call"]
    assert [doc["type"] for doc in stored_messages(mongo, room_id)] == ["call_notification", "call_ended"]


async def test_leave_call_when_not_in_it_emits_and_stores_nothing(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    assert await alice.call("leave_call", {"roomId": room_id, "username": "alice"}) == {"ok": True}
    await bob.assert_no("call_ended_notification")
    await bob.assert_no("user_left_call")
    assert stored_messages(mongo, room_id) == []


async def test_disconnect_in_a_call_leaves_it(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.call("join_call", {"roomId": room_id, "username": "alice"})
    alice_sid = alice.sid
    await alice.disconnect()
    ended = await bob.next("call_ended_notification")
    assert ended["message"] == "alice left the audio call"
    assert await bob.next("user_left_call") == {"socketId": alice_sid}
    # Coalesced presence: ["alice", "bob"] may be skipped; the last list is the true one.
    await bob.next_until("online_users", ["bob"])
    assert [doc["type"] for doc in stored_messages(mongo, room_id)] == ["call_notification", "call_ended"]


async def test_rejoin_after_leaving_notifies_again(joined, room_id):
    alice = await joined("alice")
    bob = await joined("bob")
    for _ in range(2):
        await alice.call("join_call", {"roomId": room_id, "username": "alice"})
        await bob.next("user_joined_call")
        await alice.call("leave_call", {"roomId": room_id, "username": "alice"})
        await bob.next("user_left_call")


async def test_leaving_the_room_leaves_its_call(joined, room_id):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.call("join_call", {"roomId": room_id, "username": "alice"})
    await alice.join(f"{room_id}-other", "alice")
    assert await bob.next("user_left_call") == {"socketId": alice.sid}


async def test_join_call_with_other_username_is_refused(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    ack = await alice.call("join_call", {"roomId": room_id, "username": "bob"})
    assert ack["ok"] is False
    await bob.assert_no("call_notification")
    assert stored_messages(mongo, room_id) == []


@pytest.mark.parametrize(
    "event, body_key, with_username",
    [("offer", "offer", True), ("answer", "answer", True), ("ice_candidate", "candidate", False)],
)
async def test_relay_reaches_only_its_target_with_the_bound_name(joined, room_id, event, body_key, with_username):
    alice = await joined("alice")
    bob = await joined("bob")
    carol = await joined("carol")
    body = {"type": "offer", "sdp": "v=0"} if body_key != "candidate" else {"candidate": "c", "sdpMid": "0"}
    ack = await alice.call(event, {"to": bob.sid, body_key: body, "username": "mallory"})
    assert ack == {"ok": True}
    expected = {"from": alice.sid, body_key: body}
    if with_username:
        expected["username"] = "alice"
    assert await bob.next(event) == expected
    await carol.assert_no(event)
    await alice.assert_no(event)


@pytest.mark.parametrize("target", ["other-room", "room-name", "self", "unknown", "list"])
async def test_relay_to_anything_but_a_socket_in_the_room_is_refused(joined, room_id, target):
    alice = await joined("alice")
    bob = await joined("bob")
    stranger = await joined("stranger", room=f"{room_id}-other")
    to = {
        "other-room": stranger.sid,
        "room-name": room_id,
        "self": alice.sid,
        "unknown": "x" * 20,
        "list": [bob.sid],
    }[target]
    ack = await alice.call("offer", {"to": to, "offer": {"type": "offer", "sdp": "v=0"}})
    assert ack["ok"] is False
    await asyncio.gather(bob.assert_no("offer"), stranger.assert_no("offer"), alice.assert_no("offer"))


async def test_relay_before_joining_a_room_is_refused(connect, joined):
    bob = await joined("bob")
    loner = await connect()
    ack = await loner.call("ice_candidate", {"to": bob.sid, "candidate": {"candidate": "c"}})
    assert ack == {"ok": False, "error": "join a room first"}
    await bob.assert_no("ice_candidate")


async def test_relays_keep_their_order(joined):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.emit("offer", {"to": bob.sid, "offer": {"type": "offer", "sdp": "0"}})
    for index in range(1, 20):
        await alice.emit("ice_candidate", {"to": bob.sid, "candidate": {"candidate": str(index)}})
    assert (await bob.next("offer"))["offer"]["sdp"] == "0"
    for index in range(1, 20):
        assert (await bob.next("ice_candidate"))["candidate"]["candidate"] == str(index)
