"""Per-room channels (realtime/pubsub.py): a process receives only the emits of rooms it
serves a member of, holds a room's subscription only while it does, and an emit to a sid on
the other process still arrives, through that process's own channel.

What a process received from Redis is read from its `/metrics` counter
(`chillout_pubsub_messages_received_total`); who is subscribed, from Redis itself
(`PUBSUB NUMSUB`). `PRESENCE_COALESCE_MS=0`, so that no deferred `online_users` can land
between two readings.
"""

import asyncio
import re

import httpx
import pytest

from tests.realtime.conftest import JOINED_CALL

ROOM_RECEIVED = re.compile(r'^chillout_pubsub_messages_received_total\{kind="(room|node)"\} ([0-9.e+]+)$', re.M)
CHANNELS = re.compile(r"^chillout_pubsub_room_channels ([0-9.e+]+)$", re.M)


@pytest.fixture(scope="module")
def channels_pair(cluster_factory):
    return cluster_factory(SEND_RATE="0", RELAY_RATE="0", METRICS="open", PRESENCE_COALESCE_MS="0")


def received(server) -> dict[str, int]:
    """What this process has received over Redis so far, per channel kind."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    counts = {"room": 0, "node": 0}
    counts.update({kind: int(float(value)) for kind, value in ROOM_RECEIVED.findall(text)})
    return counts


def room_channels(server) -> int:
    (value,) = CHANNELS.findall(httpx.get(f"{server.url}/metrics", timeout=10).text)
    return int(float(value))


def subscribers(cluster, room_id: str) -> int:
    """How many processes are subscribed to the chat room's channel, as Redis counts them."""
    [(_, count)] = cluster.redis.pubsub_numsub(f"{cluster.prefix}sio:r:room:{room_id}")
    return count


async def test_a_process_receives_none_of_the_emits_of_a_room_it_serves_no_member_of(channels_pair, clients):
    a, b = channels_pair.servers
    x, y = "x-" + a.url[-5:] + "-iso", "y-" + a.url[-5:] + "-iso"
    alice = await clients(a.url)
    carol = await clients(a.url)
    bob = await clients(b.url)
    await alice.join(x, "alice")
    await carol.join(y, "carol")
    await bob.join(y, "bob")
    await carol.next_until("online_users", ["carol", "bob"])
    assert (subscribers(channels_pair, x), subscribers(channels_pair, y)) == (1, 2)

    before = received(b)
    for i in range(5):
        ack = await alice.call("send_message", {"roomId": x, "username": "alice", "message": f"x{i}"})
        assert ack["ok"] is True
    # Barrier: a message of room Y from the same process A, after the five of room X; B
    # delivers it from its subscription, so anything of X's sent to B would be counted by now.
    barrier = await carol.call("send_message", {"roomId": y, "username": "carol", "message": "barrier"})
    assert await bob.next("receive_message") == barrier["message"]
    assert received(b)["room"] - before["room"] == 1
    assert [m["message"] for m in alice.received("receive_message")] == [f"x{i}" for i in range(5)]
    bob.assert_none_pending("receive_message")


async def test_the_room_channel_is_dropped_after_the_last_local_member_leaves(channels_pair, clients, room_id):
    a, b = channels_pair.servers
    idle_channels = room_channels(b)
    alice = await clients(a.url)
    bob = await clients(b.url)
    second_bob = await clients(b.url)
    for client, name in ((alice, "alice"), (bob, "bob"), (second_bob, "bob")):
        await client.join(room_id, name)
    assert subscribers(channels_pair, room_id) == 2
    assert room_channels(b) == idle_channels + 1

    assert await bob.call("leave_room", {"roomId": room_id}) == {"ok": True}
    assert subscribers(channels_pair, room_id) == 2  # the second connection still holds it
    # The leave is acknowledged once Redis has confirmed the unsubscribe.
    assert await second_bob.call("leave_room", {"roomId": room_id}) == {"ok": True}
    assert subscribers(channels_pair, room_id) == 1
    assert room_channels(b) == idle_channels

    other = room_id + "-other"
    witness_a = await clients(a.url)
    witness_b = await clients(b.url)
    await witness_a.join(other, "wa")
    await witness_b.join(other, "wb")
    await witness_a.next_until("online_users", ["wa", "wb"])
    before = received(b)
    ack = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "after"})
    assert ack["ok"] is True
    # Barrier: a message of a room B still serves, from the same process, after the first.
    barrier = await witness_a.call("send_message", {"roomId": other, "username": "wa", "message": "barrier"})
    assert await witness_b.next("receive_message") == barrier["message"]
    assert received(b)["room"] - before["room"] == 1
    for client in (bob, second_bob):
        client.assert_none_pending("receive_message")


