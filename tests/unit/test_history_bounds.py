"""Bounded history reads: the streamed room JSON is byte for byte the one-piece JSON, and the
history cache holds at most `HISTORY_CACHE_BYTES` of message JSON."""

import asyncio

import orjson
import pytest
from bson import ObjectId
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st

from rooms import history
from rooms.wire import message_part, room_json, room_json_stream
from tests.factories import message_doc, now

BASE = "https://chat.example"
ROOM = {"_id": ObjectId(), "roomId": "r", "lastActivity": now(), "__v": 0}


def docs_of(texts: list[str], media_every: int = 3) -> list[dict]:
    docs = []
    for i, text in enumerate(texts):
        if i % media_every == 1:
            docs.append(message_doc("r", "Image message", type="image", url=f"/api/image/{ObjectId()}"))
        else:
            docs.append(message_doc("r", text))
    return docs


async def streamed(parts: list, chunk_bytes: int) -> list[bytes]:
    async def each():
        for part in parts:
            yield part

    return [piece async for piece in room_json_stream(ROOM, each(), media_base=BASE, chunk_bytes=chunk_bytes)]


@hypothesis_settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(min_size=1, max_size=40), max_size=30), chunk_bytes=st.integers(1, 2000))
def test_streamed_room_json_is_the_same_bytes_in_pieces(texts, chunk_bytes):
    parts = [message_part(doc) for doc in docs_of(texts)]
    pieces = asyncio.run(streamed(parts, chunk_bytes))
    whole = room_json(ROOM, parts, media_base=BASE)
    assert b"".join(pieces) == whole
    assert all(pieces)
    assert list(orjson.loads(whole)) == ["_id", "roomId", "messages", "lastActivity", "__v"]


@pytest.fixture
def cache(settings):
    settings.HISTORY_CACHE_ROOMS = 64
    settings.HISTORY_CACHE_MESSAGES = 2000
    history._entries.clear()
    yield settings
    history._entries.clear()


def entry_of(room_id: str, texts: list[str]) -> history._Entry:
    docs = [message_doc(room_id, text) for text in texts]
    entry = history._Entry(key=(ObjectId(), None), ids=[d["_id"] for d in docs],
                           parts=[message_part(d) for d in docs], complete=True)
    history._entries[room_id] = entry
    return entry


def test_a_room_keeps_its_newest_messages_that_fit_the_byte_bound(cache):
    long = "x" * 1000
    entry = entry_of("big", [f"{i}{long}" for i in range(50)])
    one = history.part_size(entry.parts[0])
    cache.HISTORY_CACHE_BYTES = one * 10 + one // 2
    newest = entry.ids[-10:]

    history._entry_fit(entry)

    assert entry.ids == newest and len(entry.parts) == 10
    assert entry.complete is False
    assert entry.nbytes == sum(history.part_size(p) for p in entry.parts) <= cache.HISTORY_CACHE_BYTES


def test_rooms_least_recently_read_go_first_until_the_cache_fits(cache):
    cache.HISTORY_CACHE_BYTES = 10_000
    for room_id in ("a", "b", "c"):
        entry = entry_of(room_id, ["y" * 300] * 10)  # ~3.5 KB each
        history._entry_fit(entry)
        assert entry.complete is True
    history._entries.move_to_end("a")  # "a" read last: "b" is the least recent
    history._entries_fit(keep="c")
    assert list(history._entries) == ["c", "a"]
    assert history.history_cache_bytes() <= cache.HISTORY_CACHE_BYTES


def test_zero_means_no_byte_bound(cache):
    cache.HISTORY_CACHE_BYTES = 0
    entry = entry_of("any", ["z" * 5000] * 100)
    history._entry_fit(entry)
    history._entries_fit(keep="other")
    assert len(entry.parts) == 100 and entry.complete and "any" in history._entries


def test_notes_of_a_room_nobody_reads_are_bounded(cache):
    cache.HISTORY_CACHE_BYTES = 0
    cache.HISTORY_CACHE_MESSAGES = 5
    entry = entry_of("busy", ["a"])
    for n in range(5):
        history.history_note_stored(doc=message_doc("busy", f"n{n}"))
    assert len(entry.noted) == 5 and entry.noted_new and history._entries["busy"] is entry
    history.history_note_stored(doc=message_doc("busy", "one too many"))
    assert "busy" not in history._entries  # the next read fills it from the database
    history.history_note_stored(doc=message_doc("unread", "no entry"))
    assert "unread" not in history._entries


def test_notes_are_bounded_by_the_rooms_share_of_the_bytes(cache):
    cache.HISTORY_CACHE_BYTES = 64 * 1000
    cache.HISTORY_CACHE_ROOMS = 64  # a share of 1,000 bytes
    entry_of("long", ["a"])
    history.history_note_stored(doc=message_doc("long", "x" * 700))
    assert "long" in history._entries
    history.history_note_stored(doc=message_doc("long", "y" * 700))
    assert "long" not in history._entries


def test_a_failed_insert_makes_the_next_reread_skip_nothing(cache):
    entry = entry_of("r", ["a"])
    history.history_note_failed(room_id="r")
    assert (entry.failures, entry.failures_read) == (1, 0)
    history.history_note_failed(room_id="no entry")  # nothing to mark: its next read fills
    assert "no entry" not in history._entries


def test_notes_behind_the_boundary_are_pruned_with_their_counts(cache):
    entry = entry_of("r", ["a"])
    docs = [message_doc("r", f"n{n}") for n in range(3)]
    for doc in docs:
        history.history_note_stored(doc=doc)
    history.history_note_stored(doc=docs[0])  # noted once
    assert sum(entry.noted_prefixes.values()) == 3
    history._notes_prune(entry, below=docs[2]["_id"])
    assert list(entry.noted) == [docs[2]["_id"]]
    assert entry.noted_prefixes == {docs[2]["_id"].binary[:9]: 1}
    assert entry.noted_bytes == history.part_size(entry.noted[docs[2]["_id"]])


def test_a_room_is_quiet_only_past_the_touch_resolution_and_three_lags(settings):
    from datetime import UTC, datetime

    settings.HISTORY_CACHE_LAG_SECONDS = 10
    settings.ROOM_TOUCH_RESOLUTION_SECONDS = 60
    synced = 1_000_000.0
    at = lambda seconds: datetime.fromtimestamp(seconds, tz=UTC)  # noqa: E731
    assert history.history_quiet(last_activity=at(synced - 90), synced=synced)
    assert not history.history_quiet(last_activity=at(synced - 89), synced=synced)
    naive = at(synced - 90).replace(tzinfo=None)  # as PyMongo returns it without tz_aware
    assert history.history_quiet(last_activity=naive, synced=synced)
    assert not history.history_quiet(last_activity=None, synced=synced)
