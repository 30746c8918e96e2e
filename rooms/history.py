"""A per-process cache of each busy room's recent history, checked against the database on every read.

Only a cache: `rooms.selectors.room_history_get` asks it first (`history_cached`) and reads
the database itself when it cannot answer; `rooms.wire` builds the parts it holds.

Why. `GET /api/room/<id>` returns the whole history; reading 1,000 message documents costs
the embedded server ~50 ms of CPU per request, and `limit=50` on it fetches every message of
the room before sorting (the embedded server does not bound sort+limit by the index). A
range-bounded query (`{roomId, _id: {$gte: X}}`) stays cheap at any history size, so a
cache that only has to fetch what is new keeps both reads flat.

What stays correct, across processes:

* New messages: every read re-fetches the room's messages whose `_id` is at or after
  `synced - HISTORY_CACHE_LAG_SECONDS`, where `synced` is when the previous read queried.
  ObjectIds from different processes are not ordered within a second, and an insert
  becomes visible a little after its `_id` is made; the lag covers both, provided no
  insert is acknowledged more than the lag after its `_id` was made (and clocks agree
  within it). As a backstop an entry is re-read whole after `HISTORY_CACHE_MAX_AGE_SECONDS`.
* Deletes and replacements: `rooms.services.message_delete` gives the room a new `historyVersion` after
  deleting, and every write that is not a coalesced message touch moves `lastActivity`
  (a delete, an import that restores a room under its old `_id`). The room document is
  read on every request: a new `_id` or `historyVersion` drops the entry, a new
  `lastActivity` re-reads what it holds (the whole room, or for a room larger than the
  cache, every message from the oldest one held), so a delete anywhere is seen by the
  next read everywhere.

What it holds: per message, its JSON bytes (or, for a media message, its wire dict: the
absolute URL depends on the request). At most `HISTORY_CACHE_MESSAGES` newest messages of
at most `HISTORY_CACHE_ROOMS` rooms (least recently read first out), and at most
`HISTORY_CACHE_BYTES` of message JSON in all: messages are up to 5,000 characters (20 KB of
UTF-8), so a count alone would let 64 rooms × 2,000 long messages hold gigabytes. A room
whose newest messages pass the byte bound keeps those that fit; other rooms are dropped,
least recently read first, until the total fits. A room with more messages than it keeps
serves pages (`limit`, `before`) inside them from the cache, and its full history from the
database (streamed: `rooms.selectors.room_history_stream`). `HISTORY_CACHE_ROOMS=0` turns it off.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from bson import ObjectId
from django.conf import settings
from pymongo import DESCENDING

from chillout_project.mongo import async_db
from rooms.documents import HISTORY_VERSION, LAST_ACTIVITY, MESSAGES, ROOM_ID
from rooms.wire import Part, message_part


@dataclass
class _Entry:
    key: tuple  # the room document's _id and historyVersion
    last_activity: object = None  # the room's lastActivity when the entry was last re-read
    ids: list[ObjectId] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    complete: bool = False  # holds every message of the room
    nbytes: int = 0  # JSON bytes of the parts held (`part_size`)
    synced: float = 0.0  # wall-clock time the last read's query was sent
    filled: float = 0.0  # monotonic time of the last whole read
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_entries: OrderedDict[str, _Entry] = OrderedDict()


async def history_cached(*, room: dict, limit: int | None = None, before: ObjectId | None = None) -> list[Part] | None:
    """A room's messages oldest first (all, or the newest `limit` older than `before`) from
    the cache; None when the cache cannot answer (off, or beyond what it holds)."""
    if settings.HISTORY_CACHE_ROOMS <= 0 or (limit is None and before is None and _known_partial(room)):
        return None
    entry = await _entry_current(room=room)
    if before is not None:
        end = bisect_left(entry.ids, before)
        count = limit if limit is not None else end
        if end >= count or entry.complete:
            return entry.parts[max(0, end - count) : end]
        return None
    if limit is not None and (entry.complete or len(entry.parts) >= limit):
        return entry.parts[-limit:]
    if entry.complete:
        return list(entry.parts)
    return None


def _known_partial(room: dict) -> bool:
    """The room is known to be larger than the cache: its full history comes from the database
    anyway, so maintaining the entry on that read would be a second read for nothing."""
    entry = _entries.get(room[ROOM_ID])
    return entry is not None and not entry.complete and entry.key == (room["_id"], room.get(HISTORY_VERSION))


async def _entry_current(*, room: dict) -> _Entry:
    room_id = room[ROOM_ID]
    key = (room["_id"], room.get(HISTORY_VERSION))
    entry = _entries.get(room_id)
    if entry is None or entry.key != key:
        entry = _Entry(key=key)
        _entries[room_id] = entry
    _entries.move_to_end(room_id)
    while len(_entries) > settings.HISTORY_CACHE_ROOMS:
        _entries.popitem(last=False)
    async with entry.lock:
        fresh = entry.filled and time.monotonic() - entry.filled < settings.HISTORY_CACHE_MAX_AGE_SECONDS
        if fresh and entry.last_activity == room[LAST_ACTIVITY]:
            await _entry_refresh(entry, room_id=room_id)
        elif entry.filled and not entry.complete:
            await _entry_reread(entry, room_id=room_id)
        else:
            await _entry_fill(entry, room_id=room_id)
        entry.last_activity = room[LAST_ACTIVITY]
        _entry_fit(entry)
    _entries_fit(keep=room_id)
    return entry


def part_size(part: Part) -> int:
    """The JSON bytes a part stands for (a media part's URL grows by the media base only)."""
    return len(part) if isinstance(part, bytes) else len(orjson.dumps(part))


def _entry_fit(entry: _Entry) -> None:
    """Keep the newest parts whose JSON fits `HISTORY_CACHE_BYTES` (0: no byte bound)."""
    cap = settings.HISTORY_CACHE_BYTES
    sizes = [part_size(part) for part in entry.parts]
    total = sum(sizes)
    if cap > 0 and total > cap:
        cut = 0
        while total > cap:
            total -= sizes[cut]
            cut += 1
        entry.ids, entry.parts, entry.complete = entry.ids[cut:], entry.parts[cut:], False
    entry.nbytes = total


def _entries_fit(*, keep: str) -> None:
    """Drop the least recently read rooms (never `keep`) while the cache holds more than
    `HISTORY_CACHE_BYTES`."""
    cap = settings.HISTORY_CACHE_BYTES
    if cap <= 0:
        return
    total = sum(entry.nbytes for entry in _entries.values())
    for room_id in list(_entries):
        if total <= cap:
            break
        if room_id != keep:
            total -= _entries.pop(room_id).nbytes


async def _entry_fill(entry: _Entry, *, room_id: str) -> None:
    """Read the room's newest `HISTORY_CACHE_MESSAGES` (+1, to know whether that is all)."""
    cap = settings.HISTORY_CACHE_MESSAGES
    synced = time.time()
    docs = await async_db()[MESSAGES].find({ROOM_ID: room_id}).sort("_id", DESCENDING).limit(cap + 1).to_list(None)
    docs.reverse()
    entry.complete = len(docs) <= cap
    docs = docs[-cap:] if cap else []
    entry.ids = [doc["_id"] for doc in docs]
    entry.parts = [message_part(doc) for doc in docs]
    entry.synced, entry.filled = synced, time.monotonic()


async def _entry_reread(entry: _Entry, *, room_id: str) -> None:
    """Re-read a partial entry from its oldest message on: a range read, flat in history size."""
    synced = time.time()
    docs = await _newest(
        room_id=room_id, since=entry.ids[0] if entry.ids else None, count=settings.HISTORY_CACHE_MESSAGES
    )
    entry.ids = [doc["_id"] for doc in docs]
    entry.parts = [message_part(doc) for doc in docs]
    entry.synced, entry.filled = synced, time.monotonic()


async def _entry_refresh(entry: _Entry, *, room_id: str) -> None:
    """Re-read the messages of the last lag window and splice them over the cached ones."""
    synced = time.time()
    boundary = ObjectId.from_datetime(
        datetime.fromtimestamp(entry.synced - settings.HISTORY_CACHE_LAG_SECONDS, tz=UTC)
    )
    cap = settings.HISTORY_CACHE_MESSAGES
    docs = await _newest(room_id=room_id, since=boundary, count=cap + 1)
    if len(docs) > cap:  # more new messages than the entry holds: they replace all of it
        entry.ids, entry.parts, entry.complete = [d["_id"] for d in docs[1:]], [message_part(d) for d in docs[1:]], False
    else:
        entry.ids, entry.parts, dropped = history_splice(
            ids=entry.ids, parts=entry.parts, docs=docs, boundary=boundary, cap=cap
        )
        entry.complete = entry.complete and not dropped
    entry.synced = synced


async def _newest(*, room_id: str, since: ObjectId | None, count: int) -> list[dict]:
    """At most the newest `count` messages from `since` on, oldest first: a read's memory is
    bounded by the cache's size, however many messages arrived (another process may have
    stored thousands since the entry's last read)."""
    query: dict = {ROOM_ID: room_id}
    if since is not None:
        query["_id"] = {"$gte": since}
    docs = await async_db()[MESSAGES].find(query).sort("_id", DESCENDING).limit(count).to_list(None)
    docs.reverse()
    return docs


def history_splice(
    *, ids: list[ObjectId], parts: list[Part], docs: list[dict], boundary: ObjectId, cap: int
) -> tuple[list[ObjectId], list[Part], bool]:
    """Replace the held messages from `boundary` on by `docs` (the re-read of that window,
    oldest first; one already held keeps its part), then keep the newest `cap`.

    Returns the new ids, parts, and whether older messages were dropped to fit `cap`.
    """
    cut = bisect_left(ids, boundary)
    known = dict(zip(ids[cut:], parts[cut:]))
    new_ids = ids[:cut] + [doc["_id"] for doc in docs]
    new_parts = parts[:cut] + [known.get(doc["_id"]) or message_part(doc) for doc in docs]
    overflow = len(new_ids) - cap
    if overflow > 0:
        return new_ids[overflow:], new_parts[overflow:], True
    return new_ids, new_parts, False


def history_cache_bytes() -> int:
    """JSON bytes the cache holds now (all rooms)."""
    return sum(entry.nbytes for entry in _entries.values())


def history_forget(*, room_id: str) -> None:
    """Drop this process's entry of the room (the writer's own invalidation; other processes
    see the new `historyVersion` or `lastActivity`)."""
    _entries.pop(room_id, None)
