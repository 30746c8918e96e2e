"""`RedisState` on a real redis-server, without a Chillout server: the same promises as
`InMemoryState` (tests/realtime/test_state.py), across two instances (two processes)."""

import asyncio
import uuid

import pytest

from realtime.redis_state import RedisState
from realtime.state import Binding, CallMember


@pytest.fixture
async def states(redis_url):
    """`states(n)`: n RedisState instances on one fresh prefix, as n processes would have."""
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    made: list[RedisState] = []

    def make(n: int = 2, *, dead_after: float = 30.0) -> list[RedisState]:
        made.extend(RedisState(url=redis_url, prefix=prefix, dead_after=dead_after) for _ in range(n))
        return made[-n:]

    yield make
    for state in made:
        await state.redis.aclose()


async def test_presence_across_processes_keeps_join_order_and_counts_connections(states):
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


async def test_concurrent_joins_and_leaves_never_corrupt_counts_or_order(states):
    """Many sockets of a few names join and leave at once from two processes: the room ends
    empty, and while one connection per name stays, every name is listed once, in order."""
    a, b = states(2)
    names = ["ann", "ben", "cat"]
    for i, name in enumerate(names):
        await a.room_join(sid=f"keep-{i}", room_id="busy", username=name)
    sids = [(f"s{i}", names[i % 3]) for i in range(150)]
    await asyncio.gather(
        *((a if i % 2 else b).room_join(sid=sid, room_id="busy", username=name) for i, (sid, name) in enumerate(sids))
    )
    results = await asyncio.gather(*((b if i % 2 else a).room_leave(sid=sid) for i, (sid, _) in enumerate(sids)))
    assert all(online == names for _, online in results)
    for i in range(3):
        await b.room_leave(sid=f"keep-{i}")
    assert await a.redis.exists(a.key("pn", "busy"), a.key("pc", "busy")) == 0


async def test_connections_per_ip_are_counted_across_processes(states):
    a, b = states(2)
    assert await a.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert await b.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert await a.connection_acquire(ip="1.2.3.4", limit=2) is False
    assert await b.connection_acquire(ip="5.6.7.8", limit=2) is True
    await b.connection_release(ip="1.2.3.4")
    assert await a.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert all([await a.connection_acquire(ip="9.9.9.9", limit=0) for _ in range(50)])


async def test_a_dead_process_is_reaped_once_and_its_ip_counts_released(states):
    alive, dead, other = states(3, dead_after=0.3)
    assert await alive.heartbeat() is True and await dead.heartbeat() is True and await other.heartbeat() is True
    await dead.connection_acquire(ip="1.2.3.4", limit=2)
    await dead.connection_acquire(ip="1.2.3.4", limit=2)
    await dead.room_join(sid="d1", room_id="r", username="dora")
    await dead.room_join(sid="d2", room_id="r", username="dan")
    await alive.room_join(sid="a1", room_id="r", username="alice")
    assert await alive.connection_acquire(ip="1.2.3.4", limit=2) is False
    for _ in range(6):  # `dead` stops beating; the others go on
        await asyncio.sleep(0.1)
        assert await alive.heartbeat() is True and await other.heartbeat() is True

    async def reap(state):
        found = []
        async for sid in state.dead_connections():
            found.append(sid)
            await state.room_leave(sid=sid)
        return found

    first, second = await asyncio.gather(reap(alive), reap(other))
    assert sorted(first + second) == ["d1", "d2"] and (not first or not second)
    assert await alive.room_join(sid="a1", room_id="r", username="alice") == ["alice"]
    assert await alive.connection_acquire(ip="1.2.3.4", limit=2) is True
    assert dead.node_id not in await alive.redis.smembers(alive.key("nodes"))


async def test_a_process_taken_for_dead_learns_it_and_its_late_releases_count_once(states):
    slow, survivor = states(2, dead_after=0.3)
    await slow.heartbeat()
    await slow.connection_acquire(ip="1.2.3.4", limit=1)
    await asyncio.sleep(0.6)
    await survivor.heartbeat()
    assert [sid async for sid in survivor.dead_connections()] == []
    assert await survivor.connection_acquire(ip="1.2.3.4", limit=1) is True
    assert await slow.heartbeat() is False  # it must disconnect its sockets now
    await slow.connection_release(ip="1.2.3.4")  # already subtracted by the reaper
    assert await slow.connection_acquire(ip="1.2.3.4", limit=1) is False
    assert await slow.heartbeat() is True


async def test_a_periodic_turn_goes_to_one_process(states):
    a, b = states(2)
    assert [await a.turn_take(name="purge", seconds=5), await b.turn_take(name="purge", seconds=5)] == [True, False]
