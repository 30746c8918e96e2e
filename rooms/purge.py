"""Expiry that leaves nothing behind: expired rooms, and every message and file of a gone room.

The TTL index on `rooms.lastActivity` stays: on real MongoDB it deletes idle rooms on its
own. But a TTL index only removes the room document, never the room's messages or GridFS
files, and the embedded server sweeps only every 60 s. So a purge pass:

1. deletes rooms idle for `ROOM_TTL_SECONDS` that the database has not deleted yet. The
   delete filter repeats `lastActivity < cutoff`, so a room written a moment ago (after it
   was listed) is left alone;
2. finds the orphans: every roomId that has messages or media files but no room
   document (rooms deleted in step 1, by the TTL monitor, or by `delete_room`), and
   deletes their messages and files;
3. deletes uploads that no message claimed within `UPLOAD_ATTACH_SECONDS` of their
   upload, in any room (`voice.media.media_unattached_delete`; conditional per file, so a
   file claimed meanwhile stays). Step 2's `PURGE_GRACE_SECONDS` is about gone rooms
   (a write in flight re-creating its room); this one is about living rooms, whose
   uploads would otherwise stay forever.

Races with writers. Every write touches its room *before* storing into it
(`rooms.services`), so a message under a missing room is either an orphan or a write in
progress that is re-creating its room. Step 2 re-checks that the room is still missing
right before deleting, and deletes only messages and files older than
`PURGE_GRACE_SECONDS`, so that a write caught between its two steps is never taken for an
orphan; its leftovers, if its room really is gone, go in a later pass.

One pass at a time: an asyncio lock in the process, and a lease document in the `locks`
collection across processes (the server's periodic pass and `manage.py purge_expired`).
The lease is taken with `insert_one` / `update_one` on `_id`, never `find_one_and_update`,
which the embedded server runs as a full collection scan.

Media files are reached only through `voice.media` (which roomIds own files, delete a
room's files). All of this uses the async driver: it runs on the server's event loop. The
management command runs it under `asyncio.run()`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from pymongo.errors import DuplicateKeyError

from chillout_project import metrics
from chillout_project.mongo import async_db
from rooms.documents import CREATED_AT, LAST_ACTIVITY, MESSAGES, ROOM_ID, ROOMS
from rooms.services import room_forget
from rooms.wire import utc_now
from voice.media import media_room_delete, media_room_ids, media_unattached_delete

logger = logging.getLogger(__name__)

LEASE_ID = "purge"
BATCH = 500  # roomIds per `$in` query


@dataclass
class PurgeReport:
    """What a pass removed (or, with `dry_run`, would remove)."""

    dry_run: bool
    cutoff: datetime
    rooms: int = 0
    orphan_rooms: int = 0
    messages: int = 0
    files: dict[str, int] = field(default_factory=dict)  # every file removed, unattached uploads included
    unattached_files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def files_total(self) -> int:
        return sum(self.files.values())

    def as_dict(self) -> dict:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


class PurgeBusy(Exception):
    """Another process holds the purge lease."""


_local_lock = asyncio.Lock()


async def room_purge_expired(*, now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """One purge pass under the process lock and the database lease; raises `PurgeBusy`.

    A dry run takes neither: it only reads.
    """
    now = now or utc_now()
    if dry_run:
        return await _purge_pass(now=now, dry_run=True)
    async with _local_lock:
        owner = await lease_acquire(name=LEASE_ID, seconds=settings.PURGE_LEASE_SECONDS)
        if owner is None:
            metrics.purge_observe(outcome="skipped")
            raise PurgeBusy("another purge pass is running")
        try:
            report = await _purge_pass(now=now, dry_run=False)
        except Exception:
            metrics.purge_observe(outcome="error")
            raise
        finally:
            await lease_release(name=LEASE_ID, owner=owner)
    metrics.purge_observe(
        outcome="ok",
        rooms=report.rooms,
        messages=report.messages,
        files=report.files_total,
        size=report.bytes,
        seconds=report.seconds,
    )
    return report


async def room_delete(*, room_id: str) -> PurgeReport | None:
    """Delete one room with all its messages and media; None when there is no such room."""
    db = async_db()
    started = time.perf_counter()
    result = await db[ROOMS].delete_one({ROOM_ID: room_id})
    if result.deleted_count == 0:
        return None
    room_forget(room_id=room_id)
    report = PurgeReport(dry_run=False, cutoff=utc_now(), rooms=1)
    await _room_contents_delete(report, room_id=room_id, older_than=None)
    report.seconds = time.perf_counter() - started
    return report


async def _purge_pass(*, now: datetime, dry_run: bool) -> PurgeReport:
    started = time.perf_counter()
    cutoff = now - timedelta(seconds=settings.ROOM_TTL_SECONDS)
    report = PurgeReport(dry_run=dry_run, cutoff=cutoff)
    db = async_db()

    expired = await db[ROOMS].find({LAST_ACTIVITY: {"$lt": cutoff}}, {"_id": 1, ROOM_ID: 1}).to_list(None)
    gone: set[str] = set()
    for room in expired:
        if dry_run:
            report.rooms += 1
            gone.add(room[ROOM_ID])
            continue
        # The filter repeats the cutoff: a room touched since it was listed stays.
        result = await db[ROOMS].delete_one({"_id": room["_id"], LAST_ACTIVITY: {"$lt": cutoff}})
        report.rooms += result.deleted_count

    grace_cutoff = now - timedelta(seconds=settings.PURGE_GRACE_SECONDS)
    orphans = await _orphan_room_ids(extra_gone=gone)
    report.orphan_rooms = len(orphans)
    for room_id in sorted(orphans):
        if not dry_run and await db[ROOMS].find_one({ROOM_ID: room_id}, {"_id": 1}) is not None:
            continue  # re-created by a write since it was found missing
        await _room_contents_delete(report, room_id=room_id, older_than=grace_cutoff, dry_run=dry_run)

    # Uploads no message claimed in time (contract §2), in rooms that live on: the grace above
    # protects a write in flight; here the sender had UPLOAD_ATTACH_SECONDS to name the file.
    unattached = await media_unattached_delete(
        older_than=now - timedelta(seconds=settings.UPLOAD_ATTACH_SECONDS), dry_run=dry_run
    )
    for part, (files, size) in unattached.items():
        report.files[part] = report.files.get(part, 0) + files
        report.unattached_files += files
        report.bytes += size

    report.seconds = time.perf_counter() - started
    if report.rooms or report.messages or report.files_total:
        logger.info(
            "purge%s: %d rooms, %d messages, %d files (%d bytes) in %.2f s",
            " (dry run)" if dry_run else "",
            report.rooms,
            report.messages,
            report.files_total,
            report.bytes,
            report.seconds,
            extra={"purge": report.as_dict()},
        )
    return report


async def _orphan_room_ids(*, extra_gone: set[str]) -> set[str]:
    """roomIds that own messages or files but have no room document.

    `distinct` on `messages.roomId` (and the media store's equivalent) is answered from
    their indexes on MongoDB. `extra_gone` adds rooms a dry run pretends to have deleted.
    """
    db = async_db()
    owners: set[str] = set(await db[MESSAGES].distinct(ROOM_ID))
    owners.update(await media_room_ids())
    candidates = sorted(owners)
    existing: set[str] = set()
    for start in range(0, len(candidates), BATCH):
        batch = candidates[start : start + BATCH]
        async for room in db[ROOMS].find({ROOM_ID: {"$in": batch}}, {ROOM_ID: 1}):
            existing.add(room[ROOM_ID])
    return (owners - existing) | (extra_gone & owners)


async def _room_contents_delete(
    report: PurgeReport, *, room_id: str, older_than: datetime | None, dry_run: bool = False
) -> None:
    """Delete (or count) a room's messages and media files, optionally only older ones."""
    messages = async_db()[MESSAGES]
    message_filter: dict = {ROOM_ID: room_id}
    if older_than is not None:
        message_filter[CREATED_AT] = {"$lt": older_than}
    if dry_run:
        report.messages += await messages.count_documents(message_filter)
    else:
        report.messages += (await messages.delete_many(message_filter)).deleted_count
    removed = await media_room_delete(room_id=room_id, older_than=older_than, dry_run=dry_run)
    for part, (files, size) in removed.items():
        report.files[part] = report.files.get(part, 0) + files
        report.bytes += size


async def lease_acquire(*, name: str, seconds: float) -> str | None:
    """Take the named lease for `seconds`; returns the owner token, or None if it is held.

    An expired lease (its holder died mid-pass) is taken over by the conditional update.
    """
    locks = async_db().locks
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    now = utc_now()
    lease = {"owner": owner, "acquiredAt": now, "expiresAt": now + timedelta(seconds=seconds)}
    try:
        await locks.insert_one({"_id": name, **lease})
        return owner
    except DuplicateKeyError:
        pass
    result = await locks.update_one({"_id": name, "expiresAt": {"$lt": now}}, {"$set": lease})
    return owner if result.modified_count == 1 else None


async def lease_release(*, name: str, owner: str) -> None:
    await async_db().locks.delete_one({"_id": name, "owner": owner})


async def purge_loop(*, interval: float, turn: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Run a purge pass every `interval` seconds until cancelled; errors are logged, not fatal.

    `turn()`, when given, says whether this process runs this period's pass: with several
    processes (`REDIS_URL`) only the first to ask in each period does, instead of each of
    them running one pass after the other. The lease still guards against overlaps (with
    `manage.py purge_expired`, or a pass longer than the period).
    """
    while True:
        try:
            if turn is None or await turn():
                await room_purge_expired()
        except PurgeBusy:
            logger.debug("purge skipped: another process holds the lease")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("purge pass failed")
        await asyncio.sleep(interval)
