"""Two real server processes on one real Redis act as one (contract §7).

A and B are Daphne processes on the session's database and Redis; clients connect to one
of them each, straight (no proxy; tests/scale/test_nginx.py goes through nginx).
"""

import signal

import pytest
from socketio.exceptions import ConnectionError as SocketConnectionError

from tests.realtime.conftest import JOINED_CALL, stored_messages
from tests.scale.conftest import DEAD_PROCESS_SECONDS, REFUSED
from tests.waiting import async_wait_until, attempts_for

# Only a guard against a hang, not a figure: the test waits for the reaper's events, and how
# long the reap takes is measured by bench/scale.py (`reap`), never asserted here.
REAP_WAIT = 10 * DEAD_PROCESS_SECONDS + 60


async def test_a_message_reaches_both_processes_once_each(pair, clients, room_id, mongo):
    a, b = pair.servers
    alice = await clients(a.url)
    bob = await clients(b.url)
    carol = await clients(b.url)
    for client, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        await client.join(room_id, name)
    ack = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "hello"})
    assert ack["ok"] is True
    for client in (alice, bob, carol):
        assert await client.next("receive_message") == ack["message"]
    # Barrier: a second message from the same process reaches each client on the same path
    # after any second copy of the first would have.
    barrier = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "barrier"})
    for client in (alice, bob, carol):
        assert await client.next("receive_message") == barrier["message"]
    assert [doc["message"] for doc in stored_messages(mongo, room_id)] == ["hello", "barrier"]


async def test_presence_lists_users_of_both_processes_and_follows_leaves(pair, clients, room_id):
    a, b = pair.servers
    alice = await clients(a.url)
    await alice.join(room_id, "alice")
    assert await alice.next("online_users") == ["alice"]
    bob = await clients(b.url)
    await bob.join(room_id, "bob")
    assert await alice.next("online_users") == ["alice", "bob"]
    assert await bob.next("online_users") == ["alice", "bob"]
    second_alice = await clients(b.url)
    await second_alice.join(room_id, "alice")
    assert await alice.next("online_users") == ["alice", "bob"]

    assert await bob.call("leave_room", {"roomId": room_id}) == {"ok": True}
    assert await alice.next("online_users") == ["alice"]
    await second_alice.disconnect()
    assert await alice.next("online_users") == ["alice"]  # her connection on A keeps her online
    carol = await clients(b.url)
    await carol.join(room_id, "carol")
    assert await alice.next("online_users") == ["alice", "carol"]
    await carol.disconnect()
    assert await alice.next("online_users") == ["alice"]


