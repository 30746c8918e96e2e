"""Socket.IO client helpers for the real-time tests.

Every test talks to a real server (see `tests/conftest.py`) through python-socketio's
`AsyncClient`. `SocketClient` records every event it receives, in order, and offers:

* `next(event)`: the next payload of that event not returned before, waiting up to `WAIT`;
* `assert_no(event)`: no new payload of that event has arrived by a BARRIER: a round trip on
  this socket (`barrier()`), whose acknowledgement the server queues after every packet it
  queued for this socket before. Call it once the action that could have caused the event
  is over (its ack awaited, or a later event of it received): then the forbidden event, had
  it been sent, would be in front of the barrier's ack on the same connection. This holds
  within one server process; across processes (Redis) a barrier must come from the process
  that would have sent the event (tests/scale);
* `call(event, *args)`: emit with an acknowledgement callback and return the ack.

Connection state recovery appends an offset (a string) to every room broadcast as its last
argument; the web client's handlers ignore it. `SocketClient` records the payload without
it (so every test sees the contract's shapes) and keeps it in `offsets`, aligned with
`events` (None for an event without one).

Waits are generous (the machine is small and shared); nothing here measures speed.
"""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict

import httpx
import pytest
import socketio

from realtime.recovery import offset_parse
from tests.factories import MEDIA as MEDIA_BYTES

WAIT = 10.0  # longest wait for something that must arrive
# A room no test joins: `leave_room` of it is a no-op that the server still acknowledges.
BARRIER_ROOM = "barrier-room-never-joined"
# The join_call ack of a server without TURN_SECRET or STUN_URLS (tests/realtime/test_turn.py has the others).
JOINED_CALL = {"ok": True, "iceServers": []}


class SocketClient:
    def __init__(self, url: str, *, transports: tuple[str, ...] = ("websocket",), **client_options) -> None:
        """`client_options` go to `socketio.AsyncClient` (e.g. `http_session=`)."""
        self.url = url
        self.transports = list(transports)
        self.sio = socketio.AsyncClient(reconnection=False, **client_options)
        self.events: list[tuple[str, object]] = []
        self.offsets: list[str | None] = []
        self._cursor: dict[str, int] = defaultdict(int)
        self._changed = asyncio.Event()
        self.connect_errors: list = []
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self.connect_errors.append)

    async def _record(self, event: str, *args) -> None:
        offset = args[-1] if len(args) >= 2 and offset_parse(args[-1]) is not None else None
        if offset is not None:
            args = args[:-1]
        self.events.append((event, args[0] if len(args) == 1 else list(args)))
        self.offsets.append(offset)
        self._changed.set()

    def offsets_of(self, event: str) -> list[str | None]:
        return [offset for (name, _), offset in zip(self.events, self.offsets) if name == event]

    async def connect(self) -> SocketClient:
        await self.sio.connect(self.url, transports=self.transports, wait_timeout=WAIT)
        return self

    async def disconnect(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    @property
    def sid(self) -> str:
        return self.sio.get_sid()

    def received(self, event: str) -> list:
        return [data for name, data in self.events if name == event]

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    async def next(self, event: str, *, timeout: float = WAIT):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            payloads = self.received(event)
            index = self._cursor[event]
            if len(payloads) > index:
                self._cursor[event] = index + 1
                return payloads[index]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} within {timeout} s; received {self.names()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def next_until(self, event: str, expected, *, timeout: float = WAIT) -> list:
        """Read `event` until a payload equals `expected`; returns the payloads read, `expected` last.

        For `online_users`, which is coalesced (realtime/presence.py): lists in between may be
        skipped, the last one is the true list.
        """
        seen = []
        while not seen or seen[-1] != expected:
            seen.append(await self.next(event, timeout=timeout))
        return seen

    async def barrier(self) -> None:
        """A round trip on this socket: every packet queued for it before has now arrived."""
        assert await self.call("leave_room", {"roomId": BARRIER_ROOM}) == {"ok": True}

    async def assert_no(self, event: str) -> None:
        await self.barrier()
        self.assert_none_pending(event)

    def assert_none_pending(self, event: str) -> None:
        """No payload of `event` received beyond those already returned by `next`."""
        extra = self.received(event)[self._cursor[event] :]
        assert not extra, f"unexpected {event!r}: {extra}"

    async def call(self, event: str, *args, timeout: float = WAIT):
        """Emit with an ack callback; no `args` sends the event without any payload."""
        data = args[0] if len(args) == 1 else (tuple(args) if args else None)
        return await self.sio.call(event, data, timeout=timeout)

    async def emit(self, event: str, *args) -> None:
        data = args[0] if len(args) == 1 else (tuple(args) if args else None)
        await self.sio.emit(event, data)

    async def join(self, room_id: str, username: str | None = None) -> dict:
        payload = {"roomId": room_id} if username is None else {"roomId": room_id, "username": username}
        ack = await self.call("join_room", payload)
        assert ack["ok"] is True, ack
        return ack


@pytest.fixture
async def connect(server):
    """`await connect()` opens a client to the shared server (or `url=`); all closed afterwards."""
    clients: list[SocketClient] = []

    async def open_client(*, url: str | None = None, transports: tuple[str, ...] = ("websocket",)) -> SocketClient:
        client = SocketClient(url or server.url, transports=transports)
        clients.append(client)
        return await client.connect()

    yield open_client
    for client in clients:
        await client.disconnect()


@pytest.fixture
async def joined(connect, room_id):
    """`await joined("alice")`: a client already in the test's room as that name."""

    async def open_joined(username: str, *, room: str | None = None) -> SocketClient:
        client = await connect()
        await client.join(room or room_id, username)
        return client

    return open_joined


async def media_upload(
    base_url: str, *, room_id: str, kind: str, username: str = "alice", data: bytes | None = None
) -> str:
    """Upload a file (default: a tiny real one) over REST as `username` (a media message must be
    sent by its uploader); returns its relative URL (`/api/<kind>/<id>`)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        response = await client.post(
            f"/api/room/{room_id}/{kind}",
            files={kind: ("blob", io.BytesIO(MEDIA_BYTES[kind] if data is None else data), "application/octet-stream")},
            data={"username": username},
        )
    assert response.status_code == 200, response.text
    return response.json()["url"]


def stored_messages(mongo, room_id: str) -> list[dict]:
    return list(mongo.messages.find({"roomId": room_id}).sort("_id", 1))
