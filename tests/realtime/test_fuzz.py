"""Every socket event fuzzed with Hypothesis (issue 11, point 9; contract §4 and §6).

For each event, random argument lists go to a real server over a real socket: any JSON
value as the whole payload, objects with the event's keys holding wrong types, operator
objects, strings at and over the limits, awkward Unicode (NUL, bidi marks, lone surrogates),
several arguments, no argument. After every example:

* the ack is well formed: `{"ok": true, ...}` without `error`, or exactly
  `{"ok": false, "error": <non-empty str>}`; a successful send names a stored message;
* a refused event stored nothing: the messages of the rooms it could touch (the one it
  names, and the two rooms of this test) and their GridFS files are unchanged;
* the server logged no traceback, its process is alive (`/api/health` 200) and the same
  socket is still served (`join_room`, `leave_call` and `send_message` acks).

The only disconnect allowed is the server closing a socket whose packet is over
`MAX_PACKET_BYTES` (engine.io's behaviour, contract §6); the client then reconnects. The
socket starts every example in the home room, out of any call (the `leave_call` of the
check), so a refused event that names another room and moves the socket (the contract's
implicit join) has no "left the audio call" notice to store.

The test's server has the rate limits off (they are tested in `test_limits.py`; here they
would refuse the checks) and a small `MAX_PACKET_BYTES`, so an oversized packet is cheap.

`EVENT_FIELDS` is the table to extend: a new event is one line (event → field strategies);
a new optional field (e.g. `clientOffset` on the `send_*` events) is one entry in a row.
Values only known at run time (socket ids, uploaded files, message ids) are `Ref`s,
resolved just before the emit, so Hypothesis can still generate and shrink them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
import pytest
from bson import ObjectId
from hypothesis import example, given, note
from hypothesis import strategies as st

from tests import strategies
from tests.factories import media_files_of_room
from tests.realtime.conftest import WAIT, SocketClient, media_upload
from tests.strategies import fuzz_examples, hostile_values, json_values, weighted
from voice.kinds import KINDS

EXAMPLES_PER_EVENT = 40
MAX_PACKET_CHARS = 300_000  # the fuzz server's MAX_PACKET_BYTES (engine.io compares the text frame's length)
PACKET_OVERHEAD = 16  # "42", the ack id: what the client adds to the JSON array of the event


@dataclass(frozen=True)
class Ref:
    """A value known only at run time, by name (see `World.refs`), put into `template`."""

    name: str
    template: str = "{}"

    def resolve(self, refs: dict[str, str]) -> str:
        return self.template.format(refs[self.name])


def resolve(value, refs: dict[str, str]):
    if isinstance(value, Ref):
        return value.resolve(refs)
    if isinstance(value, dict):
        return {key: resolve(item, refs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(resolve(item, refs) for item in value)
    return value


# Field values: the run-time values weighted up, so that enough events succeed and move state.
room_ids = weighted(
    (3, st.sampled_from([Ref("home"), Ref("other")])),
    (1, st.just(Ref("own_sid"))),  # a room id equal to a socket id is just a room
    (2, strategies.room_ids),
)
usernames = weighted((2, st.sampled_from(["alice", ""])), (3, strategies.usernames))
texts = strategies.message_texts
message_ids = weighted((2, st.sampled_from([Ref("own_message"), Ref("peer_message")])), (1, strategies.message_ids))
socket_ids = weighted((2, st.sampled_from([Ref("peer_sid"), Ref("own_sid")])), (1, strategies.socket_ids))
relay_bodies = strategies.relay_bodies
uploaded = ["voice_url", "image_url", "peer_voice_url", "peer_image_url"]


def media_urls(kind: str) -> st.SearchStrategy:
    """URLs of this test's uploads (of `kind` first), relative or absolute, or anything else."""
    return weighted(
        (2, st.builds(Ref, st.just(f"{kind}_url"), st.sampled_from(["{}", *strategies.ABSOLUTE_URL_TEMPLATES]))),
        (2, st.builds(Ref, st.sampled_from(uploaded), st.sampled_from(["{}", *strategies.URL_TEMPLATES]))),
        (1, strategies.media_urls),
    )


