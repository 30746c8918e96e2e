"""Unsent data per socket and refused polling payloads (contract §6; issue 11).

* A client that stops reading while another relays 60 KB offers to it is cut as a slow
  consumer once more than `MAX_OUTBOUND_BYTES` wait for it, under Daphne and uvicorn
  (`make test` runs this file under both); the relays keep being acknowledged, and the
  server's memory stays bounded. The proof the reader was cut is the `online_users`
  update the relaying client receives without it (the reader's `disconnect` ran).
* A polling POST carrying more packets than engine.io decodes is refused with a 400 and
  the session closed, with one log line and no traceback; a POST of 20 packets (more
  than engine.io's default of 16, which socket.io-client sends when it batches) is
  handled whole.
* A long-polling GET's response carries at most `POLLING_RESPONSE_PACKETS` (16) packets, the
  rest in order in the next: python-engineio's client drops a whole response of more than
  16 packets (`Payload.max_decode_packets`), acks and messages with it.

The reader is a raw engine.io websocket client (the `websockets` library with a one-message
queue: once the test stops calling `recv`, the library stops reading the socket, as a
stalled browser tab does).
"""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from engineio.payload import Payload

from tests.realtime.conftest import SocketClient

OFFER_BYTES = 60_000
MAX_OFFERS = 600  # 36 MB: far past the limit plus every kernel buffer on the way
RSS_BOUND_MB = 400  # the unguarded server grows by ~100 MB per second of this flood


@pytest.fixture(scope="module")
def guarded_server(server_factory):
    return server_factory(RELAY_RATE="0", SEND_RATE="0", MAX_OUTBOUND_BYTES="1048576")


async def stalled_reader(url: str, room_id: str):
    """A websocket engine.io session joined to `room_id` as `reader`; returns (ws, sid)."""
    ws = await ws_connect(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", max_queue=1, max_size=None
    )
    opening = await ws.recv()
    assert opening.startswith("0"), opening
    await ws.send("40")
    while not (answer := await ws.recv()).startswith("40"):
        pass
    sid = json.loads(answer[2:])["sid"]
    await ws.send('420["join_room",' + json.dumps({"roomId": room_id, "username": "reader"}) + "]")
    while not (await ws.recv()).startswith("430"):
        pass
    return ws, sid


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) // 1024


async def test_a_reader_that_stops_reading_is_cut_and_the_server_stays_bounded(guarded_server, room_id):
    rss_before = rss_mb(guarded_server.process.pid)
    ws, reader_sid = await stalled_reader(guarded_server.url, room_id)
    sender = await SocketClient(guarded_server.url).connect()
    try:
        await sender.join(room_id, "sender")
        assert await sender.next("online_users") == ["reader", "sender"]
        body = {"type": "offer", "sdp": "v" * OFFER_BYTES}
        for sent in range(1, MAX_OFFERS + 1):
            ack = await sender.call("offer", {"to": reader_sid, "offer": body, "username": "sender"})
            if sender.received("online_users")[-1] == ["sender"]:
                break  # the reader's disconnect ran: it was cut
            assert ack == {"ok": True}, (sent, ack)
        else:
            pytest.fail(f"the reader was never cut after {MAX_OFFERS} offers of {OFFER_BYTES} bytes")
        rss_after = rss_mb(guarded_server.process.pid)
        assert rss_after < RSS_BOUND_MB
        print(f"\nslow consumer: cut after {sent} offers of {OFFER_BYTES} bytes; server RSS {rss_before} -> {rss_after} MB")
        # The server still serves the sender (a barrier: this ack comes after the cut).
        assert (await sender.call("send_message", {"roomId": room_id, "message": "still here"}))["ok"] is True
    finally:
        await sender.disconnect()
        await ws.close()
    assert "slow consumer" in guarded_server.log_tail(20_000)


def polling_session(http: httpx.Client) -> dict:
    opening = http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert opening.status_code == 200, opening.text
    query = {"EIO": "4", "transport": "polling", "sid": json.loads(opening.text[1:])["sid"]}
    assert http.post("/socket.io/", params=query, content="40").status_code == 200
    assert http.get("/socket.io/", params=query).text.startswith("40")
    return query


