"""Floods and per-socket limits broken on purpose (contract §6; issue 11, point 4).

* 20,000 packets in back-to-back polling POSTs, and 20,000 frames over one websocket:
  the flooding socket is cut (MAX_PENDING_EVENTS, or as a slow consumer since it never
  reads), its session is gone, and a client in another room keeps being answered during
  the flood (every one of its messages acknowledged). Its latency meanwhile is measured by
  bench/flood.py, not here;
* `join_room` / `leave_room` have their own token bucket (JOIN_RATE / JOIN_BURST);
* an offer over MAX_RELAY_BYTES is refused with an ack error and not relayed.

Each refusal is counted on /metrics.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import SocketClient
from tests.realtime.test_observability import metric

FLOOD_PACKETS = 20_000
PACKETS_PER_POST = 50
JOIN_BURST = 3
RELAY_LIMIT = 65_536


@pytest.fixture(scope="module")
def flood_server(server_factory):
    return server_factory(SEND_RATE="0", METRICS="open", JOIN_RATE="0.5", JOIN_BURST=str(JOIN_BURST))


def send_frame(room_id: str, i: int) -> str:
    return "42" + json.dumps(["send_message", {"roomId": room_id, "username": "flooder", "message": f"flood {i}"}])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


async def echo_while(url: str, room_id: str, flood) -> tuple[int, object]:
    """`send_message` in `room_id`, one after the other, while `flood()` runs and once after
    it; returns how many were acknowledged `ok` (each one is awaited: none may be lost) and
    the flood's result. How long they took is bench/flood.py's figure, not this test's."""
    echo = await SocketClient(url).connect()
    try:
        await echo.join(room_id, "echo")

        async def echoed(i: int) -> None:
            ack = await echo.call("send_message", {"roomId": room_id, "message": f"echo {i}"}, timeout=60)
            assert ack["ok"] is True, ack

        task = asyncio.create_task(flood())
        answered = 0
        while not task.done():
            await echoed(answered)
            answered += 1
        result = await task
        await echoed(-1)  # and after it
        return answered + 1, result
    finally:
        await echo.disconnect()


def report(what: str, answered: int, extra: str) -> None:
    print(f"\n{what}: {answered} echo messages answered during and after the flood; {extra}")


async def test_twenty_thousand_packets_in_back_to_back_polling_posts(flood_server, room_id, mongo):
    rss_before = rss_mb(flood_server.process.pid)
    cut_before = {r: metric(flood_server, "chillout_socket_disconnects_total", reason=r)
                  for r in ("too_many_pending", "slow_consumer")}  # fmt: skip
    async with httpx.AsyncClient(base_url=flood_server.url, timeout=60.0) as http:
        opening = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        query = {"EIO": "4", "transport": "polling", "sid": json.loads(opening.text[1:])["sid"]}
        assert (await http.post("/socket.io/", params=query, content="40")).status_code == 200
        assert (await http.get("/socket.io/", params=query)).text.startswith("40")

        async def flood() -> list[int]:
            statuses = []
            for first in range(0, FLOOD_PACKETS, PACKETS_PER_POST):
                body = "\x1e".join(send_frame(room_id, first + i) for i in range(PACKETS_PER_POST))
                statuses.append((await http.post("/socket.io/", params=query, content=body)).status_code)
            return statuses

        answered, statuses = await echo_while(flood_server.url, f"{room_id}-echo", flood)
        assert (await http.get("/socket.io/", params=query)).status_code == 400  # the flooder's session is gone
    accepted = statuses.count(200)
    assert accepted < len(statuses) and set(statuses) == {200, 400}, statuses
    assert statuses[accepted:] == [400] * (len(statuses) - accepted)  # once cut, every POST is refused
    stored = mongo.messages.count_documents({"roomId": room_id})
    assert stored <= accepted * PACKETS_PER_POST
    cuts = {r: metric(flood_server, "chillout_socket_disconnects_total", reason=r) - cut_before[r] for r in cut_before}
    assert sum(cuts.values()) == 1, cuts
    report("polling flood", answered,
           f"{accepted} POSTs of {PACKETS_PER_POST} accepted before the cut, {len(statuses) - accepted} refused (400), "
           f"{stored} messages stored, cut as {[r for r, n in cuts.items() if n]}, "
           f"server RSS {rss_before:.0f} -> {rss_mb(flood_server.process.pid):.0f} MB")  # fmt: skip


