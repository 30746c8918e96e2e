"""A server whose libraries all moved past what its reaches were checked against still
starts and serves the contract, on the libraries' own paths, and says so once per reach.

The server process gets a `sitecustomize` (on its PYTHONPATH) that rewrites every entry of
`chillout_project.tunings.REACHES` to a version nobody installed, before the application is
built: what an upgrade outside the lock would do to a deployment.
"""

from __future__ import annotations

import httpx
import pytest

from chillout_project.tunings import REACHES
from tests.conftest import PROJECT_ROOT
from tests.ops.test_metrics_logging import samples
from tests.realtime.conftest import SocketClient

SITECUSTOMIZE = f"""
import dataclasses, sys
sys.path.insert(0, {str(PROJECT_ROOT)!r})
from chillout_project import tunings
for name, reach in list(tunings.REACHES.items()):
    tunings.REACHES[name] = dataclasses.replace(reach, checked={{dist: ("0.0.0",) for dist in reach.checked}})
"""


@pytest.fixture(scope="module")
def moved_server(server_factory, tmp_path_factory):
    hook = tmp_path_factory.mktemp("moved-libraries")
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return server_factory(PYTHONPATH=str(hook), METRICS="open")


def test_every_reach_is_off_and_exported_so(moved_server):
    values = samples(httpx.get(f"{moved_server.url}/metrics", timeout=30).text)
    exported = {labels: value for (name, labels), value in values.items() if name == "chillout_library_tuning"}
    assert exported == {
        (("active", "0"), ("kind", reach.kind), ("name", name)): 1.0 for name, reach in REACHES.items()
    }


def test_each_reach_warns_once(moved_server):
    log = moved_server.log_tail(200_000)
    for name, reach in REACHES.items():
        assert log.count(f"library {reach.kind} {name} is off: checked on ") == 1, name


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_room_chats_on_the_libraries_own_paths(moved_server, room_id, transport):
    alice = await SocketClient(moved_server.url, transports=(transport,)).connect()
    bob = await SocketClient(moved_server.url, transports=(transport,)).connect()
    try:
        await alice.join(room_id, "alice")
        await bob.join(room_id, "bob")
        await alice.next_until("online_users", ["alice", "bob"])
        ack = await alice.call("send_message", {"roomId": room_id, "message": "still here"})
        assert ack["ok"] is True
        for member in (alice, bob):
            assert (await member.next("receive_message"))["message"] == "still here"
        assert alice.offsets_of("receive_message") == [None]  # recovery off: no offsets
    finally:
        await alice.disconnect()
        await bob.disconnect()
    room = httpx.get(f"{moved_server.url}/api/room/{room_id}", timeout=30).json()
    assert [m["message"] for m in room["messages"]] == ["still here"]
