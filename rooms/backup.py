"""Export a room (document, messages, optionally media) to JSON, and import it back exactly.

The format is MongoDB Extended JSON (relaxed mode, `bson.json_util`), so ObjectIds and
dates survive the trip as they were: an import restores the same `_id`s, the same
`createdAt`/`lastActivity`/`uploadDate` values (milliseconds, as MongoDB stores them) and
the same file bytes, split into GridFS chunks of the exported `chunkSize`.

Media go to a directory, written and read back by `voice.media` (with GridFS: one
`<bucket>/<fileId>.bin` (the bytes) and `<bucket>/<fileId>.json` (the files document:
filename, length, chunkSize, uploadDate, metadata) per file); the JSON export lists them
under `media` with their paths relative to that directory.

Import order follows the write rule of `rooms.services`: the room first, then its files,
then its messages, so that a concurrent purge never sees a message without its room, nor
a message whose file is missing. These functions use sync PyMongo: they run in management
commands, never on the server's event loop.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

from bson import ObjectId, json_util
from bson.json_util import JSONOptions
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chillout_project.errors import InvalidInput, NotFound
from chillout_project.mongo import sync_db
from rooms.documents import HISTORY_VERSION, LAST_ACTIVITY, MESSAGES, ROOM_ID, ROOMS
from rooms.purge import room_delete
from rooms.wire import utc_now
from voice.media import media_export_sync, media_import_read_sync, media_import_sync

FORMAT = "chillout.room-export"
VERSION = 1
JSON_OPTIONS = JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True, tzinfo=UTC)


def room_export(*, room_id: str, media_dir: Path | None = None) -> dict:
    """The room, its messages (oldest first) and, with `media_dir`, its files written there."""
    db = sync_db()
    room = db[ROOMS].find_one({ROOM_ID: room_id})
    if room is None:
        raise NotFound(f"room {room_id!r} not found")
    export = {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": utc_now(),
        "room": room,
        "messages": list(db[MESSAGES].find({ROOM_ID: room_id}).sort("_id", ASCENDING)),
    }
    if media_dir is not None:
        export["media"] = media_export_sync(room_id=room_id, media_dir=media_dir, dumps=room_export_dumps)
    return export


def room_export_dumps(data) -> str:
    return json_util.dumps(data, json_options=JSON_OPTIONS, indent=2, ensure_ascii=False)


def room_export_loads(text: str) -> dict:
    try:
        data = json_util.loads(text, json_options=JSON_OPTIONS)
    except ValueError as exc:
        raise InvalidInput(f"not a room export: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"not a room export (expected format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise InvalidInput(f"unsupported export version {data.get('version')!r}")
    return data


def room_import(*, data: dict, media_dir: Path | None = None, replace: bool = False, touch: bool = False) -> dict:
    """Restore an export; returns counts. Refuses a room that exists unless `replace`.

    `touch` sets `lastActivity` to now: an old export restored as it was may already be
    past `ROOM_TTL_SECONDS`, and the next purge (or TTL sweep) would delete it again.

    The restored room gets a new `historyVersion`: a replaced room keeps its old `_id`, and
    the servers' history caches (`rooms.history`) must drop what they held of it.
    """
    db = sync_db()
    room = dict(data["room"])
    room_id = room.get(ROOM_ID)
    if not isinstance(room_id, str) or not room_id:
        raise InvalidInput("the export has no roomId")
    messages = data.get("messages", [])
    media = data.get("media", [])
    if any(m.get(ROOM_ID) != room_id for m in messages):
        raise InvalidInput("the export has messages of another room")
    if media and media_dir is None:
        raise InvalidInput("the export lists media files: pass the directory they were exported to")
    blobs = [(entry, media_import_read_sync(entry=entry, media_dir=media_dir)) for entry in media]

    if db[ROOMS].find_one({ROOM_ID: room_id}, {"_id": 1}) is not None:
        if not replace:
            raise InvalidInput(f"room {room_id!r} already exists (use --replace to overwrite it)")
        asyncio.run(room_delete(room_id=room_id))
    if touch:
        room[LAST_ACTIVITY] = utc_now()
    room[HISTORY_VERSION] = ObjectId()
    try:
        db[ROOMS].insert_one(room)
        for entry, blob in blobs:
            media_import_sync(entry=entry, blob=blob)
        if messages:
            db[MESSAGES].insert_many(messages, ordered=True)
    except (DuplicateKeyError, BulkWriteError) as exc:
        raise InvalidInput(f"an id of the export is already used in this database: {exc}") from None
    return {"roomId": room_id, "messages": len(messages), "files": len(blobs), "bytes": sum(len(b) for _, b in blobs)}
