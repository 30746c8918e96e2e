"""Across processes on Redis, a room id equal to a socket's sid never reaches that socket.

With `REDIS_URL`, every emit is published on Redis and delivered by every process to its
own sockets; before chat rooms had their own channels (`room:<id>`), an attacker on
process B joining `roomId = <victim's sid>` (victim on A) had B publish each message to
the room named by the victim's sid, which A delivered to the victim; relays likewise.

Barrier: a later message published by the same process B, into the victim's real room,
reaches the victim after anything B published before it (one Redis channel, in order).
"""

from __future__ import annotations


async def test_a_room_named_like_a_sid_on_another_process_does_not_reach_it(pair, clients, room_id):
    a, b = pair.servers
    victim = await clients(a.url)
    await victim.join(room_id, "victim")
    witness = await clients(b.url)  # on B, in the victim's real room: B's barrier messages
    await witness.join(room_id, "witness")
    attacker = await clients(b.url)
    ack = await attacker.call("join_room", {"roomId": victim.sid, "username": "mallory"})
    assert ack["ok"] is True
    sent = await attacker.call("send_message", {"roomId": victim.sid, "message": "psst"})
    assert sent["ok"] is True
    for target in (victim.sid, f"room:{room_id}", room_id):
        refused = await attacker.call("offer", {"to": target, "offer": {"sdp": "x"}})
        assert refused["ok"] is False, (target, refused)
    barrier = await witness.call("send_message", {"roomId": room_id, "message": "barrier"})
    assert await victim.next("receive_message") == barrier["message"]
    victim.assert_none_pending("receive_message")
    victim.assert_none_pending("offer")
    assert "mallory" not in str(victim.received("online_users"))


async def test_a_relay_to_a_socket_of_another_room_on_another_process_is_refused(pair, clients, room_id):
    a, b = pair.servers
    victim = await clients(a.url)
    await victim.join(room_id, "victim")
    witness = await clients(b.url)
    await witness.join(room_id, "witness")
    attacker = await clients(b.url)
    await attacker.join(f"{room_id}-elsewhere", "mallory")
    for event, body in (("offer", "offer"), ("answer", "answer"), ("ice_candidate", "candidate")):
        refused = await attacker.call(event, {"to": victim.sid, body: {"sdp": "x"}})
        assert refused == {"ok": False, "error": "to must be the socket id of another socket in your room"}
    # the same relay from the witness (same room, same process B) does arrive: the barrier
    assert await witness.call("offer", {"to": victim.sid, "offer": {"sdp": "ok"}}) == {"ok": True}
    assert (await victim.next("offer"))["from"] == witness.sid
    victim.assert_none_pending("offer")
    victim.assert_none_pending("answer")
    victim.assert_none_pending("ice_candidate")
