"""Copies written straight into websockets (the `direct_write` tuning, realtime/delivery.py
and realtime/backpressure.py `direct_write`): who gets which path, order, and the
slow-consumer cut. Its servers turn the tuning on whatever `LIBRARY_TUNINGS` the run has.

* Order: a reader that stops reading makes the server buffer, so its copies move from the
  direct path to engine.io's queue; once it reads again they move back. Offers (`to=` one
  socket, no offset) and room broadcasts (with their recovery offset) in between must reach
  it whole, each exactly once, in the order the server acknowledged them, offsets rising.
  `chillout_socket_copies_total` proves both paths were taken.
* A reader of big room broadcasts that stops reading is still cut as a slow consumer, with
  the server's memory bounded (the direct path never buffers past the transport's 64 KiB
  before handing over to the metered queue).
* A message to a room of two websocket members and one polling member: the two copies to
  the websockets go direct, the polling one through the queue; with the tuning off
  (`LIBRARY_TUNINGS=-direct_write`) python-socketio's own emit sends all three, and the
  tuning's emit counts none. Exact counts from the metric, every member receives it.

The reader is a raw engine.io websocket client with a small kernel receive buffer and a
one-message queue (the `websockets` library stops reading the socket once it is full).
"""

from __future__ import annotations

import asyncio
import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from realtime.recovery import offset_parse
from tests.realtime.conftest import SocketClient
from tests.realtime.test_backpressure import polling_member, rss_mb
from tests.realtime.test_observability import metric

OFFER_BYTES = 60_000
STALLED_ITEMS = 240  # 160 offers of 60 KB while the reader reads nothing: ~10 MB, past every buffer
FLOWING_ITEMS = 90  # then more while it reads again
BIG_MESSAGE = 50_000
RSS_BOUND_MB = 400


def copies(server) -> tuple[float, float]:
    return (metric(server, "chillout_socket_copies_total", path="direct"),
            metric(server, "chillout_socket_copies_total", path="queue"))  # fmt: skip


@pytest.fixture(scope="module")
def roomy_server(server_factory):
    """Outbound bound far away (the order test buffers ~10 MB for one reader), big messages allowed."""
    return server_factory(RELAY_RATE="0", SEND_RATE="0", MAX_OUTBOUND_BYTES=str(256 * 1024 * 1024),
                          MAX_MESSAGE_CHARS=str(BIG_MESSAGE), METRICS="open", LIBRARY_TUNINGS="on")  # fmt: skip


@pytest.fixture(scope="module")
def tight_server(server_factory):
    return server_factory(RELAY_RATE="0", SEND_RATE="0", MAX_OUTBOUND_BYTES="1048576", MAX_MESSAGE_CHARS=str(BIG_MESSAGE),
                          METRICS="open", LIBRARY_TUNINGS="on")  # fmt: skip


@pytest.fixture(scope="module")
def queue_only_server(server_factory):
    return server_factory(LIBRARY_TUNINGS="-direct_write", METRICS="open")