async def test_twenty_thousand_frames_over_a_websocket(flood_server, room_id, mongo):
    rss_before = rss_mb(flood_server.process.pid)
    cut_before = metric(flood_server, "chillout_socket_disconnects_total", reason="too_many_pending")
    url = flood_server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await ws_connect(url, max_size=None)
    try:
        assert (await ws.recv()).startswith("0")
        await ws.send("40")
        assert (await ws.recv()).startswith("40")

        async def flood() -> tuple[int, bool]:
            sent = 0
            try:
                for i in range(FLOOD_PACKETS):
                    await ws.send(send_frame(room_id, i))
                    sent += 1
                while True:  # all written: read until the server cuts us (DISCONNECT or a dropped connection)
                    if (await asyncio.wait_for(ws.recv(), 60)).startswith("41"):
                        return sent, True
            except ConnectionClosed:
                return sent, True

        answered, (sent, cut) = await echo_while(flood_server.url, f"{room_id}-echo", flood)
    finally:
        await ws.close()
    assert cut
    stored = mongo.messages.count_documents({"roomId": room_id})
    assert stored < FLOOD_PACKETS
    assert metric(flood_server, "chillout_socket_disconnects_total", reason="too_many_pending") - cut_before == 1
    report("websocket flood", answered,
           f"{sent} frames written before the connection closed, {stored} messages stored, "
           f"server RSS {rss_before:.0f} -> {rss_mb(flood_server.process.pid):.0f} MB")  # fmt: skip


async def test_join_and_leave_share_their_own_bucket(flood_server, room_id):
    client = await SocketClient(flood_server.url).connect()
    try:
        for i in range(JOIN_BURST):
            event = "join_room" if i % 2 == 0 else "leave_room"
            assert (await client.call(event, {"roomId": room_id, "username": "hopper"}))["ok"] is True
        before = metric(flood_server, "chillout_socket_events_refused_total", event="leave_room", reason="rate_limited")
        assert await client.call("leave_room", {"roomId": room_id}) == {"ok": False, "error": "rate limited"}
        assert await client.call("join_room", {"roomId": room_id}) == {"ok": False, "error": "rate limited"}
        # writes keep their own bucket (the socket is in the room from its first join)
        assert (await client.call("send_message", {"roomId": room_id, "message": "still writing"}))["ok"] is True
        after = metric(flood_server, "chillout_socket_events_refused_total", event="leave_room", reason="rate_limited")
        assert after - before == 1
    finally:
        await client.disconnect()


async def test_a_relay_over_max_relay_bytes_is_refused_and_not_relayed(flood_server, room_id):
    alice = await SocketClient(flood_server.url).connect()
    bob = await SocketClient(flood_server.url).connect()
    try:
        await alice.join(room_id, "alice")
        await bob.join(room_id, "bob")
        before = metric(flood_server, "chillout_socket_events_refused_total", event="offer", reason="relay_too_large")
        too_big = {"type": "offer", "sdp": "v" * RELAY_LIMIT}
        assert await alice.call("offer", {"to": bob.sid, "offer": too_big}) == {
            "ok": False, "error": f"offer must be at most {RELAY_LIMIT} bytes"}  # fmt: skip
        fits = {"type": "offer", "sdp": "v" * (RELAY_LIMIT - 100)}
        assert await alice.call("offer", {"to": bob.sid, "offer": fits}) == {"ok": True}
        assert (await bob.next("offer"))["offer"] == fits  # the barrier: the big one would be in front
        bob.assert_none_pending("offer")
        after = metric(flood_server, "chillout_socket_events_refused_total", event="offer", reason="relay_too_large")
        assert after - before == 1
    finally:
        await alice.disconnect()
        await bob.disconnect()
