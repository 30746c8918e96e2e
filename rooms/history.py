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
* This process's own messages (`history_note_stored`, called by `rooms.services` once an
  insert is acknowledged) are not re-read. A message `_id` starts with its second and the
  making process's 5 random bytes, so every id of one (second, process) pair lies in one
  `_id` range that no other process's id can fall in. When this process noted at least
  `OWN_SPAN_MIN` messages of a second in the window, the re-read skips that range: it asks
  only for the gaps around those ranges (a few range reads, each flat) and takes the
  skipped messages from its notes and from what it held. That is exact as long as every
  message of the room in a skipped range is noted or held: every insert of a message goes
  through `rooms.services`, which notes it on success; a message whose insert failed (it
  may still have landed: a lost acknowledgement, a write-concern error) marks the room
  (`history_note_failed`), and the next re-read skips nothing. Notes wait in their entry
  until a re-read has merged them and they fall behind the next boundary; an entry whose
  notes pass `HISTORY_CACHE_MESSAGES` or its share of `HISTORY_CACHE_BYTES` before the
  next read is dropped (the next read fills it again).
* Quiet rooms: every process moves a room's `lastActivity` before it stores a message,
  unless it moved it less than `touch_resolution()` ago (`rooms.services`), and the moved
  value is about the message's `_id` time (within the lag). So when the room document's
  `lastActivity` is unchanged since the entry's last read and older than that read by more
  than the resolution plus three lags (write delay, clock skew, the window itself), no
  process can have stored a message the entry has not seen: the read skips the re-read
  and only merges this process's notes. A room written to keeps being re-read.
* Deletes, edits and replacements: every write that changes a room's stored history other
  than by adding a message gives the room a new `historyVersion` (`rooms.services`' delete
  and edit, after writing; `rooms.backup.room_import`, which may restore a room under its
  old `_id`), and a purged room comes back with a new `_id`. The room document is read on
  every request: a new `_id` or `historyVersion` drops the entry, so a delete anywhere is
  seen by the next read everywhere. A moved `lastActivity` alone means new messages (or an
  upload): the lag window re-read finds them, as in any room that is not quiet. (Until
  2026-12-07 a moved `lastActivity` re-read everything the entry held: in an active room,
  2,000 messages a minute per process, which on the embedded database held its lock for
  ~100 ms each time; docs/soak.md.)

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
from rooms.documents import HISTORY_VERSION, LAST_ACTIVITY, MESSAGES, ROOM_ID, touch_resolution
from rooms.wire import Part, message_part_kept


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
    noted: dict[ObjectId, Part] = field(default_factory=dict)  # this process's messages, not yet merged for good
    noted_bytes: int = 0
    noted_prefixes: dict[bytes, int] = field(default_factory=dict)  # notes per (second, process) `_id` prefix
    noted_new: bool = False  # notes arrived since the last merge
    failures: int = 0  # inserts of this process into the room that failed (`history_note_failed`)
    failures_read: int = 0  # of those, the ones a read that skipped nothing has covered
    prefetch: asyncio.Future | None = None  # a lag re-read started before the room document came


_entries: OrderedDict[str, _Entry] = OrderedDict()

# A (second, process) `_id` range is skipped by the re-read when this process noted at least
# this many messages in it: below that, reading them along costs less than one more query.
OWN_SPAN_MIN = 16
PREFIX = 9  # bytes of an ObjectId that name its second and its process


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
        # Set before the refresh: a room whose lastActivity moved is not quiet, so its lag
        # window is read (the move means new messages; any other change has a new key).
        entry.last_activity = room[LAST_ACTIVITY]
        changed = True
        if fresh:
            changed = await _entry_refresh(entry, room_id=room_id)
        else:
            entry.prefetch = None  # the entry is old: read again, not refreshed
            if entry.filled and not entry.complete:
                await _entry_reread(entry, room_id=room_id)
            else:
                await _entry_fill(entry, room_id=room_id)
        if changed:
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
    synced, failures = time.time(), entry.failures
    docs = await async_db()[MESSAGES].find({ROOM_ID: room_id}).sort("_id", DESCENDING).limit(cap + 1).to_list(None)
    docs.reverse()
    entry.complete = len(docs) <= cap
    docs = docs[-cap:] if cap else []
    entry.ids = [doc["_id"] for doc in docs]
    entry.parts = [message_part_kept(doc) for doc in docs]
    entry.synced, entry.filled, entry.failures_read = synced, time.monotonic(), failures


