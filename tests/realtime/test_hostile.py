"""Hostile payloads: every event refuses every bad shape, and the server keeps serving."""

import json

import aiohttp
import pytest
from bson import ObjectId

from tests.realtime.conftest import BARRIER_ROOM, WAIT, stored_messages

EVENTS = [
    "join_room",
    "leave_room",
    "send_message",
    "send_voice_message",
    "send_image_message",
    "delete_message",
    "edit_message",
    "typing",
    "join_call",
    "leave_call",
    "offer",
    "answer",
    "ice_candidate",
]

NESTED = {"a": [{"b": [{"c": [1, 2, {"d": "e" * 100}] * 50}] * 20}]}


def bad_payloads(room_id: str) -> list[tuple]:
    """Argument tuples for `SocketClient.call` (an empty tuple sends no payload at all)."""
    return [
        (),
        (None,),
        ([room_id, "alice"],),
        (42,),
        ("roomId",),
        (True,),
        ({},),
        ({"roomId": room_id}, "extra argument"),
        ({"roomId": {"$ne": None}, "username": "alice", "message": "x", "messageId": {"$ne": None}},),
        ({"roomId": [room_id], "username": "alice"},),
        ({"roomId": room_id * 20, "username": "alice"},),
        ({"roomId": "a/b", "username": "alice"},),
        ({"roomId": room_id, "username": {"$gt": ""}, "message": {"$ne": None}, "url": {"$ne": None}},),
        ({"roomId": room_id, "username": "u" * 65, "message": "m" * 6000, "url": "u" * 5000},),
        ({"roomId": room_id, "username": "System", "messageId": "zz", "to": {"$ne": None}},),
        ({"roomId": NESTED, "username": NESTED, "message": NESTED, "to": NESTED, "offer": "not an object"},),
        ({"to": ["a", "b"], "offer": None, "answer": [], "candidate": 5},),
        ({"roomId": 5, "to": "t" * 100},),
        # typing, edit_message, clientOffset (one entry: the write bucket holds SEND_BURST = 20)
        ({"roomId": room_id, "username": {"$gt": ""}, "typing": "yes", "messageId": None, "message": {"$set": "x"},
          "clientOffset": {"$ne": None}},),  # fmt: skip
    ]


@pytest.mark.parametrize("event", EVENTS)
async def test_every_bad_payload_is_refused_and_nothing_is_stored(connect, joined, room_id, mongo, event):
    witness = await joined("witness")
    client = await connect()
    for args in bad_payloads(room_id):
        ack = await client.call(event, *args)
        assert isinstance(ack, dict) and ack["ok"] is False and isinstance(ack["error"], str), (args, ack)
    # still serving: the same socket and the room work as usual
    await client.join(room_id, "alice")
    ack = await client.call("send_message", {"roomId": room_id, "username": "alice", "message": "still here"})
    assert ack["ok"] is True
    assert (await witness.next("receive_message"))["message"] == "still here"
    assert [doc["message"] for doc in stored_messages(mongo, room_id)] == ["still here"]
    for name in ("receive_voice_message", "receive_image_message", "message_deleted", "message_edited", "user_typing",
                 "call_notification", "offer"):  # fmt: skip
        await witness.assert_no(name)


async def test_events_without_an_ack_callback_are_only_logged(connect, joined, room_id):
    witness = await joined("witness")
    client = await connect()
    for event in EVENTS:
        for args in bad_payloads(room_id)[:6]:
            await client.emit(event, *args)
    # junk is charged to the write bucket like anything else
    ack = await client.call("send_message", {"roomId": room_id, "message": "x"})
    assert ack == {"ok": False, "error": "rate limited"}
    fresh = await connect()
    assert (await fresh.call("send_message", {"roomId": room_id, "message": "ok"}))["ok"] is True
    assert (await witness.next("receive_message"))["message"] == "ok"


@pytest.mark.parametrize("event", ["send_message", "send_voice_message", "send_image_message"])
async def test_a_hostile_client_offset_is_refused_and_nothing_is_stored(connect, joined, room_id, mongo, event):
    """`clientOffset` (optional on the sends): anything but a string of 1–64 characters is refused,
    even when the rest of the payload is a valid text send."""
    witness = await joined("witness")
    client = await connect()
    await client.join(room_id, "alice")
    kind = event.split("_")[1]
    url = f"/api/{kind}/{ObjectId()}" if kind != "message" else None  # no such file: refused anyway
    for bad in ({"$ne": None}, {"$gt": ""}, ["a"], NESTED, 7, True, "", "o" * 65, "o" * 100_000):
        payload = {"roomId": room_id, "username": "alice", "message": "m", "url": url, "clientOffset": bad}
        ack = await client.call(event, payload)
        assert ack == {"ok": False, "error": "clientOffset must be a string of 1 to 64 characters"}, ack
    await witness.assert_no("receive_message")
    assert stored_messages(mongo, room_id) == []


async def test_unknown_event_is_ignored(connect, room_id):
    client = await connect()
    await client.emit("no_such_event", {"roomId": room_id})
    await client.join(room_id, "alice")


async def raw_socket_send(base_url: str, frame: str) -> None:
    """Speak Engine.IO/Socket.IO by hand, to send what no client library would encode."""
    url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, timeout=WAIT) as ws:
        opened = await ws.receive_str(timeout=WAIT)
        assert opened.startswith("0")
        await ws.send_str("40")
        assert (await ws.receive_str(timeout=WAIT)).startswith("40")
        try:
            await ws.send_str(frame)
            # Barrier: an acknowledged no-op sent after the frame. Its ack (or the server
            # closing the connection over the frame) proves the frame has been dealt with.
            await ws.send_str(f'420["leave_room",{{"roomId":"{BARRIER_ROOM}"}}]')
        except (ConnectionError, aiohttp.ClientOSError):
            return  # the server cut the connection while the frame was still being written
        while True:
            message = await ws.receive(timeout=WAIT)
            if message.type != aiohttp.WSMsgType.TEXT or message.data.startswith("430"):
                return


@pytest.mark.parametrize(
    "frame",
    [
        '42["send_message",' + "[" * 50_000 + "]" * 50_000 + "]",
        '42["send_message",{"roomId":' + '{"a":' * 20_000 + "1" + "}" * 20_000 + "}]",
        '42["send_message",{"roomId":"r",' + "x" * 2_000_000,
        '42["join_room",{"roomId":"r"',
        "42not json",
        '42{"event":"join_room"}',
        "42[]",
        "42[42]",
    ],
    ids=["deep-list", "deep-object", "oversize", "truncated", "not-json", "not-a-list", "empty", "non-string-name"],
)
async def test_malformed_frames_do_not_hurt_the_server(connect, server, room_id, frame):
    await raw_socket_send(server.url, frame)
    client = await connect()
    await client.join(room_id, "alice")
    ack = await client.call("send_message", {"roomId": room_id, "username": "alice", "message": "fine"})
    assert ack["ok"] is True


async def test_relayed_bodies_pass_through_unchanged(joined):
    alice = await joined("alice")
    bob = await joined("bob")
    body = {"type": "offer", "sdp": "v=0\r\n" * 1000, "extra": [1, {"x": None}]}
    assert (await alice.call("offer", {"to": bob.sid, "offer": body}))["ok"] is True
    assert (await bob.next("offer"))["offer"] == json.loads(json.dumps(body))
