"""Export a room (document, messages, optionally media) to JSON, and import it back exactly.

The format is MongoDB Extended JSON (relaxed mode, `bson.json_util`), so ObjectIds and
dates survive the trip as they were: an import restores the same `_id`s, the same
`createdAt`/`lastActivity`/`uploadDate` values (milliseconds, as MongoDB stores them) and
the same file bytes, split into GridFS chunks of the exported `chunkSize`.

Media go to a directory, one `<bucket>/<fileId>.bin` (the bytes) and `<bucket>/<fileId>.json`
(the GridFS files document: filename, length, chunkSize, uploadDate, metadata) per file;
the JSON export lists them under `media` with their paths relative to that directory.

Import order follows the write rule of `rooms.services`: the room first, then its files,
then its messages, so that a concurrent purge never sees a message without its room, nor
a message whose file is missing. These functions use sync PyMongo: they run in management
commands, never on the server's event loop.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

from bson import Binary, json_util
from bson.json_util import JSONOptions
from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from chillout_project.errors import InvalidInput, NotFound
from chillout_project.mongo import sync_db
from rooms.purge import room_delete
from rooms.wire import utc_now
from voice.kinds import KINDS

FORMAT = "chillout.room-export"
VERSION = 1
JSON_OPTIONS = JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True, tzinfo=UTC)


def room_export(*, room_id: str, media_dir: Path | None = None) -> dict:
    """The room, its messages (oldest first) and, with `media_dir`, its files written there."""
    db = sync_db()
    room = db.rooms.find_one({"roomId": room_id})
    if room is None:
        raise NotFound(f"room {room_id!r} not found")
    export = {
        "format": FORMAT,
        "version": VERSION,
        "exportedAt": utc_now(),
        "room": room,
        "messages": list(db.messages.find({"roomId": room_id}).sort("_id", ASCENDING)),
    }
    if media_dir is not None:
        export["media"] = _media_export(room_id=room_id, media_dir=media_dir)
    return export


def _media_export(*, room_id: str, media_dir: Path) -> list[dict]:
    db = sync_db()
    entries = []
    for kind in KINDS.values():
        folder = media_dir / kind.bucket
        folder.mkdir(parents=True, exist_ok=True)
        for file_doc in db[f"{kind.bucket}.files"].find({"metadata.roomId": room_id}).sort("_id", ASCENDING):
            name = str(file_doc["_id"])
            with open(folder / f"{name}.bin", "wb") as out:
                for chunk in db[f"{kind.bucket}.chunks"].find({"files_id": file_doc["_id"]}).sort("n", ASCENDING):
                    out.write(chunk["data"])
            (folder / f"{name}.json").write_text(room_export_dumps(file_doc))
            entries.append({"bucket": kind.bucket, "file": file_doc, "path": f"{kind.bucket}/{name}.bin"})
    return entries


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
    """
    db = sync_db()
    room = dict(data["room"])
    room_id = room.get("roomId")
    if not isinstance(room_id, str) or not room_id:
        raise InvalidInput("the export has no roomId")
    messages = data.get("messages", [])
    media = data.get("media", [])
    if any(m.get("roomId") != room_id for m in messages):
        raise InvalidInput("the export has messages of another room")
    if media and media_dir is None:
        raise InvalidInput("the export lists media files: pass the directory they were exported to")
    blobs = [(entry, _media_read(entry, media_dir)) for entry in media]

    if db.rooms.find_one({"roomId": room_id}, {"_id": 1}) is not None:
        if not replace:
            raise InvalidInput(f"room {room_id!r} already exists (use --replace to overwrite it)")
        asyncio.run(room_delete(room_id=room_id))
    if touch:
        room["lastActivity"] = utc_now()
    try:
        db.rooms.insert_one(room)
        for entry, blob in blobs:
            _file_insert(entry, blob)
        if messages:
            db.messages.insert_many(messages, ordered=True)
    except (DuplicateKeyError, BulkWriteError) as exc:
        raise InvalidInput(f"an id of the export is already used in this database: {exc}") from None
    return {"roomId": room_id, "messages": len(messages), "files": len(blobs), "bytes": sum(len(b) for _, b in blobs)}


def _media_read(entry: dict, media_dir: Path) -> bytes:
    if entry.get("bucket") not in {kind.bucket for kind in KINDS.values()}:
        raise InvalidInput(f"unknown bucket {entry.get('bucket')!r}")
    path = (media_dir / entry["path"]).resolve()
    if media_dir.resolve() not in path.parents:
        raise InvalidInput(f"media path {entry['path']!r} leaves the media directory")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if len(blob) != entry["file"]["length"]:
        raise InvalidInput(f"{path} has {len(blob)} bytes, the export says {entry['file']['length']}")
    return blob


def _file_insert(entry: dict, blob: bytes) -> None:
    """Chunks first, then the files document, as a GridFS upload does."""
    db = sync_db()
    file_doc = entry["file"]
    size = int(file_doc["chunkSize"])
    chunks = [
        {"files_id": file_doc["_id"], "n": n, "data": Binary(blob[start : start + size])}
        for n, start in enumerate(range(0, len(blob), size))
    ]
    if chunks:
        db[f"{entry['bucket']}.chunks"].insert_many(chunks)
    db[f"{entry['bucket']}.files"].insert_one(file_doc)