async def _entry_reread(entry: _Entry, *, room_id: str) -> None:
    """Re-read a partial entry from its oldest message on: a range read, flat in history size."""
    synced, failures = time.time(), entry.failures
    docs = await _newest(
        room_id=room_id, since=entry.ids[0] if entry.ids else None, count=settings.HISTORY_CACHE_MESSAGES
    )
    entry.ids = [doc["_id"] for doc in docs]
    entry.parts = [message_part_kept(doc) for doc in docs]
    entry.synced, entry.filled, entry.failures_read = synced, time.monotonic(), failures


@dataclass
class _Window:
    """One lag re-read: what it asked and what it got."""

    base: float  # the entry's `synced` it started from
    synced: float  # wall-clock time its queries were sent
    boundary: ObjectId
    skipped: frozenset[bytes]
    failures: int  # the entry's failed inserts when it started (all covered if nothing is skipped)
    reads: list[list[dict]]


async def _window_read(entry: _Entry, *, room_id: str) -> _Window:
    """Read the last lag window of the entry, but the ranges of this process's own noted messages."""
    synced, base = time.time(), entry.synced  # as the entry was when the queries went out
    boundary = _boundary(base)
    failures = entry.failures
    skippable = failures == entry.failures_read
    skipped = own_spans(prefixes=entry.noted_prefixes, boundary=boundary) if skippable else frozenset()
    count = settings.HISTORY_CACHE_MESSAGES + 1
    reads = await asyncio.gather(
        *(_newest(room_id=room_id, since=lo, until=hi, count=count) for lo, hi in history_gaps(boundary=boundary, skipped=skipped))
    )
    return _Window(base=base, synced=synced, boundary=boundary, skipped=skipped, failures=failures, reads=list(reads))


def history_prefetch(*, room_id: str, full: bool) -> None:
    """Start the lag re-read of the room's cache entry now, before the caller reads the room
    document, so that the request's two database round trips overlap.

    The room document decides whether the entry is still valid: if not (or another read
    refreshed the entry meanwhile), the re-read is dropped unused. Nothing is started for a
    room this process has no current entry of, nor for a full read of a room larger than the
    cache (that comes from the database)."""
    if settings.HISTORY_CACHE_ROOMS <= 0:
        return
    entry = _entries.get(room_id)
    if entry is None or not entry.filled or entry.prefetch is not None or entry.lock.locked():
        return
    if (full and not entry.complete) or time.monotonic() - entry.filled >= settings.HISTORY_CACHE_MAX_AGE_SECONDS:
        return
    if _entry_quiet(entry):
        return  # its next read reads nothing, unless the room moved on (then it reads anyway)
    entry.prefetch = asyncio.ensure_future(_window_read(entry, room_id=room_id))
    entry.prefetch.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future) -> None:
    """A dropped prefetch's error is nobody's: the read that needs the window reads it again."""
    if not task.cancelled():
        task.exception()


async def _prefetched(entry: _Entry) -> _Window | None:
    """The entry's prefetched window if it still starts where the entry is, else None."""
    task, entry.prefetch = entry.prefetch, None
    if task is None:
        return None
    try:
        window = await task
    except Exception:
        return None
    return window if window.base == entry.synced else None


async def _entry_refresh(entry: _Entry, *, room_id: str) -> bool:
    """Re-read the messages of the last lag window (but the ranges of this process's own,
    noted ones, and nothing at all for a quiet room) and merge them with the cached ones and
    the notes; True if that changed them."""
    if _entry_quiet(entry):
        entry.prefetch = None
        return _notes_merge(entry)
    window = await _prefetched(entry) or await _window_read(entry, room_id=room_id)
    return _window_merge(entry, window)


def _entry_quiet(entry: _Entry) -> bool:
    return entry.failures == entry.failures_read and history_quiet(last_activity=entry.last_activity, synced=entry.synced)


def history_quiet(*, last_activity, synced: float) -> bool:
    """No process can have stored a message since a read at `synced` (wall-clock seconds)
    that saw `last_activity`, as long as `lastActivity` is still that (module docstring)."""
    if last_activity is None:
        return False
    stamp = (last_activity if last_activity.tzinfo else last_activity.replace(tzinfo=UTC)).timestamp()
    return stamp <= synced - touch_resolution() - 3 * settings.HISTORY_CACHE_LAG_SECONDS


