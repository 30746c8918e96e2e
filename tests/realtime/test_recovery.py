"""Connection state recovery of the real Chillout server, driven by socket.io-client 4.8 (Node).

`tests/node/chillout_recovery.mjs` closes alice's transport (what a network blip does) while
bob sends 20 messages, deletes one, edits one and types; socket.io-client reconnects by
itself with its `{pid, offset}`. The same across two processes on Redis, with the first one
SIGKILLed, is in tests/scale/test_recovery_cluster.py (it reuses `recovery_flow_checks`).
The generic mechanism (skipped sids, events to one socket, the polling close, a restore
that fails, delivery order across three processes) is tested on a minimal app in
tests/realtime/test_recovery_server.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from realtime.recovery import offset_parse
from tests.realtime.conftest import stored_messages

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
MESSAGE_KEYS = ["username", "message", "type", "url", "_id", "createdAt"]


def recovery_flow_run(url_a: str, url_b: str, room_id: str, *, transport: str = "websocket", mode: str = "blip",
                      arg: str = "-", hold_ms: int = 0) -> dict:  # fmt: skip
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "run `npm ci --prefix tests/node` first"
    result = subprocess.run(
        [node, str(NODE_DIR / "chillout_recovery.mjs"), url_a, url_b, room_id, transport, mode, arg],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=180,
        env={**os.environ, **({"HOLD_MS": str(hold_ms)} if hold_ms else {})},
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"node failed ({result.returncode}): {result.stdout}\n{result.stderr}"
    return json.loads(lines[-1])


def summary(entry: list):
    """An event of the log as (name, what identifies it)."""
    event, payload = entry[0], entry[1]
    if event in ("receive_message", "call_ended_notification", "call_notification"):
        return event, payload["message"]
    if event == "message_deleted":
        return event, payload["messageId"]
    if event == "message_edited":
        return event, payload["messageId"], payload["message"]
    if event == "user_joined_call":
        return event, payload["username"]
    return event, payload


def recovery_flow_checks(out: dict, *, mongo, room_id: str) -> None:
    assert out["firstRecovered"] is False and out["pid"]
    assert out["reason"] == "forced close"  # the client-side name of engine.close()
    assert out["recovered"] is True and out["sameSid"] is True
    sent = out["sent"]
    after = out["after"]
    at_blip = [entry for entry in after if entry[0] == "receive_message" and entry[1]["message"] == "sent at the blip"]
    assert len(at_blip) == 1, after  # replayed or received live: once
    rest = [summary(entry) for entry in after if entry not in at_blip]
    assert rest == [
        # her own disconnect, as the room saw it (user_left_call skipped her: not replayed)
        ("call_ended_notification", "alice left the audio call"),
        ("online_users", ["bob"]),
        *[("receive_message", f"m{i}") for i in range(1, 21)],
        ("message_deleted", sent[4]["_id"]),
        ("message_edited", sent[6]["_id"], "m7 edited"),
        ("user_typing", {"username": "bob", "typing": False}),  # `typing: true` is volatile: never replayed
        # she is back in the room (sent after the replay), not in the call
        ("online_users", ["bob", "alice"]),
        ("call_notification", "bob is in the audio call"),
        ("user_joined_call", "bob"),
        ("receive_message", "after"),
    ]
    # every room broadcast carries its offset as its last argument, strictly increasing
    broadcasts = [entry for entry in out["before"] + after if entry[0] != "call_participants"]  # to one socket
    offsets = [offset_parse(entry[-1]) for entry in broadcasts]
    assert all(offset is not None and len(entry) == 3 for offset, entry in zip(offsets, broadcasts)), broadcasts
    numbers = [(offset.epoch, offset.n) for offset in offsets]
    assert numbers == sorted(set(numbers)) and len({epoch for epoch, _ in numbers}) == 1
    edited = next(entry[1] for entry in after if entry[0] == "message_edited")
    assert list(edited) == ["messageId", "message", "editedAt"]
    # the web client's handlers see the contract's payload (first argument) and nothing else
    assert [list(message) for message in out["handled"]] == [MESSAGE_KEYS] * len(out["handled"])
    assert [message["message"] for message in out["handled"]] == [entry[1]["message"] for entry in after
                                                                   if entry[0] == "receive_message"]  # fmt: skip
    # the re-sent message (its ack was lost) is stored and broadcast once
    assert out["resendAck"]["ok"] is True
    stored = [doc for doc in stored_messages(mongo, room_id) if doc["message"] == "sent at the blip"]
    assert len(stored) == 1 and out["resendAck"]["message"]["_id"] == str(stored[0]["_id"])
    assert at_blip[0][1] == out["resendAck"]["message"]
    bob_at_blip = [e for e in out["bobLog"] if e[0] == "receive_message" and e[1]["message"] == "sent at the blip"]
    assert len(bob_at_blip) == 1
    assert out["bobParticipants"] == []
    texts = [doc["message"] for doc in stored_messages(mongo, room_id) if doc["username"] == "bob"]
    # m5 deleted; m7 edited in place
    assert texts == ["m0", *[f"m{i}" if i != 7 else "m7 edited" for i in range(1, 21) if i != 5], "after"]
    edited_doc = next(doc for doc in stored_messages(mongo, room_id) if str(doc["_id"]) == sent[6]["_id"])
    assert edited_doc["message"] == "m7 edited" and "editedAt" in edited_doc


@pytest.fixture(scope="module")
def unlimited(server_factory):
    """A server without write rate limits (bob sends 25 writes in a row)."""
    return server_factory(SEND_RATE="0")


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_blip_loses_nothing(unlimited, mongo, room_id, transport):
    out = recovery_flow_run(unlimited.url, unlimited.url, room_id, transport=transport)
    recovery_flow_checks(out, mongo=mongo, room_id=room_id)


def test_a_reconnect_after_the_window_is_a_fresh_connection(server_factory, room_id):
    short = server_factory(RECOVERY_WINDOW_SECONDS="1")
    out = recovery_flow_run(short.url, short.url, room_id, mode="late", arg="2")
    assert out["recovered"] is False and out["sameSid"] is False
    assert out["bobParticipants"] == []
    assert [summary(entry) for entry in out["after"]] == [
        ("online_users", ["bob", "alice"]),
        ("call_notification", "bob is in the audio call"),
        ("user_joined_call", "bob"),
        ("receive_message", "after"),
    ]


def test_recovery_off_sends_no_pid_and_no_offsets(server_factory, room_id):
    off = server_factory(RECOVERY="off")
    out = recovery_flow_run(off.url, off.url, room_id, mode="late", arg="0")
    assert out["pid"] is None and "recovered" not in out  # socket.io-client: `pid && ...` is undefined
    assert out["sameSid"] is False
    assert all(len(entry) == 2 for entry in out["before"] + out["after"]), out["after"]


def test_a_log_that_no_longer_reaches_back_gives_a_fresh_connection(server_factory, mongo, room_id):
    """More missed broadcasts than RECOVERY_MAX_EVENTS: an ordinary connection, never an error;
    the re-sent message (lost ack) implicitly joins the room and is still stored once."""
    small = server_factory(SEND_RATE="0", RECOVERY_MAX_EVENTS="5")
    out = recovery_flow_run(small.url, small.url, room_id)
    assert out["recovered"] is False and out["sameSid"] is False
    assert out["resendAck"]["ok"] is True
    assert [d["message"] for d in stored_messages(mongo, room_id)].count("sent at the blip") == 1
    assert out["bobParticipants"] == []
    assert [summary(entry) for entry in out["after"]][-1] == ("receive_message", "after")