async def test_a_disconnected_last_member_takes_the_subscription_with_it(channels_pair, clients, room_id):
    a, b = channels_pair.servers
    alice = await clients(a.url)
    bob = await clients(b.url)
    await alice.join(room_id, "alice")
    await bob.join(room_id, "bob")
    await alice.next_until("online_users", ["alice", "bob"])
    assert subscribers(channels_pair, room_id) == 2
    await bob.disconnect()
    # The disconnect is not acknowledged: the room's list naming alice alone is sent after
    # the clean-up, which leaves the room (and its channel) first.
    await alice.next_until("online_users", ["alice"])
    assert subscribers(channels_pair, room_id) == 1


async def test_an_emit_to_a_socket_on_the_other_process_goes_to_that_process_only(channels_pair, clients, room_id):
    a, b = channels_pair.servers
    alice = await clients(a.url)
    bob = await clients(b.url)
    await alice.join(room_id, "alice")
    await bob.join(room_id, "bob")
    assert await alice.call("join_call", {"roomId": room_id, "username": "alice"}) == JOINED_CALL
    assert await bob.call("join_call", {"roomId": room_id, "username": "bob"}) == JOINED_CALL
    await alice.next("user_joined_call")
    before_a, before_b = received(a), received(b)
    answer = {"type": "answer", "sdp": "v=0 bob"}
    assert await bob.call("answer", {"to": alice.sid, "answer": answer}) == {"ok": True}
    assert await alice.next("answer") == {"from": bob.sid, "answer": answer, "username": "bob"}
    after_a, after_b = received(a), received(b)
    assert after_a["node"] - before_a["node"] == 1
    assert after_b["node"] == before_b["node"]


async def test_a_subscription_is_taken_while_the_subscriber_is_reading(redis_url):
    """redis-py's asyncio PubSub: a SUBSCRIBE sent by one task while another waits in
    `get_message` is confirmed to the reader, and messages then arrive (realtime.pubsub
    relies on it; fails loudly if redis-py changes that)."""
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe("pubsub-test-first")
    seen: list[tuple[str, str]] = []

    async def read():
        while len(seen) < 3:
            message = await pubsub.get_message(timeout=None)
            if message is not None:
                seen.append((message["type"], message["channel"]))

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.1)  # the reader is blocked in get_message
    await pubsub.subscribe("pubsub-test-second")
    while not any(entry == ("subscribe", "pubsub-test-second") for entry in seen):
        await asyncio.sleep(0.01)
    assert await client.publish("pubsub-test-second", "hello") == 1
    await asyncio.wait_for(reader, 10)
    assert seen == [("subscribe", "pubsub-test-first"), ("subscribe", "pubsub-test-second"),
                    ("message", "pubsub-test-second")]  # fmt: skip
    await pubsub.aclose()
    await client.aclose()


async def test_pipelined_commands_each_get_their_own_reply(redis_url):
    """realtime.redis_pipe: concurrent commands on one connection, replies matched in order;
    an error reply fails its own command only (fails loudly if redis-py's write order changes)."""
    from redis.exceptions import ResponseError

    from realtime.redis_pipe import PipelinedRedis

    pipe = PipelinedRedis(redis_url, name="test-commands")
    echo = pipe.script("return ARGV[1]")
    calls = [echo(keys=[], args=[f"v{i}"]) if i % 7 else pipe.call("INCRBY", "pipe-test-not-a-number", "x")
             for i in range(300)]  # fmt: skip
    results = await asyncio.gather(*calls, return_exceptions=True)
    for i, result in enumerate(results):
        if i % 7:
            assert result == f"v{i}"
        else:
            assert isinstance(result, ResponseError)
    await pipe.close()


