"""realtime.room_index: the same rooms as python-socketio's own manager after any sequence of
connects, joins, leaves, room closes and disconnects, with disconnects answered from the
index (no scan of every room)."""

import asyncio

import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.room_index import IndexedRoomsManager

NAMESPACES = ["/", "/other"]
SIDS = [f"s{i}" for i in range(5)]
ROOMS = ["room:a", "room:b", "room:c"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("connect"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES)),
        st.tuples(st.just("enter"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES), st.sampled_from(ROOMS)),
        st.tuples(st.just("leave"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES), st.sampled_from(ROOMS)),
        st.tuples(st.just("close"), st.sampled_from(NAMESPACES), st.sampled_from(ROOMS)),
        st.tuples(st.just("disconnect"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES)),
        st.tuples(st.just("callback"), st.sampled_from(SIDS)),
    ),
    max_size=60,
)


class FakeServer:
    """What the manager asks of its server: new ids, and the packet class's JSON module."""

    class packet_class:  # noqa: N801
        json = None

    def __init__(self):
        self.ids = iter(f"id{i}" for i in range(10_000))
        self.eio = self

    def generate_id(self):
        return next(self.ids)


def new_manager(cls):
    manager = cls()
    manager.set_server(FakeServer())
    manager.initialize()
    return manager


async def apply(manager, ops) -> dict:
    """Run `ops`; the sids each (namespace, eio sid) got are keyed by eio sid so both
    managers' generated ids line up."""
    sids: dict[tuple[str, str], str] = {}
    outcomes = []
    for op in ops:
        try:
            if op[0] == "connect":
                _, eio_sid, ns = op
                sid = await manager.pre_connect(eio_sid, ns)  # as the server does: then connect
                if sid is not None:
                    await manager.connect(sid, ns)
                    sids[(ns, eio_sid)] = sid
            elif op[0] == "enter" and (op[2], op[1]) in sids:
                await manager.enter_room(sids[(op[2], op[1])], op[2], op[3])
            elif op[0] == "leave" and (op[2], op[1]) in sids:
                await manager.leave_room(sids[(op[2], op[1])], op[2], op[3])
            elif op[0] == "close":
                await manager.close_room(op[2], op[1])
            elif op[0] == "disconnect" and (op[2], op[1]) in sids:
                await manager.disconnect(sids.pop((op[2], op[1])), op[2])
            elif op[0] == "callback" and ("/", op[1]) in sids:
                manager._generate_ack_id(sids[("/", op[1])], lambda *args: None)
            outcomes.append("ok")
        except (ValueError, KeyError) as exc:
            outcomes.append(type(exc).__name__)
    return {
        "outcomes": outcomes,
        "rooms": {ns: {room: dict(members) for room, members in rooms.items()} for ns, rooms in manager.rooms.items()},
        "rooms_of": {key: sorted(manager.get_rooms(sid, key[0]), key=str) for key, sid in sids.items()},
        "callbacks": sorted(manager.callbacks),
        "pending": (manager.pending_connect, manager.pending_disconnect),
    }


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_indexed_manager_holds_what_python_socketio_holds(ops):
    library = asyncio.run(apply(new_manager(socketio.AsyncManager), ops))
    indexed = asyncio.run(apply(new_manager(IndexedRoomsManager), ops))
    assert indexed == library


def test_a_disconnect_leaves_exactly_the_sockets_rooms_without_scanning_the_others():
    manager = new_manager(IndexedRoomsManager)

    async def scenario():
        sids = [await manager.pre_connect(f"e{i}", "/") for i in range(1000)]
        for sid in sids:
            await manager.connect(sid, "/")
        for i, sid in enumerate(sids):
            await manager.enter_room(sid, "/", f"room:{i % 10}")
        manager.rooms["/"] = ScanForbidden(manager.rooms["/"])
        await manager.disconnect(sids[3], "/")
        return sids

    sids = asyncio.run(scenario())
    assert manager.get_rooms(sids[3], "/") == []
    assert sids[3] not in manager.rooms["/"]["room:3"] and sids[13] in manager.rooms["/"]["room:3"]


class ScanForbidden(dict):
    """A namespace's rooms that fail the test if anyone walks or copies all of them."""

    def items(self):
        raise AssertionError("every room scanned")

    def copy(self):
        raise AssertionError("every room copied")