def polling_member(http: httpx.Client, room_id: str, username: str) -> dict:
    """A raw engine.io polling session joined to `room_id`, whose GETs the test makes (so it
    decides when packets are taken); returns its query parameters."""
    query = polling_session(http)
    join = '420["join_room",' + json.dumps({"roomId": room_id, "username": username}) + "]"
    assert http.post("/socket.io/", params=query, content=join).status_code == 200
    while not any(p.startswith("430") for p in http.get("/socket.io/", params=query).text.split("\x1e")):
        pass
    return query


def send_packets(room_id: str, count: int, *, first_id: int) -> str:
    return "\x1e".join(
        f"42{first_id + i}"
        + json.dumps(["send_message", {"roomId": room_id, "username": "poller", "message": f"batched {i}"}])
        for i in range(count)
    )


def acks_until(http: httpx.Client, query: dict, count: int) -> list[str]:
    """Long-poll until `count` acks came; a poll that stays empty for 10 s ends the wait
    (engine.io answers a poll as soon as anything is queued)."""
    acks: list[str] = []
    while len(acks) < count:
        try:
            response = http.get("/socket.io/", params=query, timeout=10.0)
        except httpx.ReadTimeout:
            break
        assert response.status_code == 200, response.text
        acks += [p for p in response.text.split("\x1e") if p.startswith("43")]
    assert len(acks) == count, f"{len(acks)} of {count} acks"
    return acks


def test_a_polling_post_of_twenty_packets_is_handled_whole(guarded_server, room_id, mongo):
    with httpx.Client(base_url=guarded_server.url, timeout=30.0) as http:
        query = polling_session(http)
        assert http.post("/socket.io/", params=query, content=send_packets(room_id, 1, first_id=1)).status_code == 200
        acks_until(http, query, 1)  # joined (implicitly) and stored
        response = http.post("/socket.io/", params=query, content=send_packets(room_id, 20, first_id=100))
        assert response.status_code == 200
        acks = acks_until(http, query, 20)
    assert all('"ok":true' in ack for ack in acks), acks
    assert mongo.messages.count_documents({"roomId": room_id}) == 21


def test_a_polling_post_of_too_many_packets_is_refused_in_one_log_line(guarded_server, room_id, mongo):
    with httpx.Client(base_url=guarded_server.url, timeout=30.0) as http:
        query = polling_session(http)
        response = http.post("/socket.io/", params=query, content=send_packets(room_id, 200, first_id=1))
        assert response.status_code == 400
        after = http.get("/socket.io/", params=query)
        assert after.status_code == 400  # the session is gone
    assert mongo.messages.count_documents({"roomId": room_id}) == 0
    log = guarded_server.log_tail(50_000)
    assert f"polling payload from {query['sid']} refused" in log
    assert "Too many packets in payload\nTraceback" not in log and "post request handler error" not in log


async def test_a_polling_response_carries_at_most_sixteen_packets_and_the_rest_follows_in_order(
    guarded_server, room_id
):
    burst = 20
    with httpx.Client(base_url=guarded_server.url, timeout=30.0) as http:
        query = polling_member(http, room_id, "poller")
        sender = await SocketClient(guarded_server.url).connect()
        try:
            await sender.join(room_id, "sender")
            for i in range(burst):  # each ack comes after the copy for the poller was queued
                assert (await sender.call("send_message", {"roomId": room_id, "message": f"m{i}"}))["ok"] is True
        finally:
            await sender.disconnect()
        first = http.get("/socket.io/", params=query).text
        second = http.get("/socket.io/", params=query).text
    assert len(Payload(encoded_payload=first).packets) == 16  # what a python-engineio client decodes
    packets = first.split("\x1e") + second.split("\x1e")
    messages = [json.loads(p[2:])[1]["message"] for p in packets if p.startswith('42["receive_message"')]
    assert messages == [f"m{i}" for i in range(burst)]