async def test_a_call_across_processes_with_relays(pair, clients, room_id, mongo):
    a, b = pair.servers
    alice = await clients(a.url)
    bob = await clients(b.url)
    await alice.join(room_id, "alice")
    await bob.join(room_id, "bob")
    assert await alice.call("join_call", {"roomId": room_id, "username": "alice"}) == JOINED_CALL
    assert (await bob.next("call_notification"))["message"] == "alice is in the audio call"
    assert await bob.next("user_joined_call") == {"socketId": alice.sid, "username": "alice"}
    assert await bob.call("join_call", {"roomId": room_id, "username": "bob"}) == JOINED_CALL
    assert await bob.next("call_participants") == [{"socketId": alice.sid, "username": "alice"}]
    assert await alice.next("user_joined_call") == {"socketId": bob.sid, "username": "bob"}

    offer = {"type": "offer", "sdp": "v=0 alice"}
    assert await alice.call("offer", {"to": bob.sid, "offer": offer, "username": "mallory"}) == {"ok": True}
    assert await bob.next("offer") == {"from": alice.sid, "offer": offer, "username": "alice"}
    answer = {"type": "answer", "sdp": "v=0 bob"}
    assert await bob.call("answer", {"to": alice.sid, "answer": answer}) == {"ok": True}
    assert await alice.next("answer") == {"from": bob.sid, "answer": answer, "username": "bob"}
    candidate = {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0"}
    assert await bob.call("ice_candidate", {"to": alice.sid, "candidate": candidate}) == {"ok": True}
    assert await alice.next("ice_candidate") == {"from": bob.sid, "candidate": candidate}

    assert await bob.call("leave_call", {"roomId": room_id, "username": "bob"}) == {"ok": True}
    assert (await alice.next("call_ended_notification"))["message"] == "bob left the audio call"
    assert await alice.next("user_left_call") == {"socketId": bob.sid}
    # Sorted by time: `_id`s made by two processes in the same second are not in time order.
    notices = [doc["message"] for doc in sorted(stored_messages(mongo, room_id), key=lambda doc: doc["createdAt"])]
    assert notices == ["alice is in the audio call", "bob is in the audio call", "bob left the audio call"]


async def test_a_relay_to_a_socket_of_another_room_on_the_other_process_is_refused(pair, clients, room_id):
    a, b = pair.servers
    alice = await clients(a.url)
    stranger = await clients(b.url)
    await alice.join(room_id, "alice")
    await stranger.join(f"{room_id}-other", "stranger")
    ack = await alice.call("offer", {"to": stranger.sid, "offer": {"sdp": "x"}})
    assert ack == {"ok": False, "error": "to must be the socket id of another socket in your room"}
    ack = await stranger.call("ice_candidate", {"to": alice.sid, "candidate": {"candidate": "x"}})
    assert ack["ok"] is False
    # Barriers: an allowed relay to the same recipient from the process that refused, sent
    # after; a relayed refusal would have been published before it.
    witness_a = await clients(a.url)
    await witness_a.join(f"{room_id}-other", "witness")
    witness_b = await clients(b.url)
    await witness_b.join(room_id, "witness")
    assert await witness_a.call("offer", {"to": stranger.sid, "offer": {"sdp": "barrier"}}) == {"ok": True}
    assert await witness_b.call("ice_candidate", {"to": alice.sid, "candidate": {"candidate": "b"}}) == {"ok": True}
    assert await stranger.next("offer") == {"from": witness_a.sid, "offer": {"sdp": "barrier"}, "username": "witness"}
    assert await alice.next("ice_candidate") == {"from": witness_b.sid, "candidate": {"candidate": "b"}}


async def test_connections_per_ip_are_capped_across_processes(cluster_factory, clients):
    a, b = cluster_factory(MAX_CONNECTIONS_PER_IP="3").servers
    first = await clients(a.url)
    await clients(a.url)
    await clients(b.url)
    with pytest.raises(SocketConnectionError, match=REFUSED):
        await clients(b.url)
    with pytest.raises(SocketConnectionError, match=REFUSED):
        await clients(a.url)
    await first.disconnect()
    # The disconnect is handled after the client has gone: retried until its slot is free.
    async def connected() -> bool:
        try:
            return bool(await clients(b.url))
        except SocketConnectionError:
            return False

    await async_wait_until(connected, attempts=attempts_for(REAP_WAIT), pause=0.0,
                           message="the disconnected client's slot was never freed")  # fmt: skip


async def test_a_killed_process_users_are_reaped_by_the_others(cluster_factory, clients, room_id, mongo):
    """kill -9 of B: A's clients see B's users go (presence, call) and B's IP counts are freed."""
    cluster = cluster_factory(MAX_CONNECTIONS_PER_IP="3", SEND_RATE="0")
    a, b = cluster.servers
    alice = await clients(a.url)
    bob = await clients(b.url)
    carol = await clients(b.url)
    await alice.join(room_id, "alice")
    await bob.join(room_id, "bob")
    await carol.join(room_id, "carol")
    await alice.call("join_call", {"roomId": room_id, "username": "alice"})
    await bob.call("join_call", {"roomId": room_id, "username": "bob"})
    assert await alice.next("user_joined_call") == {"socketId": bob.sid, "username": "bob"}
    with pytest.raises(SocketConnectionError, match=REFUSED):
        await clients(a.url)  # 3 connections from 127.0.0.1 already
    await alice.next_until("online_users", ["alice", "bob", "carol"])  # every join reached alice
    bob_sid = bob.sid

    b.stop(sig=signal.SIGKILL)
    notice = await alice.next("call_ended_notification", timeout=REAP_WAIT)
    assert notice["username"] == "System" and notice["message"] == "bob left the audio call"
    assert await alice.next("user_left_call", timeout=REAP_WAIT) == {"socketId": bob_sid}
    # Bob and Carol are removed one after the other, in no fixed order.
    first = await alice.next("online_users", timeout=REAP_WAIT)
    assert first in (["alice", "bob"], ["alice", "carol"])
    assert await alice.next("online_users", timeout=REAP_WAIT) == ["alice"]

    # B is forgotten (its IP counts freed) right after
    await async_wait_until(lambda: len(cluster.redis.smembers(f"{cluster.prefix}nodes")) == 1,
                           attempts=attempts_for(REAP_WAIT, 0.2), pause=0.2, message=lambda: str(cluster.keys()))  # fmt: skip
    # B forgotten: A's pass over B's sockets is over. Barrier: alice's own message, emitted by
    # A after that pass, reaches her after anything the pass sent her.
    barrier = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "barrier"})
    assert await alice.next("receive_message") == barrier["message"]
    alice.assert_none_pending("user_left_call")
    alice.assert_none_pending("online_users")
    notices = [doc["message"] for doc in stored_messages(mongo, room_id) if doc["type"] == "call_ended"]
    assert notices == ["bob left the audio call"]
    await clients(a.url)  # B's two connections no longer count against 127.0.0.1
