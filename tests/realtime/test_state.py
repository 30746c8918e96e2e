"""The in-memory state and the token bucket on their own (no server needed)."""

import pytest

from chillout_project.errors import RateLimited
from realtime.ratelimit import TokenBucket, bucket_create, bucket_take
from realtime.state import Binding, CallMember, InMemoryState


@pytest.fixture
def states():
    """`states(n)`: n handles on one state, as n processes would have. In memory the state
    is one process's, so every handle is the same object; tests/scale/test_redis_state.py
    runs these tests again with a fixture of the same name giving n `RedisState`s."""
    state = InMemoryState()
    return lambda n=2: [state] * n


async def test_presence_is_per_connection_and_names_keep_their_place(states):
    a, b = states(2)
    assert await a.room_join(sid="a1", room_id="r", username="alice") == ["alice"]
    assert await b.room_join(sid="b1", room_id="r", username="bob") == ["alice", "bob"]
    assert await b.room_join(sid="a2", room_id="r", username="alice") == ["alice", "bob"]
    assert await b.room_leave(sid="a1") == (Binding(room_id="r", username="alice"), ["alice", "bob"])
    assert await a.room_leave(sid="a2") == (Binding(room_id="r", username="alice"), ["bob"])
    assert await a.room_leave(sid="a2") == (None, [])
    assert await a.binding_get(sid="b1") == Binding(room_id="r", username="bob")
    assert await a.rooms_online_count() == 1
    await a.room_leave(sid="b1")
    assert await b.rooms_online_count() == 0


async def test_a_socket_is_in_one_room_at_a_time(states):
    (state,) = states(1)
    await state.room_join(sid="s", room_id="one", username="alice")
    await state.room_join(sid="other", room_id="one", username="bob")
    assert await state.room_join(sid="s", room_id="two", username="alice") == ["alice"]
    assert await state.room_leave(sid="other") == (Binding(room_id="one", username="bob"), [])


async def test_call_roster_in_join_order(states):
    a, b = states(2)
    assert await a.call_join(room_id="r", sid="a", username="alice") == []
    assert await b.call_join(room_id="r", sid="a", username="alice") is None
    assert await b.call_join(room_id="r", sid="b", username="bob") == [CallMember(sid="a", username="alice")]
    assert await a.call_leave(room_id="r", sid="a") is True
    assert await b.call_leave(room_id="r", sid="a") is False
    assert await a.call_join(room_id="r", sid="c", username="carol") == [CallMember(sid="b", username="bob")]


async def test_connections_per_ip(states):
    a, b = states(2)
    assert await a.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert await b.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert await a.connection_acquire(ip="1.2.3.4", limit=2) is False
    assert await b.connection_acquire(ip="5.6.7.8", limit=2) is True
    await b.connection_release(ip="1.2.3.4")
    assert await a.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert all([await a.connection_acquire(ip="9.9.9.9", limit=0) for _ in range(50)])


def test_token_bucket_spends_its_burst_then_refuses():
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    with pytest.raises(RateLimited, match="rate limited"):
        bucket_take(bucket)


def test_token_bucket_refills_with_time():
    bucket = TokenBucket(rate=10.0, burst=1)
    assert bucket.take() is True
    bucket.updated -= 1.0  # as if a second had passed, without waiting for it
    assert bucket.take() is True


def test_zero_rate_or_burst_means_no_limit():
    assert bucket_create(rate=0, burst=20) is None
    assert bucket_create(rate=10, burst=0) is None
    bucket_take(None)
