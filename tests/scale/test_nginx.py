"""Through a real nginx running the recipe in deploy/nginx, in front of two processes.

Clients connect from different loopback addresses (127.0.0.x), so nginx's
`hash $remote_addr` spreads them over both processes, and Daphne's `--proxy-headers`
gives each server the client's own address for the per-IP cap.
"""

import asyncio
import re

import aiohttp
import httpx
import pytest
from socketio.exceptions import ConnectionError as SocketConnectionError

from tests.realtime.conftest import SocketClient
from tests.scale.conftest import REFUSED

POLLING_CLIENTS = 16


@pytest.fixture(scope="module")
def proxied(cluster_factory):
    return cluster_factory(daphne_args=("--proxy-headers",), METRICS="open", SEND_RATE="0", MAX_CONNECTIONS_PER_IP="2")


@pytest.fixture
async def from_address(clients):
    """`await from_address(url, "127.0.0.7", transports=...)`: a client whose TCP source is that address."""
    sessions: list[aiohttp.ClientSession] = []

    async def open_client(url: str, address: str, *, transports: tuple[str, ...] = ("websocket",)) -> SocketClient:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
        sessions.append(session)
        return await clients(url, transports=transports, http_session=session)

    yield open_client
    for session in sessions:
        await session.close()


def sockets_connected(server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10.0).text
    return float(re.search(r"^chillout_sockets_connected (\S+)$", text, re.M).group(1))


async def exchange(clients: list[SocketClient], room_id: str) -> None:
    """Each client joins and sends one message; every client receives every message once."""
    for i, client in enumerate(clients):
        await client.join(room_id, f"user{i}")
    acks = await asyncio.gather(
        *(c.call("send_message", {"roomId": room_id, "message": f"m{i}"}) for i, c in enumerate(clients))
    )
    assert all(ack["ok"] for ack in acks), acks
    for client in clients:
        texts = sorted([(await client.next("receive_message"))["message"] for _ in clients])
        assert texts == sorted(f"m{i}" for i in range(len(clients)))
    # Barrier: each sender sends again; its second message reaches clients[0] after any second
    # copy of its first would have, so the next messages must be exactly the barriers.
    for i, client in enumerate(clients):
        assert (await client.call("send_message", {"roomId": room_id, "message": f"barrier{i}"}))["ok"] is True
    barriers = sorted([(await clients[0].next("receive_message"))["message"] for _ in clients])
    assert barriers == sorted(f"barrier{i}" for i in range(len(clients)))


async def test_websocket_clients_through_nginx(proxied, nginx_factory, from_address, room_id):
    url = nginx_factory([server.port for server in proxied.servers])
    alice = await from_address(url, "127.0.0.2")
    bob = await from_address(url, "127.0.0.3")
    await exchange([alice, bob], room_id)


async def test_polling_clients_stay_on_their_process_through_nginx(proxied, nginx_factory, from_address, room_id):
    """Long-polling breaks ("Invalid session") unless every request of a session reaches the
    process holding it: many polling clients spread over both processes all get through."""
    a, b = proxied.servers
    url = nginx_factory([a.port, b.port])
    polling = [
        await from_address(url, f"127.0.0.{10 + i}", transports=("polling",)) for i in range(POLLING_CLIENTS)
    ]
    assert sockets_connected(a) > 0 and sockets_connected(b) > 0, "nginx sent every client to one process"
    await exchange(polling, room_id)


async def test_the_per_ip_cap_sees_client_addresses_through_nginx(proxied, nginx_factory, from_address):
    """Without --proxy-headers every client would be nginx's 127.0.0.1 and share one cap."""
    url = nginx_factory([server.port for server in proxied.servers])
    await from_address(url, "127.0.0.40")
    await from_address(url, "127.0.0.40")
    with pytest.raises(SocketConnectionError, match=REFUSED):
        await from_address(url, "127.0.0.40")
    await from_address(url, "127.0.0.41")
