"""Issue 12 across two real processes on one real Redis: recovery, exactly-once sends, edits.

Recovery: alice's session and her room's log live in Redis, so she recovers on B after A,
where she lost her transport, has been SIGKILLed (socket.io-client 4.8, tests/node).
"""

import asyncio

import httpx

from tests.realtime.conftest import stored_messages
from tests.realtime.test_recovery import recovery_flow_checks, recovery_flow_run
from tests.scale.conftest import DEAD_PROCESS_SECONDS


def test_recovery_on_another_process_after_the_first_was_killed(cluster_factory, room_id, mongo):
    a, b = cluster_factory(SEND_RATE="0").servers
    out = recovery_flow_run(a.url, b.url, room_id, arg=str(a.process.pid))
    assert a.process.wait(10) == -9
    recovery_flow_checks(out, mongo=mongo, room_id=room_id)


def test_the_recovered_socket_outlives_the_reaping_of_the_killed_process(cluster_factory, room_id):
    """B reaps A's sockets after DEAD_PROCESS_SECONDS: alice, recovered on B under her old
    sid, stays online and served (A had cleaned her up before it died)."""
    a, b = cluster_factory(SEND_RATE="0").servers
    hold_ms = int((DEAD_PROCESS_SECONDS + 3) * 1000)  # time passing is the point: the reaper's window
    out = recovery_flow_run(a.url, b.url, room_id, arg=str(a.process.pid), hold_ms=hold_ms)
    assert out["recovered"] is True
    assert out["bobOnlineAfterHold"][-1] == ["bob", "alice"]  # nothing took her off meanwhile


async def test_a_repeated_client_offset_stores_one_message_whichever_process_gets_it(pair, clients, room_id, mongo):
    a, b = pair.servers
    alice_a = await clients(a.url)
    alice_b = await clients(b.url)
    bob = await clients(b.url)
    for client, name in ((alice_a, "alice"), (alice_b, "alice"), (bob, "bob")):
        await client.join(room_id, name)
    payload = {"roomId": room_id, "username": "alice", "message": "once", "clientOffset": "alice-7"}
    first = await alice_a.call("send_message", payload)
    again = await alice_b.call("send_message", payload)  # its ack was lost: re-sent through B
    assert first["ok"] is True and again == first
    # both at once, from both processes: one wins, the other acks the winner
    race = {**payload, "message": "race", "clientOffset": "alice-8"}
    one, two = await asyncio.gather(alice_a.call("send_message", race), alice_b.call("send_message", race))
    assert one["ok"] is True and one == two
    barrier = await alice_a.call("send_message", {"roomId": room_id, "message": "barrier"})
    assert [m["message"] for m in [await bob.next("receive_message") for _ in range(3)]] == ["once", "race", "barrier"]
    bob.assert_none_pending("receive_message")
    assert barrier["ok"] is True
    # ObjectIds of two processes are not ordered within a second: compare the stored set
    assert sorted(doc["message"] for doc in stored_messages(mongo, room_id)) == ["barrier", "once", "race"]


async def test_an_edit_reaches_every_process_history_at_once(pair, clients, room_id):
    a, b = pair.servers
    alice = await clients(a.url)
    await alice.join(room_id, "alice")
    sent = (await alice.call("send_message", {"roomId": room_id, "message": "draft"}))["message"]
    async with httpx.AsyncClient(timeout=30.0) as http:
        before = (await http.get(f"{b.url}/api/room/{room_id}")).json()["messages"]  # B caches the history
        assert [m["message"] for m in before] == ["draft"]
        ack = await alice.call("edit_message", {"roomId": room_id, "messageId": sent["_id"], "message": "final"})
        assert ack["ok"] is True
        after = (await http.get(f"{b.url}/api/room/{room_id}")).json()["messages"]
    assert [m["message"] for m in after] == ["final"]
    assert list(after[0]) == ["username", "message", "type", "url", "_id", "createdAt", "editedAt"]
    assert after[0]["editedAt"] == ack["message"]["editedAt"]