def _notes_merge(entry: _Entry) -> bool:
    """Put this process's new notes in place (nothing else can have arrived)."""
    if not entry.noted_new:
        return False
    entry.noted_new = False
    everything = ObjectId(b"\xff" * 12)  # every note lands in place, as held or new
    entry.ids, entry.parts, dropped = history_merge(
        ids=entry.ids, parts=entry.parts, docs=[], boundary=everything, cap=settings.HISTORY_CACHE_MESSAGES, noted=entry.noted
    )
    entry.complete = entry.complete and not dropped
    return True


def _window_merge(entry: _Entry, window: _Window) -> bool:
    cap, boundary, skipped, reads = settings.HISTORY_CACHE_MESSAGES, window.boundary, window.skipped, window.reads
    if not skipped:
        entry.failures_read = max(entry.failures_read, window.failures)
    floor = None  # with more new messages in a gap than the entry holds, nothing older is certain
    for read in reads:
        if len(read) > cap:
            del read[0]
            floor = read[0]["_id"] if floor is None else max(floor, read[0]["_id"])
    docs = [doc for read in reads for doc in read]
    changed = floor is not None or entry.noted_new or docs_new(ids=entry.ids, docs=docs)
    if changed:
        entry.noted_new = False
        entry.ids, entry.parts, dropped = history_merge(
            ids=entry.ids, parts=entry.parts, docs=docs, boundary=boundary, cap=cap, skipped=skipped, noted=entry.noted
        )
        if floor is not None:
            cut = bisect_left(entry.ids, floor)
            entry.ids, entry.parts, dropped = entry.ids[cut:], entry.parts[cut:], True
        entry.complete = entry.complete and not dropped
    entry.synced = window.synced
    _notes_prune(entry, below=_boundary(window.synced))
    return changed


def _boundary(at: float) -> ObjectId:
    return ObjectId.from_datetime(datetime.fromtimestamp(at - settings.HISTORY_CACHE_LAG_SECONDS, tz=UTC))


def own_spans(*, prefixes: dict[bytes, int], boundary: ObjectId) -> frozenset[bytes]:
    """The (second, process) `_id` prefixes from `boundary` on noted at least `OWN_SPAN_MIN` times."""
    floor = boundary.binary[:PREFIX]
    return frozenset(prefix for prefix, count in prefixes.items() if count >= OWN_SPAN_MIN and prefix >= floor)


def history_gaps(*, boundary: ObjectId, skipped: frozenset[bytes]) -> list[tuple[ObjectId, ObjectId | None]]:
    """The `_id` ranges `[lo, hi)` from `boundary` on (the last one open) around the skipped prefixes."""
    gaps, lo = [], boundary
    for prefix in sorted(skipped):
        start = ObjectId(prefix + bytes(12 - PREFIX))
        end = (int.from_bytes(prefix, "big") + 1).to_bytes(PREFIX, "big") + bytes(12 - PREFIX)
        if start > lo:
            gaps.append((lo, start))
        lo = max(lo, ObjectId(end))
    gaps.append((lo, None))
    return gaps


def docs_new(*, ids: list[ObjectId], docs: list[dict]) -> bool:
    """Some of `docs` is not among the held `ids` (sorted)."""
    for doc in docs:
        at = bisect_left(ids, doc["_id"])
        if at == len(ids) or ids[at] != doc["_id"]:
            return True
    return False


def _notes_prune(entry: _Entry, *, below: ObjectId) -> None:
    """Forget the notes a re-read merged that the next re-read's window no longer reaches.

    Notes come in about `_id` order (the order of their acknowledgements), so the oldest
    are at the front; one out of order stays until the front passes it (merged already,
    it is only kept a little longer)."""
    while entry.noted:
        oid = next(iter(entry.noted))
        if oid >= below:
            break
        _note_drop(entry, oid)


def _note_drop(entry: _Entry, oid: ObjectId) -> None:
    entry.noted_bytes -= part_size(entry.noted.pop(oid))
    prefix = oid.binary[:PREFIX]
    left = entry.noted_prefixes[prefix] - 1
    if left:
        entry.noted_prefixes[prefix] = left
    else:
        del entry.noted_prefixes[prefix]


