"""Per-socket rate limits and the per-IP connection cap (contract §6), on servers of their own."""

import pytest
import socketio

from tests.realtime.conftest import SocketClient, stored_messages


async def pair_in_room(connect, server, room_id: str) -> tuple[SocketClient, SocketClient]:
    """alice and bob, connected to `server` and in the room."""
    alice = await connect(url=server.url)
    bob = await connect(url=server.url)
    await alice.join(room_id, "alice")
    await bob.join(room_id, "bob")
    return alice, bob


@pytest.fixture(scope="module")
def limited_server(server_factory):
    """Two writes and three relays per socket, then (practically) no refill."""
    return server_factory(SEND_RATE="0.001", SEND_BURST="2", RELAY_RATE="0.001", RELAY_BURST="3")


@pytest.fixture(scope="module")
def unlimited_server(server_factory):
    return server_factory(SEND_RATE="0", SEND_BURST="0", RELAY_RATE="0", RELAY_BURST="0")


@pytest.fixture(scope="module")
def capped_server(server_factory):
    return server_factory(MAX_CONNECTIONS_PER_IP="2")


async def test_writes_over_the_burst_are_refused_and_not_stored(connect, limited_server, room_id, mongo):
    alice, bob = await pair_in_room(connect, limited_server, room_id)
    message = {"roomId": room_id, "username": "alice", "message": "m"}
    assert (await alice.call("send_message", message))["ok"] is True
    assert (await alice.call("join_call", {"roomId": room_id}))["ok"] is True
    for event, payload in [
        ("send_message", message),
        ("send_voice_message", {"roomId": room_id, "url": "/api/voice/000000000000000000000000"}),
        ("delete_message", {"roomId": room_id, "messageId": "000000000000000000000000"}),
        ("leave_call", {"roomId": room_id}),
        ("join_call", {"roomId": room_id}),
    ]:
        assert await alice.call(event, payload) == {"ok": False, "error": "rate limited"}
    await bob.next("receive_message")
    await bob.assert_no("receive_message")
    await bob.assert_no("call_ended_notification")
    assert [doc["type"] for doc in stored_messages(mongo, room_id)] == ["text", "call_notification"]
    # the limit is per socket: another socket still writes
    assert (await bob.call("send_message", {"roomId": room_id, "message": "mine"}))["ok"] is True


async def test_relays_over_the_burst_are_refused_and_not_relayed(connect, limited_server, room_id):
    alice, bob = await pair_in_room(connect, limited_server, room_id)
    candidate = {"to": bob.sid, "candidate": {"candidate": "c"}}
    for _ in range(3):
        assert (await alice.call("ice_candidate", candidate))["ok"] is True
    assert await alice.call("ice_candidate", candidate) == {"ok": False, "error": "rate limited"}
    assert await alice.call("offer", {"to": bob.sid, "offer": {}}) == {"ok": False, "error": "rate limited"}
    for _ in range(3):
        await bob.next("ice_candidate")
    await bob.assert_no("ice_candidate")
    await bob.assert_no("offer")
    # writes have their own bucket
    assert (await alice.call("send_message", {"roomId": room_id, "message": "m"}))["ok"] is True


async def test_zero_turns_rate_limits_off(connect, unlimited_server, room_id):
    alice, bob = await pair_in_room(connect, unlimited_server, room_id)
    for index in range(40):
        assert (await alice.call("send_message", {"roomId": room_id, "message": str(index)}))["ok"] is True
    for _ in range(250):
        await alice.emit("ice_candidate", {"to": bob.sid, "candidate": {"candidate": "c"}})
    assert (await alice.call("ice_candidate", {"to": bob.sid, "candidate": {"candidate": "last"}}))["ok"] is True


async def test_connections_over_the_per_ip_cap_are_refused(connect, capped_server, room_id):
    first = await connect(url=capped_server.url)
    poller = await connect(url=capped_server.url, transports=("polling",))
    # refused at its handshake; on polling, engine.io's body reaches the client's connect_error
    refused = SocketClient(capped_server.url, transports=("polling",))
    with pytest.raises(socketio.exceptions.ConnectionError, match="^Unexpected status code 401 in server response$"):
        await refused.connect()
    assert refused.connect_errors == [{"message": "too many connections"}]
    # a closed connection frees its place (once the server has seen it go: the poller in
    # the same room is told, and the slot is released in the same step)
    await first.join(room_id, "first")
    await poller.join(room_id, "poller")
    await first.disconnect()
    while await poller.next("online_users") != ["poller"]:
        pass
    again = await connect(url=capped_server.url)
    await again.join(room_id, "alice")