ROOM = {"roomId": room_ids, "username": usernames}
EVENT_FIELDS: dict[str, dict[str, st.SearchStrategy]] = {
    "join_room": ROOM,
    "leave_room": {"roomId": room_ids},
    "send_message": {**ROOM, "message": texts},
    "send_voice_message": {**ROOM, "url": media_urls("voice")},
    "send_image_message": {**ROOM, "url": media_urls("image")},
    "delete_message": {"roomId": room_ids, "messageId": message_ids},
    "join_call": ROOM,
    "leave_call": ROOM,
    "offer": {"to": socket_ids, "offer": relay_bodies, "username": usernames},
    "answer": {"to": socket_ids, "answer": relay_bodies, "username": usernames},
    "ice_candidate": {"to": socket_ids, "candidate": relay_bodies},
}


# Found by this test (lone surrogates reached the BSON encoder: traceback, "internal server error"); kept as
# explicit examples of every event so they are tried whatever the generator draws.
LONE_SURROGATE_EXAMPLES = (
    ({"roomId": Ref("home"), "username": "\udfff", "message": "a\ud800b", "url": "\ud800", "messageId": "\ud800",
      "to": "\ud800", "offer": {}, "answer": {}, "candidate": {}},),
    ({"roomId": "lone \ud800 surrogate", "username": "alice", "message": "hi"},),
)


