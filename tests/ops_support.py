"""Helpers for the operations tests: seeding rooms directly in a database, running
`manage.py` as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import gridfs
from bson import ObjectId
from tests.conftest import PROJECT_ROOT, server_env

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 600
WEBM = b"\x1aE\xdf\xa3" + b"\x00" * 600  # stored directly in GridFS by seed_room, never uploaded
WAV = (b"RIFF" + (1036).to_bytes(4, "little") + b"WAVEfmt " + b"\x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00"
       b"\x80\x3e\x00\x00\x02\x00\x10\x00" + b"data" + (1000).to_bytes(4, "little") + b"\x00" * 1000)


def separate_db_uri(mongo_uri: str) -> str:
    """A fresh database on the session's server, so a test's TTL index and counts are its own."""
    return f"{mongo_uri.rsplit('/', 1)[0]}/ops_{uuid.uuid4().hex[:10]}"


def manage(*args: str, mongo_uri: str, stdin: str | None = None, timeout: float = 180, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=server_env(MONGO_URI=mongo_uri, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def seed_room(db, room_id: str, *, last_activity: datetime, messages: int = 3, files: int = 1,
              file_size: int = 300_000) -> dict:
    """A room as the services write it: the room, text messages, and voice/image files
    each referenced by a message. Returns the ids written."""
    db.rooms.insert_one({"_id": ObjectId(), "roomId": room_id, "lastActivity": ms(last_activity), "__v": 0})
    message_ids, file_ids = [], []
    created = ms(last_activity - timedelta(seconds=messages + files))
    for i in range(messages):
        oid = ObjectId()
        db.messages.insert_one({"_id": oid, "roomId": room_id, "username": "ann", "message": f"hello {i}",
                                "type": "text", "url": None, "createdAt": created + timedelta(seconds=i)})
        message_ids.append(oid)
    for i in range(files):
        kind, bucket, blob, ctype = (("voice", "voices", WEBM, "audio/webm") if i % 2 == 0
                                     else ("image", "images", PNG, "image/png"))
        data = blob + bytes([i % 251]) * file_size
        file_id = gridfs.GridFSBucket(db, bucket_name=bucket).upload_from_stream(
            "blob", data, metadata={"roomId": room_id, "username": "ann", "contentType": ctype})
        db[f"{bucket}.files"].update_one({"_id": file_id}, {"$set": {"uploadDate": created}})
        oid = ObjectId()
        db.messages.insert_one({"_id": oid, "roomId": room_id, "username": "ann", "message": f"{kind} message",
                                "type": kind, "url": f"/api/{kind}/{file_id}", "createdAt": created})
        message_ids.append(oid)
        file_ids.append((bucket, file_id))
    return {"messages": message_ids, "files": file_ids}


def room_leftovers(db, room_id: str, file_ids=()) -> dict:
    """Everything stored for a room, counted per collection (all zero once it is purged).
    `file_ids` (bucket, id) pairs known from seeding: their chunks are counted too."""
    counts = {"rooms": db.rooms.count_documents({"roomId": room_id}),
              "messages": db.messages.count_documents({"roomId": room_id})}
    for bucket in ("voices", "images"):
        ids = [f["_id"] for f in db[f"{bucket}.files"].find({"metadata.roomId": room_id}, {"_id": 1})]
        counts[f"{bucket}.files"] = len(ids)
        ids += [file_id for b, file_id in file_ids if b == bucket]
        counts[f"{bucket}.chunks"] = db[f"{bucket}.chunks"].count_documents({"files_id": {"$in": ids}})
    return counts


def now() -> datetime:
    return ms(datetime.now(UTC))
