"""Coalesced `online_users` (realtime/presence.py): few copies while a room fills, the true list last.

These tests assert what holds at any speed: everyone ends on the true list, a latecomer's
list is the state's, nothing follows the last one. How few copies a fill costs depends on
timing, so it is a figure of bench/ (`fill`), not an assertion here.
"""

import asyncio

import pytest

from tests.realtime.conftest import SocketClient

MEMBERS = 30


@pytest.fixture(scope="module")
def slow_presence_server(server_factory):
    """An interval long enough that every change of a test falls inside the first one."""
    return server_factory(PRESENCE_COALESCE_MS="3000", SEND_RATE="0", MAX_CONNECTIONS_PER_IP="0")


async def clients_open(url: str, count: int) -> list[SocketClient]:
    return list(await asyncio.gather(*(SocketClient(url).connect() for _ in range(count))))


async def full_list_of_everyone(clients: list[SocketClient], names: list[str]) -> list[list[str]]:
    """Each client's online_users read until one names all of `names`; returns each client's last."""
    lasts = []
    for client in clients:
        while True:
            online = await client.next("online_users")
            if sorted(online) == sorted(names):
                lasts.append(online)
                break
    return lasts


async def quick_joins(clients: list[SocketClient], room_id: str) -> list[str]:
    names = [f"m{i}" for i in range(len(clients))]
    await asyncio.gather(*(c.join(room_id, name) for c, name in zip(clients, names)))
    return names


async def test_thirty_quick_joins_send_few_lists_and_everyone_ends_on_the_true_one(slow_presence_server, room_id):
    clients = await clients_open(slow_presence_server.url, MEMBERS)
    try:
        names = await quick_joins(clients, room_id)
        lasts = await full_list_of_everyone(clients, names)
        assert all(last == lasts[0] for last in lasts), lasts
        # A latecomer's list is the state's: the same order, itself last.
        late = await SocketClient(slow_presence_server.url).connect()
        clients.append(late)
        await late.join(room_id, "late")
        assert await late.next("online_users") == lasts[0] + ["late"]
        for client in clients[:-1]:
            assert await client.next_until("online_users", lasts[0] + ["late"])
        for client in clients:
            await client.assert_no("online_users")
        # How many copies a fill costs depends on how fast the joins come: measured, not
        # asserted (bench/run.py --scenarios fill: 501 members, 125,751 copies uncoalesced).
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients))


async def test_quick_joins_under_the_default_interval_end_on_the_true_list(server, room_id):
    clients = await clients_open(server.url, MEMBERS)
    try:
        names = await quick_joins(clients, room_id)
        lasts = await full_list_of_everyone(clients, names)
        assert all(last == lasts[0] for last in lasts), lasts
        for client in clients:
            await client.assert_no("online_users")
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients))


async def test_a_leave_inside_the_interval_is_in_the_one_list_that_follows(slow_presence_server, room_id):
    alice, bob, carol = await clients_open(slow_presence_server.url, 3)
    try:
        await alice.join(room_id, "alice")
        assert alice.received("online_users") == [["alice"]]  # a quiet room: sent at once, before the ack
        await bob.join(room_id, "bob")
        await carol.join(room_id, "carol")
        assert await bob.call("leave_room", {"roomId": room_id}) == {"ok": True}
        assert await alice.next_until("online_users", ["alice", "carol"]) == [["alice"], ["alice", "carol"]]
        assert await carol.next("online_users") == ["alice", "carol"]
        await alice.assert_no("online_users")
        await carol.assert_no("online_users")
        await bob.assert_no("online_users")  # it left before the interval ended
    finally:
        await asyncio.gather(*(c.disconnect() for c in (alice, bob, carol)))


async def test_the_last_member_leaving_inside_the_interval_leaves_nothing_behind(slow_presence_server, room_id):
    alice, bob = await clients_open(slow_presence_server.url, 2)
    try:
        await alice.join(room_id, "alice")
        assert await alice.next("online_users") == ["alice"]
        await alice.call("leave_room", {"roomId": room_id})
        await bob.join(room_id, "bob")  # the room's interval is still open: bob waits for its end
        assert bob.received("online_users") == []
        assert await bob.next("online_users") == ["bob"]
        await alice.assert_no("online_users")  # the list of bob's join is not sent to who left
    finally:
        await asyncio.gather(*(c.disconnect() for c in (alice, bob)))