def arguments(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[tuple]:
    """The argument list of one emit: mostly one object with the event's keys, else anything."""
    plausible = st.fixed_dictionaries(fields)
    mixed = st.fixed_dictionaries(
        {},
        optional={
            **{key: st.one_of(strategy, hostile_values) for key, strategy in fields.items()},
            "__proto__": json_values,
            "$where": st.just("sleep(1000)"),
        },
    )
    oversized = st.fixed_dictionaries(fields).map(lambda payload: {**payload, "pad": "x" * (MAX_PACKET_CHARS + 1)})
    one = weighted((5, plausible), (5, mixed), (2, json_values))
    return weighted(
        (12, one.map(lambda value: (value,))),
        (1, st.just(())),
        (2, st.lists(one, min_size=2, max_size=3).map(tuple)),
        (1, oversized.map(lambda value: (value,))),
    )


def packet_chars(event: str, args: tuple) -> int:
    """The length of the frame python-socketio's client sends (stdlib JSON, ASCII escapes)."""
    return len(json.dumps([event, *args], separators=(",", ":")))


def rooms_named(args: tuple) -> set[str]:
    """Room ids the arguments name that the database could hold (valid UTF-8)."""
    rooms = set()
    for arg in args:
        room = arg.get("roomId") if isinstance(arg, dict) else None
        if isinstance(room, str):
            try:
                room.encode()
            except UnicodeEncodeError:
                continue
            rooms.add(room)
    return rooms


def assert_well_formed(ack) -> None:
    assert isinstance(ack, dict), f"ack is not an object: {ack!r}"
    if ack.get("ok") is True:
        assert "error" not in ack, ack
        return
    assert set(ack) == {"ok", "error"} and ack["ok"] is False, f"malformed ack: {ack!r}"
    assert isinstance(ack["error"], str) and ack["error"].strip(), f"no error text: {ack!r}"


DISCONNECTED = object()


class World:
    """The fuzzed socket (`alice`), a peer in the same room (`bob`), their files and messages."""

    def __init__(self, server, mongo, *, home: str, other: str) -> None:
        self.server = server
        self.mongo = mongo
        self.home = home
        self.other = other
        self.refs: dict[str, str] = {"home": home, "other": other}
        self.http = httpx.AsyncClient(base_url=server.url, timeout=WAIT)
        self.alice: SocketClient | None = None
        self.bob: SocketClient | None = None
        self.gone = asyncio.Event()
        self.log_offset = 0
        self.reconnects = 0

    async def open(self) -> World:
        self.bob = await SocketClient(self.server.url).connect()
        await self.bob.join(self.home, "bob")
        self.refs["peer_sid"] = self.bob.sid
        sent = await self.bob.call("send_message", {"roomId": self.home, "message": "bob's message"})
        self.refs["peer_message"] = sent["message"]["_id"]
        for kind in ("voice", "image"):
            self.refs[f"{kind}_url"] = await media_upload(self.server.url, room_id=self.home, kind=kind,
                                                          username="alice")
            url = await media_upload(self.server.url, room_id=self.home, kind=kind, username="bob")
            sent = await self.bob.call(f"send_{kind}_message", {"roomId": self.home, "username": "bob", "url": url})
            assert sent["ok"] is True, sent
            self.refs[f"peer_{kind}_url"] = url
        await self.connect_alice()
        self.log_offset = self.server.log_path.stat().st_size
        return self

    async def connect_alice(self) -> None:
        self.gone = asyncio.Event()
        self.alice = SocketClient(self.server.url)
        self.alice.sio.on("disconnect", self.on_disconnect)
        await self.alice.connect()
        self.refs["own_sid"] = self.alice.sid
        await self.check_served()

    async def on_disconnect(self, *_reason) -> None:
        self.gone.set()

    async def close(self) -> None:
        for client in (self.alice, self.bob):
            if client is not None:
                await client.disconnect()
        await self.http.aclose()

    def snapshot(self, rooms: set[str]) -> dict:
        query = {"$in": sorted(rooms)}
        stored = {"messages": list(self.mongo.messages.find({"roomId": query}).sort("_id", 1))}
        for kind in KINDS:
            found = [f for room in sorted(rooms) for f in media_files_of_room(self.mongo, kind=kind, room_id=room)]
            stored[kind] = sorted(found, key=lambda f: f["_id"])
        return stored

    async def emit(self, event: str, args: tuple):
        """The ack, or DISCONNECTED if the server closed the socket first."""
        ack = asyncio.ensure_future(self.alice.sio.call(event, args, timeout=WAIT))
        gone = asyncio.ensure_future(self.gone.wait())
        await asyncio.wait({ack, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if ack.done():
            return ack.result()
        ack.cancel()
        return DISCONNECTED

    async def check(self, event: str, generated: tuple) -> None:
        args = resolve(generated, self.refs)
        size = packet_chars(event, args)
        note(f"emit {event} {size} chars: {args!r:.2000}")
        rooms = rooms_named(args) | {self.home, self.other}
        before = self.snapshot(rooms)
        ack = await self.emit(event, args)
        if ack is DISCONNECTED:
            assert size > MAX_PACKET_CHARS - PACKET_OVERHEAD, f"disconnected for a {size}-character packet"
            self.reconnects += 1
            await self.connect_alice()
        else:
            assert size <= MAX_PACKET_CHARS, f"a {size}-character packet was accepted: {ack!r}"
            assert_well_formed(ack)
            if ack["ok"] is False:
                assert self.snapshot(rooms) == before, f"refused ({ack['error']}) but stored something"
            elif event.startswith("send_"):
                assert self.mongo.messages.find_one({"_id": ObjectId(ack["message"]["_id"])}) is not None, ack
        self.assert_no_traceback()
        await self.check_served()

    async def check_served(self) -> None:
        """The process is alive and this socket is served: it joins, leaves any call, sends."""
        assert self.server.process.poll() is None, self.server.log_tail()
        assert (await self.http.get("/api/health")).status_code == 200
        await self.alice.join(self.home, "alice")
        left = await self.alice.call("leave_call", {"roomId": self.home})
        assert left == {"ok": True}, left
        sent = await self.alice.call("send_message", {"roomId": self.home, "message": "still served"})
        assert sent["ok"] is True, sent
        self.refs["own_message"] = sent["message"]["_id"]

    def assert_no_traceback(self) -> None:
        with open(self.server.log_path, "rb") as log:
            log.seek(self.log_offset)
            new = log.read().decode(errors="replace")
            self.log_offset = log.tell()
        assert "Traceback" not in new, new[-4000:]


@pytest.fixture(scope="module")
def fuzz_server(server_factory):
    """A server with the rate limits off and a small packet cap (see the module docstring)."""
    return server_factory(SEND_RATE="0", RELAY_RATE="0", JOIN_RATE="0", MAX_PACKET_BYTES=str(MAX_PACKET_CHARS))


@pytest.mark.parametrize("event", list(EVENT_FIELDS))
def test_any_payload_gets_a_well_formed_ack_and_refusals_store_nothing(event, fuzz_server, mongo, room_id):
    with asyncio.Runner() as runner:
        world = runner.run(World(fuzz_server, mongo, home=room_id, other=f"{room_id}-other").open())
        try:

            @fuzz_examples(EXAMPLES_PER_EVENT)
            @given(args=arguments(EVENT_FIELDS[event]))
            @example(args=LONE_SURROGATE_EXAMPLES[0])
            @example(args=LONE_SURROGATE_EXAMPLES[1])
            def one_emit(args: tuple) -> None:
                runner.run(world.check(event, args))

            one_emit()
        finally:
            runner.run(world.close())
