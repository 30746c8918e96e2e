"""join_room / leave_room, presence and identity binding (contract §4)."""

from tests.realtime.conftest import stored_messages


async def test_join_room_sends_online_users_to_everyone_in_join_order(joined, room_id, mongo):
    alice = await joined("alice")
    assert await alice.next("online_users") == ["alice"]
    bob = await joined("bob")
    assert await alice.next("online_users") == ["alice", "bob"]
    assert await bob.next("online_users") == ["alice", "bob"]
    assert mongo.rooms.find_one({"roomId": room_id}) is not None


async def test_join_room_ack_and_anonymous_default(connect, room_id):
    client = await connect()
    assert await client.call("join_room", {"roomId": room_id, "username": "alice"}) == {"ok": True, "username": "alice"}
    other = await connect()
    assert await other.call("join_room", {"roomId": room_id}) == {"ok": True, "username": "Anonymous"}
    empty = await connect()
    assert await empty.call("join_room", {"roomId": room_id, "username": ""}) == {"ok": True, "username": "Anonymous"}
    assert await empty.next("online_users") == ["alice", "Anonymous"]


async def test_reserved_system_name_is_refused_in_any_case(connect, room_id):
    client = await connect()
    for name in ("System", "system", "SYSTEM"):
        ack = await client.call("join_room", {"roomId": room_id, "username": name})
        assert ack["ok"] is False and "reserved" in ack["error"]
    await client.assert_no("online_users")


async def test_names_that_pass_for_system_are_refused_other_scripts_are_not(connect, room_id):
    """The reserved name is compared as a Unicode skeleton (contract §4)."""
    client = await connect()
    for name in ("\u0405ystem", "System\u200b", "\uff33\uff39\uff33\uff34\uff25\uff2d"):  # Ѕystem, zero-width, ＳＹＳＴＥＭ
        ack = await client.call("join_room", {"roomId": room_id, "username": name})
        assert ack == {"ok": False, "error": "the username System is reserved"}, name
    for name in ("Дмитрий", "李", "محمد", "Systems"):
        assert await client.call("join_room", {"roomId": room_id, "username": name}) == {"ok": True, "username": name}
    assert await client.next("online_users") == ["Дмитрий"]  # the refused joins sent nothing before it


async def test_online_users_are_distinct_and_not_sent_to_other_rooms(joined, room_id):
    alice = await joined("alice")
    elsewhere = await joined("carol", room=f"{room_id}-other")
    await joined("alice")
    assert await alice.next("online_users") == ["alice"]
    assert await alice.next("online_users") == ["alice"]
    await elsewhere.next("online_users")
    await elsewhere.assert_no("online_users")


async def test_joining_another_room_leaves_the_previous_one(joined, room_id):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.next_until("online_users", ["alice", "bob"])  # bob's join reached alice (a barrier)
    await bob.join(f"{room_id}-b", "bob")
    assert await alice.next("online_users") == ["alice"]
    # bob no longer gets room one's messages
    await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "only alice"})
    await bob.assert_no("receive_message")


async def test_leave_room_updates_those_left(joined, room_id):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.next_until("online_users", ["alice", "bob"])  # bob's join reached alice (a barrier)
    await bob.next_until("online_users", ["alice", "bob"])  # and bob (it may follow bob's ack)
    assert await bob.call("leave_room", {"roomId": room_id}) == {"ok": True}
    assert await alice.next("online_users") == ["alice"]
    await bob.assert_no("online_users")
    await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "after leave"})
    await bob.assert_no("receive_message")


async def test_leave_room_not_joined_is_a_no_op(joined, room_id):
    alice = await joined("alice")
    assert await alice.next("online_users") == ["alice"]
    assert await alice.call("leave_room", {"roomId": f"{room_id}-never"}) == {"ok": True}
    await alice.assert_no("online_users")


async def test_same_name_stays_online_while_one_connection_remains(joined, room_id):
    first = await joined("alice")
    second = await joined("alice")
    bob = await joined("bob")
    assert await bob.next("online_users") == ["alice", "bob"]
    await first.disconnect()
    assert await bob.next("online_users") == ["alice", "bob"]
    await second.disconnect()
    assert await bob.next("online_users") == ["bob"]


async def test_disconnect_updates_presence_without_call_events(joined, room_id, mongo):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.next_until("online_users", ["alice", "bob"])  # bob's join reached alice (a barrier)
    await bob.disconnect()
    assert await alice.next("online_users") == ["alice"]
    await alice.assert_no("user_left_call")
    await alice.assert_no("call_ended_notification")
    assert stored_messages(mongo, room_id) == []


async def test_other_username_than_the_bound_one_is_refused(joined, room_id, mongo):
    alice = await joined("alice")
    ack = await alice.call("send_message", {"roomId": room_id, "username": "mallory", "message": "spoof"})
    assert ack["ok"] is False and "username" in ack["error"]
    await alice.assert_no("receive_message")
    assert stored_messages(mongo, room_id) == []


async def test_event_without_username_acts_as_the_bound_name(joined, room_id):
    alice = await joined("alice")
    for username in (None, ""):
        payload = {"roomId": room_id, "message": "no name"}
        if username is not None:
            payload["username"] = username
        ack = await alice.call("send_message", payload)
        assert ack["ok"] is True and ack["message"]["username"] == "alice"


async def test_send_after_reconnect_joins_the_room_implicitly(connect, joined, room_id, mongo):
    bob = await joined("bob")
    alice = await joined("alice")
    assert await bob.next("online_users") == ["bob"]
    assert await bob.next("online_users") == ["bob", "alice"]
    await alice.disconnect()
    assert await bob.next("online_users") == ["bob"]
    # a fresh socket, as after an automatic reconnect: no join_room is sent
    again = await connect()
    ack = await again.call("send_message", {"roomId": room_id, "username": "alice", "message": "back"})
    assert ack["ok"] is True and ack["message"]["username"] == "alice"
    assert await bob.next("online_users") == ["bob", "alice"]
    assert (await bob.next("receive_message"))["message"] == "back"
    assert (await again.next("receive_message"))["message"] == "back"
    assert [doc["username"] for doc in stored_messages(mongo, room_id)] == ["alice"]


async def test_implicit_join_moves_the_socket_out_of_its_room(joined, room_id):
    alice = await joined("alice")
    bob = await joined("bob")
    await alice.next_until("online_users", ["alice", "bob"])  # bob's join reached alice (a barrier)
    other = f"{room_id}-other"
    ack = await bob.call("send_message", {"roomId": other, "username": "bob", "message": "moved"})
    assert ack["ok"] is True
    assert await alice.next("online_users") == ["alice"]
    await alice.assert_no("receive_message")
