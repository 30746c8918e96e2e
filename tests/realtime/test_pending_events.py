"""Events waiting per socket are bounded (`MAX_PENDING_EVENTS`, contract §6; issue 11).

A client that sends events faster than they are handled makes python-socketio start one
task per event, each waiting for the socket's lock. Past `MAX_PENDING_EVENTS` waiting the
socket is disconnected. The flooder is a raw engine.io websocket client writing 300
`send_message` frames back-to-back; the proof it was disconnected is the `online_users`
update an observer in the room receives without it (its `disconnect` ran). A client that
waits for each ack is never cut (barrier: its own last ack).
"""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import SocketClient

FLOOD = 300
LIMIT = 8


@pytest.fixture(scope="module")
def bounded_server(server_factory):
    return server_factory(MAX_PENDING_EVENTS=str(LIMIT), SEND_RATE="0")


async def raw_session(url: str, room_id: str, username: str):
    ws = await ws_connect(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", max_size=None)
    assert (await ws.recv()).startswith("0")
    await ws.send("40")
    while not (await ws.recv()).startswith("40"):
        pass
    await ws.send("420" + json.dumps(["join_room", {"roomId": room_id, "username": username}]))
    while not (await ws.recv()).startswith("430"):
        pass
    return ws


async def test_a_client_flooding_events_is_disconnected(bounded_server, room_id, mongo):
    observer = await SocketClient(bounded_server.url).connect()
    ws = await raw_session(bounded_server.url, room_id, "flooder")
    try:
        await observer.join(room_id, "observer")
        assert await observer.next("online_users") == ["flooder", "observer"]
        frames = [
            f"42{100 + i}" + json.dumps(["send_message", {"roomId": room_id, "message": f"flood {i}"}])
            for i in range(FLOOD)
        ]
        acks, disconnected = [], False
        try:
            for frame in frames:  # the server may drop the connection before all are written
                await ws.send(frame)
            while len(acks) < FLOOD:  # all handled: it was never cut
                packet = await ws.recv()
                if packet.startswith("43"):
                    acks.append(json.loads(packet[packet.index("[") :])[0])
                elif packet.startswith("41"):
                    disconnected = True
                    break
        except ConnectionClosed:
            disconnected = True
        assert disconnected, f"never disconnected: {len(acks)} of {FLOOD} events handled"
        assert await observer.next("online_users") == ["observer"]
    finally:
        await ws.close()
        await observer.disconnect()
    handled = [ack for ack in acks if ack["ok"]]
    assert len(handled) < FLOOD
    assert mongo.messages.count_documents({"roomId": room_id}) >= len(handled)
    assert "too many events waiting" in bounded_server.log_tail(50_000) or any(
        ack.get("error") == "too many events waiting" for ack in acks
    )


async def test_a_client_waiting_for_each_ack_is_never_cut(bounded_server, room_id):
    client = await SocketClient(bounded_server.url).connect()
    try:
        await client.join(room_id, "patient")
        for i in range(3 * LIMIT):
            assert (await client.call("send_message", {"roomId": room_id, "message": f"one at a time {i}"}))["ok"]
        assert client.sio.connected
    finally:
        await client.disconnect()
