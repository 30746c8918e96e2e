"""`RedisState` on a real redis-server, without a Chillout server.

The in-memory state's tests run here again (imported below) with the `states` fixture of
this module: several `RedisState` instances on one prefix, as several processes; then
what only a shared state has: concurrency, dead processes, periodic turns.
"""

import asyncio
import uuid

import pytest

from realtime.redis_state import RedisState
from tests.realtime.test_state import (  # noqa: F401  (collected here too, with this module's `states`)
    test_a_socket_is_in_one_room_at_a_time,
    test_call_roster_in_join_order,
    test_connections_per_ip,
    test_presence_is_per_connection_and_names_keep_their_place,
)


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


async def test_a_burst_of_commands_waits_for_the_bounded_pool_instead_of_opening_connections(redis_url, settings):
    """REDIS_MAX_CONNECTIONS: 200 concurrent joins through a pool of 2 all succeed, and Redis
    sees at most 2 connections of that client (redis-py's own pool would open one per
    concurrent command and keep them all open)."""
    settings.REDIS_MAX_CONNECTIONS = 2
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    state = RedisState(url=redis_url, prefix=prefix, dead_after=30.0)
    try:
        await asyncio.gather(*(state.room_join(sid=f"s{i}", room_id="burst", username=f"u{i}") for i in range(200)))
        assert len(await state.room_online(room_id="burst")) == 200
        named = [client for client in await state.redis.client_list() if client["name"] == f"{prefix}state"]
        assert 1 <= len(named) <= 2, named
    finally:
        await state.redis.aclose()