class RawReader:
    """An engine.io websocket session joined to a room, that reads only when told to."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.sid = ""

    @classmethod
    async def open(cls, url: str, room_id: str, username: str) -> RawReader:
        address = urlsplit(url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # no autotuning: the server must buffer
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
        ws = await ws_connect(f"ws://{address.netloc}/socket.io/?EIO=4&transport=websocket", sock=sock,
                              max_queue=1, max_size=None)  # fmt: skip
        reader = cls(ws)
        assert (await ws.recv()).startswith("0")
        await ws.send("40")
        while not (answer := await ws.recv()).startswith("40"):
            pass
        reader.sid = json.loads(answer[2:])["sid"]
        await ws.send('420["join_room",' + json.dumps({"roomId": room_id, "username": username}) + "]")
        while not (await ws.recv()).startswith("430"):
            pass
        return reader

    async def events(self, wanted: set[str], count: int) -> list[list]:
        """The next `count` events named in `wanted` ([name, *args]), answering pings."""
        got = []
        while len(got) < count:
            packet = await asyncio.wait_for(self.ws.recv(), 60)
            if packet == "2":
                await self.ws.send("3")
            elif packet.startswith("42") and (event := json.loads(packet[2:]))[0] in wanted:
                got.append(event)
        return got


async def item_send(sender: SocketClient, *, k: int, room_id: str, to: str) -> None:
    """Item k: every third a chat message to the room, the others a 60 KB offer to `to`."""
    if k % 3 == 0:
        ack = await sender.call("send_message", {"roomId": room_id, "message": f"m{k}"})
        assert ack["ok"] is True, (k, ack)
    else:
        body = {"type": "offer", "sdp": f"{k}:" + "v" * OFFER_BYTES}
        assert await sender.call("offer", {"to": to, "offer": body, "username": "sender"}) == {"ok": True}, k


def item_of(event: list) -> int:
    if event[0] == "offer":
        return int(event[1]["offer"]["sdp"].split(":", 1)[0])
    return int(event[1]["message"].removeprefix("m"))


async def test_copies_keep_their_order_from_direct_to_queue_and_back(roomy_server, room_id):
    reader = await RawReader.open(roomy_server.url, room_id, "reader")
    sender = await SocketClient(roomy_server.url).connect()
    try:
        await sender.join(room_id, "sender")
        direct_before, queue_before = copies(roomy_server)
        for k in range(STALLED_ITEMS):
            await item_send(sender, k=k, room_id=room_id, to=reader.sid)
        total = STALLED_ITEMS + FLOWING_ITEMS
        reading = asyncio.create_task(reader.events({"offer", "receive_message"}, total))
        for k in range(STALLED_ITEMS, total):
            await item_send(sender, k=k, room_id=room_id, to=reader.sid)
        events = await reading
        assert [item_of(event) for event in events] == list(range(total))
        offsets = [offset_parse(event[-1]) for event in events if event[0] == "receive_message"]
        assert None not in offsets and len(offsets) == len(range(0, total, 3))
        assert all((a.epoch, a.n) < (b.epoch, b.n) for a, b in zip(offsets, offsets[1:]))
        assert all(len(event[1]["offer"]["sdp"]) == len(f"{item_of(event)}:") + OFFER_BYTES
                   for event in events if event[0] == "offer")  # fmt: skip
        direct_after, queue_after = copies(roomy_server)
        assert direct_after > direct_before, "no copy took the direct path"
        assert queue_after > queue_before, "no copy waited in the queue: the reader never made the server buffer"
    finally:
        await sender.disconnect()
        await reader.ws.close()


async def test_a_reader_of_big_room_messages_that_stops_reading_is_cut(tight_server, room_id):
    rss_before = rss_mb(tight_server.process.pid)
    reader = await RawReader.open(tight_server.url, room_id, "reader")
    sender = await SocketClient(tight_server.url).connect()
    try:
        await sender.join(room_id, "sender")
        await sender.next_until("online_users", ["reader", "sender"])
        direct_before, _ = copies(tight_server)
        for sent in range(1, 401):  # 20 MB of messages at most
            ack = await sender.call("send_message", {"roomId": room_id, "message": "w" * BIG_MESSAGE})
            assert ack["ok"] is True, (sent, ack)
            if sender.received("online_users")[-1] == ["sender"]:
                break  # the reader's disconnect ran: it was cut
        else:
            pytest.fail("the reader was never cut")
        assert copies(tight_server)[0] > direct_before
        rss_after = rss_mb(tight_server.process.pid)
        assert rss_after < RSS_BOUND_MB
        print(f"\nslow reader of room messages: cut after {sent} of {BIG_MESSAGE} chars; RSS {rss_before} -> {rss_after} MB")
        assert (await sender.call("send_message", {"roomId": room_id, "message": "still here"}))["ok"] is True
    finally:
        await sender.disconnect()
        await reader.ws.close()
    assert "slow consumer" in tight_server.log_tail(20_000)


def polling_events(http: httpx.Client, query: dict, event: str) -> list:
    """Long-poll until packets of `event` came; their payloads."""
    while True:
        packets = http.get("/socket.io/", params=query, timeout=30).text.split("\x1e")
        found = [json.loads(p[2:])[1] for p in packets if p.startswith("42") and json.loads(p[2:])[0] == event]
        if found:
            return found


@pytest.mark.parametrize("direct_write, direct, queued", [("on", 2, 1), ("off", 0, 0)])
async def test_websocket_copies_go_direct_and_polling_copies_through_the_queue(
    request, roomy_server, room_id, direct_write, direct, queued
):
    server = roomy_server if direct_write == "on" else request.getfixturevalue("queue_only_server")
    members = [await SocketClient(server.url).connect(), await SocketClient(server.url).connect()]
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        try:
            for i, member in enumerate(members):
                await member.join(room_id, f"u{i}")
            poller = polling_member(http, room_id, "u2")
            for member in members:
                await member.next_until("online_users", ["u0", "u1", "u2"])
            before = copies(server)
            assert (await members[0].call("send_message", {"roomId": room_id, "message": "hello"}))["ok"] is True
            for member in members:
                assert (await member.next("receive_message"))["message"] == "hello"
            assert [m["message"] for m in polling_events(http, poller, "receive_message")] == ["hello"]
            after = copies(server)
            assert (after[0] - before[0], after[1] - before[1]) == (direct, queued)
        finally:
            for member in members:
                await member.disconnect()
