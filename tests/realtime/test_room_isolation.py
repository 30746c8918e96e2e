"""Room ids never address a socket (contract §4; issue 11, point 3).

Socket ids are public (`user_joined_call`, `call_participants`, relays' `from`), and
python-socketio puts every socket in a room named by its own sid. A client that joins or
writes to `roomId = <victim's sid>` must land in an ordinary chat room of that name, never
in the victim's personal room; a relay's `to` must name a socket bound to the sender's
room, never a Socket.IO room such as a chat room's channel `room:<id>`.

Every "must not receive" ends on a barrier (tests/realtime/conftest.py `assert_no`): the
victim's own round trip, queued by the same process after anything sent to it before.
"""

from __future__ import annotations


async def test_a_room_named_like_a_victims_sid_does_not_reach_the_victim(joined, connect, room_id):
    victim = await joined("victim")
    attacker = await connect()
    assert (await attacker.call("join_room", {"roomId": victim.sid, "username": "mallory"}))["ok"] is True
    ack = await attacker.call("send_message", {"roomId": victim.sid, "username": "mallory", "message": "psst"})
    assert ack["ok"] is True and ack["message"]["message"] == "psst"
    assert await attacker.next("online_users") == ["mallory"]  # an ordinary room, with only the attacker
    assert await victim.next("online_users") == ["victim"]  # its own join
    await victim.assert_no("receive_message")
    victim.assert_none_pending("online_users")  # mallory's presence never reached it


async def test_an_implicit_join_of_a_victims_sid_does_not_reach_the_victim(joined, connect):
    victim = await joined("victim")
    attacker = await connect()
    ack = await attacker.call("send_message", {"roomId": victim.sid, "username": "mallory", "message": "psst"})
    assert ack["ok"] is True
    assert await attacker.next("receive_message") == ack["message"]
    await victim.assert_no("receive_message")


async def test_a_relay_cannot_name_a_rooms_channel_or_a_socket_elsewhere(joined, room_id):
    victim = await joined("victim")
    attacker = await joined("mallory", room=f"{room_id}-other")
    for target in (f"room:{room_id}", room_id, f"room:{room_id}-other", victim.sid, "/", ""):
        for event, body in (("offer", "offer"), ("answer", "answer"), ("ice_candidate", "candidate")):
            ack = await attacker.call(event, {"to": target, body: {"sdp": "x"}, "username": "mallory"})
            assert ack["ok"] is False, (event, target, ack)
    for event in ("offer", "answer", "ice_candidate"):
        await victim.assert_no(event)


async def test_sockets_in_the_room_named_by_a_sid_talk_to_each_other_only(joined, connect):
    victim = await joined("victim")
    mallory = await connect()
    trudy = await connect()
    await mallory.join(victim.sid, "mallory")
    await trudy.join(victim.sid, "trudy")
    ack = await trudy.call("send_message", {"roomId": victim.sid, "message": "in the sid-named room"})
    assert await mallory.next("receive_message") == ack["message"]
    relay = await mallory.call("offer", {"to": trudy.sid, "offer": {"sdp": "x"}})
    assert relay == {"ok": True}
    assert (await trudy.next("offer"))["from"] == mallory.sid
    await victim.assert_no("receive_message")
    await victim.assert_no("offer")