async def test_a_pipelined_caller_cancelled_while_waiting_leaves_the_others_their_replies(redis_url):
    from realtime.redis_pipe import PipelinedRedis

    pipe = PipelinedRedis(redis_url, name="test-commands")
    echo = pipe.script("return ARGV[1]")
    tasks = [asyncio.ensure_future(echo(keys=[], args=[f"v{i}"])) for i in range(200)]
    await asyncio.sleep(0)  # every command queued
    for task in tasks[::3]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for i, result in enumerate(results):
        assert isinstance(result, asyncio.CancelledError) if i % 3 == 0 else result == f"v{i}"
    assert await echo(keys=[], args=["after"]) == "after"
    await pipe.close()


async def test_a_stalled_redis_fails_every_waiting_command_once_the_oldest_is_late(redis_url):
    """`CLIENT PAUSE` stalls the real Redis: a command waits past `timeout`, so it and the one
    queued after it fail (their replies could no longer be matched); once Redis answers again,
    the next command connects again and gets its reply."""
    from redis import asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from realtime.redis_pipe import PipelinedRedis

    pipe = PipelinedRedis(redis_url, name="test-commands", timeout=0.5)
    other = aioredis.Redis.from_url(redis_url)
    assert await pipe.call("PING") == "PONG"
    await other.execute_command("CLIENT", "PAUSE", "2000", "ALL")  # a paused client cannot unpause: it ends by itself
    await other.aclose()
    first = asyncio.ensure_future(pipe.call("PING"))
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(pipe.call("PING"))
    results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 10)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    assert [r.args[0] for r in results] == ["no reply from Redis within 0.5 s"] * 2
    pipe.timeout = 10.0  # the pause's end, not a timeout, answers this one
    assert await pipe.call("PING") == "PONG"
    await pipe.close()


async def test_a_redis_that_never_answers_the_connect_fails_the_command_once_late():
    """A listener that accepts and reads but never replies: redis-py's connect waits for
    replies too (CLIENT SETINFO), so the connect is bounded by `timeout` like a command."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from realtime.redis_pipe import PipelinedRedis

    async def swallow(reader, writer):
        while await reader.read(65536):
            pass
        writer.close()

    hung = await asyncio.start_server(swallow, "127.0.0.1", 0)
    pipe = PipelinedRedis(f"redis://127.0.0.1:{hung.sockets[0].getsockname()[1]}/0", name="test-commands", timeout=0.5)
    with pytest.raises(RedisConnectionError) as refused:
        await asyncio.wait_for(pipe.call("PING"), 10)
    assert refused.value.args[0] == "no reply from Redis within 0.5 s"
    await pipe.close()
    hung.close()
    await hung.wait_closed()


async def test_joins_and_leaves_racing_each_other_end_on_the_subscription_membership_says(
    channels_pair, clients, room_id
):
    a, b = channels_pair.servers
    alice = await clients(a.url)
    await alice.join(room_id, "alice")
    racers = [await clients(b.url) for _ in range(6)]

    async def churn(client, name: str) -> None:
        for _ in range(8):
            await client.join(room_id, name)
            assert await client.call("leave_room", {"roomId": room_id}) == {"ok": True}

    await asyncio.gather(*(churn(client, f"r{i}") for i, client in enumerate(racers)))
    assert subscribers(channels_pair, room_id) == 1
    await racers[0].join(room_id, "last")
    assert subscribers(channels_pair, room_id) == 2
    ack = await alice.call("send_message", {"roomId": room_id, "username": "alice", "message": "to the last"})
    assert (await racers[0].next("receive_message"))["message"] == "to the last"
    assert ack["ok"] is True
