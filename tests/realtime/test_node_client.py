"""The real socket.io-client 4.8 (Node) against the server, websocket-only and polling-only.

`tests/node/client_flow.mjs` runs the web client's flows and prints what it received; this
module checks it. Needs `npm ci --prefix tests/node` first: without it the tests fail (they
do not skip), so a CI that forgot the step is noticed.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "client_flow.mjs"


def node_flow_run(url: str, room_id: str, transport: str) -> dict:
    node = shutil.which("node")
    assert node, "node is not installed; the Node compatibility tests need Node 20+"
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), (
        "tests/node/node_modules is missing: run `npm ci --prefix tests/node` before pytest"
    )
    result = subprocess.run(
        [node, str(SCRIPT), url, room_id, transport], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"node failed ({result.returncode}): {result.stdout}\n{result.stderr}"
    return json.loads(lines[-1])


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_web_client_flows_with_socket_io_client(server, room_id, transport):
    out = node_flow_run(server.url, room_id, transport)
    alice, bob = out["alice"], out["bob"]
    assert out["aliceTransport"] == transport

    assert out["joinAck"] == {"ok": True, "username": "alice"}
    assert out["onlineUsers"] == ["alice", "bob"]

    sent = out["sendAck"]["message"]
    assert out["sendAck"]["ok"] is True
    assert list(sent) == ["username", "message", "type", "url", "_id", "createdAt"]
    assert out["aliceReceived"] == sent == out["bobReceived"]
    assert out["deleteAck"] == {"ok": True}
    assert out["aliceDeleted"] == out["bobDeleted"] == {"messageId": sent["_id"]}

    assert out["aliceJoinCallAck"] == {"ok": True, "iceServers": []}  # no TURN_SECRET, no STUN_URLS
    assert out["aliceParticipants"] == []
    assert out["bobCallNotification"]["callInitiator"] == "alice"
    assert out["bobCallNotification"]["message"] == "alice is in the audio call"
    assert out["bobUserJoined"] == {"socketId": alice, "username": "alice"}
    assert out["bobParticipants"] == [{"socketId": alice, "username": "alice"}]
    assert out["aliceUserJoined"] == {"socketId": bob, "username": "bob"}

    assert out["bobOffer"] == {"from": alice, "offer": {"type": "offer", "sdp": "v=0 alice"}, "username": "alice"}
    assert out["aliceAnswer"] == {"from": bob, "answer": {"type": "answer", "sdp": "v=0 bob"}, "username": "bob"}
    assert out["bobCandidate"] == {"from": alice, "candidate": {"candidate": "candidate:1", "sdpMid": "0"}}

    assert out["leaveCallAck"] == {"ok": True}
    assert out["bobCallEnded"]["message"] == "alice left the audio call"
    assert out["bobUserLeft"] == {"socketId": alice}
