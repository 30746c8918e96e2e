"""The reads on a send's path are planned on an index, on the database the server runs on.

A read that scans the collection costs in proportion to every message ever stored: it
passes a short test and makes a long-running server slower by the hour (docs/soak.md).
"""

import json

import pytest

ROOM_READS = {
    # A send repeated with its clientOffset: the original is looked up (rooms.services).
    "client-offset-repeat": {"filter": {"roomId": "r", "username": "alice", "clientOffset": "c-1"}, "limit": 1},
    # A history read: a room's newest messages (rooms.history, rooms.selectors).
    "room-history": {"filter": {"roomId": "r"}, "sort": {"_id": -1}, "limit": 50},
}


@pytest.mark.parametrize("query", ROOM_READS.values(), ids=ROOM_READS.keys())
def test_a_room_read_is_planned_on_an_index(server, mongo, query):
    explained = mongo.command("explain", {"find": "messages", **query})
    plan = json.dumps(explained["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in plan and "COLLSCAN" not in plan, plan