async def _newest(*, room_id: str, since: ObjectId | None, count: int, until: ObjectId | None = None) -> list[dict]:
    """At most the newest `count` messages from `since` on (before `until`), oldest first: a
    read's memory is bounded by the cache's size, however many messages arrived (another
    process may have stored thousands since the entry's last read)."""
    query: dict = {ROOM_ID: room_id}
    if since is not None:
        query["_id"] = {"$gte": since}
    if until is not None:
        query.setdefault("_id", {})["$lt"] = until
    docs = await async_db()[MESSAGES].find(query).sort("_id", DESCENDING).limit(count).to_list(None)
    docs.reverse()
    return docs


def history_merge(
    *,
    ids: list[ObjectId],
    parts: list[Part],
    docs: list[dict],
    boundary: ObjectId,
    cap: int,
    skipped: frozenset[bytes] = frozenset(),
    noted: dict[ObjectId, Part] | None = None,
) -> tuple[list[ObjectId], list[Part], bool]:
    """Replace the held messages from `boundary` on by the re-read of that window: `docs`
    (oldest first; one already held keeps its part), the held ones whose prefix the re-read
    `skipped`, and this process's `noted` ones; then keep the newest `cap`.

    Returns the new ids, parts, and whether older messages were dropped to fit `cap`.
    """
    cut = bisect_left(ids, boundary)
    head_ids, head_parts = ids[:cut], parts[:cut]
    known = dict(zip(ids[cut:], parts[cut:]))
    window = {oid: part for oid, part in known.items() if oid.binary[:PREFIX] in skipped}
    for doc in docs:
        window[doc["_id"]] = known.get(doc["_id"]) or message_part_kept(doc)
    for oid, part in (noted or {}).items():
        if oid >= boundary:
            window[oid] = part
        else:  # noted later than the lag allows for: in its place, unless held
            at = bisect_left(head_ids, oid)
            if at == len(head_ids) or head_ids[at] != oid:
                head_ids.insert(at, oid)
                head_parts.insert(at, part)
    tail = sorted(window.items(), key=lambda item: item[0].binary)
    new_ids = head_ids + [oid for oid, _ in tail]
    new_parts = head_parts + [part for _, part in tail]
    overflow = len(new_ids) - cap
    if overflow > 0:
        return new_ids[overflow:], new_parts[overflow:], True
    return new_ids, new_parts, False


def history_splice(
    *, ids: list[ObjectId], parts: list[Part], docs: list[dict], boundary: ObjectId, cap: int
) -> tuple[list[ObjectId], list[Part], bool]:
    """`history_merge` of a whole re-read of the window (nothing skipped, nothing noted)."""
    return history_merge(ids=ids, parts=parts, docs=docs, boundary=boundary, cap=cap)


def history_note_stored(*, doc: dict) -> None:
    """This process stored `doc` (acknowledged): its room's entry takes it at the next read
    without reading it back. Bounded: an entry whose notes outgrow `HISTORY_CACHE_MESSAGES`
    or its share of `HISTORY_CACHE_BYTES` is dropped."""
    room_id = doc[ROOM_ID]
    entry = _entries.get(room_id)
    if entry is None:
        return  # nobody read the room lately: its next read fills an entry from the database
    part, oid = message_part_kept(doc), doc["_id"]
    if oid in entry.noted:
        return
    entry.noted[oid] = part
    entry.noted_bytes += part_size(part)
    prefix = oid.binary[:PREFIX]
    entry.noted_prefixes[prefix] = entry.noted_prefixes.get(prefix, 0) + 1
    entry.noted_new = True
    cap_bytes = settings.HISTORY_CACHE_BYTES
    share = cap_bytes // max(1, settings.HISTORY_CACHE_ROOMS) if cap_bytes > 0 else None
    if len(entry.noted) > settings.HISTORY_CACHE_MESSAGES or (share is not None and entry.noted_bytes > share):
        _entries.pop(room_id, None)


def history_note_failed(*, room_id: str) -> None:
    """An insert of this process into `room_id` failed: its message may have landed all the
    same, so the next re-read of the room skips no range (without an entry, the next read
    fills one from the database anyway)."""
    entry = _entries.get(room_id)
    if entry is not None:
        entry.failures += 1


def history_cache_bytes() -> int:
    """JSON bytes the cache holds now (all rooms)."""
    return sum(entry.nbytes for entry in _entries.values())


def history_forget(*, room_id: str) -> None:
    """Drop this process's entry of the room (the writer's own invalidation; other processes
    see the new `historyVersion` or `lastActivity`)."""
    _entries.pop(room_id, None)
