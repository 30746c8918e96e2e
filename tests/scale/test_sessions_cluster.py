"""Half-open engine.io sessions across two processes on one Redis (issue 20).

The per-IP cap is one count for the whole cluster (`P ip` in Redis, `connection_acquire`):
bare handshakes on A and B together fill it, and a refusal on either process is counted in
that process's `chillout_engineio_sessions_refused_total`. A process killed with its
sessions still open gives their slots back once the others have reaped it
(`DEAD_PROCESS_SECONDS`), never later.
"""

from __future__ import annotations

import signal

import httpx

from tests.engineio_sessions import (
    SESSIONS_GAUGE,
    metric,
    polling_close,
    polling_close_all,
    polling_fill,
    polling_open,
    polling_refused,
    refused_count,
    sessions_wait,
    websocket_open,
    websocket_refused,
)
from tests.scale.conftest import DEAD_PROCESS_SECONDS
from tests.waiting import async_wait_until, attempts_for

CAP = 4
IP = "127.0.0.1"
REAP_WAIT = 10 * DEAD_PROCESS_SECONDS + 60  # a guard against a hang only


def ip_count(cluster) -> int:
    """The cluster's count of sessions from the tests' address, as Redis holds it."""
    return int(cluster.redis.hget(f"{cluster.prefix}ip", IP) or 0)


async def ip_count_wait(cluster, expected: int) -> None:
    await async_wait_until(lambda: ip_count(cluster) == expected, attempts=attempts_for(REAP_WAIT),
                           message=lambda: f"{IP} holds {ip_count(cluster)} slots in Redis, not {expected}: {cluster.keys()}")  # fmt: skip


async def test_bare_handshakes_on_both_processes_share_one_cap(cluster_factory):
    cluster = cluster_factory(MAX_CONNECTIONS_PER_IP=str(CAP), CONNECT_TIMEOUT_SECONDS="120", METRICS="open")
    a, b = cluster.servers
    async with httpx.AsyncClient(base_url=a.url, timeout=30.0) as on_a, \
            httpx.AsyncClient(base_url=b.url, timeout=30.0) as on_b:  # fmt: skip
        polls_a = await polling_fill(on_a, CAP // 2)
        sockets_b = [await websocket_open(b.url) for _ in range(CAP // 2)]
        assert ip_count(cluster) == CAP
        await polling_refused(on_a)
        await websocket_refused(b.url)
        await polling_refused(on_b)
        assert (refused_count(a.url), refused_count(b.url)) == (1, 2)

        await polling_close(on_a, polls_a.pop())  # a slot freed on A is free for B
        await sessions_wait(a.url, CAP // 2 - 1)  # A's gauge drops once Redis has the slot back
        assert ip_count(cluster) == CAP - 1
        sockets_b.append(await websocket_open(b.url))
        await polling_refused(on_a)
        assert (refused_count(a.url), refused_count(b.url)) == (2, 2)
        assert (metric(a.url, SESSIONS_GAUGE), metric(b.url, SESSIONS_GAUGE)) == (1, 3)

        await polling_close_all(on_a, polls_a)
        for ws in sockets_b:
            await ws.close()
        await ip_count_wait(cluster, 0)
        await sessions_wait(a.url, 0)
        await sessions_wait(b.url, 0)


async def test_a_killed_process_gives_its_half_open_slots_back(cluster_factory):
    """kill -9 of B while it holds three bare sessions: once A has reaped B, A admits
    exactly three new handshakes, and the next is refused."""
    cluster = cluster_factory(MAX_CONNECTIONS_PER_IP=str(CAP), CONNECT_TIMEOUT_SECONDS="120", METRICS="open")
    a, b = cluster.servers
    async with httpx.AsyncClient(base_url=a.url, timeout=30.0) as on_a, \
            httpx.AsyncClient(base_url=b.url, timeout=30.0) as on_b:  # fmt: skip
        held_a = [await polling_open(on_a)]
        await polling_fill(on_b, CAP - 2)
        on_b_socket = await websocket_open(b.url)
        await polling_refused(on_a)
        assert ip_count(cluster) == CAP

        b.stop(sig=signal.SIGKILL)
        await ip_count_wait(cluster, 1)  # B's three subtracted by A's reaper, A's own kept
        assert len(cluster.redis.smembers(f"{cluster.prefix}nodes")) == 1  # B forgotten with its counts
        held_a += await polling_fill(on_a, CAP - 2)
        last = await websocket_open(a.url)
        await polling_refused(on_a)
        await websocket_refused(a.url)
        assert refused_count(a.url) == 3
        assert metric(a.url, SESSIONS_GAUGE) == CAP

        await polling_close_all(on_a, held_a)
        await last.close()
        await ip_count_wait(cluster, 0)
    await on_b_socket.close()
