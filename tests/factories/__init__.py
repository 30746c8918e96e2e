"""The one module of sample data for every test: media files, message and room documents,
and the helpers that look at stored media.

Media: small, real, decodable files of every media type the contract names, made in memory
without any metadata (an upload is decoded and sanitized, so fakes are refused with 415): the
WAV and PNG by hand, the other audio by PyAV's encoders, the other images by Pillow. Files
that carry identifying metadata on purpose are in `tagged_media`.

Documents: rooms and messages written straight into a database "as the services write
them" (another process, a seeded room) are built by `rooms.documents`, the schema's module.

Stored media: tests look at what was stored through these helpers, which ask `voice`
(`voice.gridfs_store`) where a kind's files live; no test names a bucket or a collection.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import time
import wave
import zlib
from datetime import UTC, datetime, timedelta

import gridfs
from bson import ObjectId

from rooms.documents import MESSAGES, ROOMS, message_new, room_new
from tests.factories import tagged_media
from voice.gridfs_store import THUMBNAILS, bucket_name, chunks_collection, files_collection
from voice.kinds import KINDS


def wav(frames: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x02" * frames)
    return buffer.getvalue()


@functools.cache
def _voice(kind: str, seconds: float) -> bytes:
    return tagged_media.voice(kind, seconds=seconds, tags={})


def webm(seconds: float = 0.5) -> bytes:
    """A real WebM/Opus note, what browsers record."""
    return _voice("webm", seconds)


def ogg(seconds: float = 0.5) -> bytes:
    return _voice("ogg", seconds)


def mp4(brand: bytes = b"isom", seconds: float = 0.5) -> bytes:
    """A real M4A (AAC) whose ftyp major brand is `brand` (Safari writes several)."""
    data = _voice("m4a", seconds)
    assert data[4:8] == b"ftyp"
    return data[:8] + brand + data[12:]


def mp3(seconds: float = 0.5) -> bytes:
    return _voice("mp3", seconds)


def png(width: int = 2, height: int = 2, *, noise: int = 0) -> bytes:
    """A real RGB PNG; `noise` > 0 fills it with that many random-ish rows' worth of bytes
    that do not compress (for files of a given size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if noise:
        rows = [b"\x00" + os.urandom(width * 3) for _ in range(height)]
        raw = b"".join(rows)
    else:
        raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _pillow(format: str, width: int, height: int, **options) -> bytes:
    out = io.BytesIO()
    tagged_media.picture(width, height).save(out, format, **options)
    return out.getvalue()


def jpeg(width: int = 16, height: int = 8) -> bytes:
    return _pillow("JPEG", width, height, quality=90)


def gif(width: int = 4, height: int = 2) -> bytes:
    return _pillow("GIF", width, height)


def webp(width: int = 16, height: int = 8) -> bytes:
    return _pillow("WEBP", width, height, quality=90)


# A real container header followed by filler, per audio type: detected, then refused (415).
AUDIO_HEADS = {
    "audio/webm": bytes.fromhex("1A45DFA3") + b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    + b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + bytes(4096),
    "audio/ogg": b"OggS\x00\x02" + bytes(22) + b"\x01\x13OpusHead" + bytes(4096),
    "audio/mp4": struct.pack(">I", 24) + b"ftypiso5\x00\x00\x00\x01iso5mp41" + bytes(4096),
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(4096),
}


def undecodable(kind: str) -> bytes:
    """Bytes whose head is a supported type but that do not decode (detected, then 415)."""
    if kind == "voice":
        return AUDIO_HEADS["audio/webm"] + bytes(5000)
    return b"\x89PNG\r\n\x1a\n" + bytes(9000)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"

AUDIO = {
    "audio/webm": webm,
    "audio/ogg": ogg,
    "audio/mp4": mp4,
    "audio/mpeg": mp3,
    "audio/wav": wav,
}
IMAGES = {
    "image/png": png,
    "image/jpeg": jpeg,
    "image/gif": gif,
    "image/webp": webp,
}

PNG = png()  # ready-made samples, for tests that need one of a kind and no particular size
WAV = wav(frames=500)
WEBM = webm()
MEDIA = {"voice": WEBM, "image": PNG}


# --- time -------------------------------------------------------------------------------


def ms(moment: datetime) -> datetime:
    """Truncated to milliseconds, as MongoDB stores it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def now() -> datetime:
    return ms(datetime.now(UTC))


# --- documents --------------------------------------------------------------------------


def message_doc(
    room_id: str,
    text: str,
    *,
    username: str = "ann",
    type: str = "text",
    url: str | None = None,
    created_at: datetime | None = None,
    oid: ObjectId | None = None,
) -> dict:
    """A message document as `rooms.services.message_create` stores it."""
    doc = message_new(room_id=room_id, username=username, text=text, type=type, url=url, created_at=created_at or now())
    if oid is not None:
        doc["_id"] = oid
    return doc


def message_from_other_process(db, room_id: str, text: str, *, age_seconds: float = 0.0) -> ObjectId:
    """Store a message as another server process would, its `_id` made `age_seconds` ago."""
    at = time.time() - age_seconds
    oid = ObjectId(struct.pack(">I", int(at)) + os.urandom(8))
    created = datetime.fromtimestamp(int(at * 1000) / 1000, tz=UTC)
    db[MESSAGES].insert_one(message_doc(room_id, text, username="other", created_at=created, oid=oid))
    return oid


def seed_room(db, room_id: str, *, last_activity: datetime, messages: int = 3, files: int = 1,
              file_size: int = 300_000) -> dict:
    """A room as the services write it: the room, text messages, and voice/image files each
    referenced by a message. Returns the ids written (`files`: (kind name, id) pairs)."""
    db[ROOMS].insert_one(room_new(room_id=room_id, last_activity=ms(last_activity)))
    message_ids, file_ids = [], []
    created = ms(last_activity - timedelta(seconds=messages + files))
    for i in range(messages):
        doc = message_doc(room_id, f"hello {i}", created_at=created + timedelta(seconds=i))
        db[MESSAGES].insert_one(doc)
        message_ids.append(doc["_id"])
    for i in range(files):
        kind, ctype = ("voice", "audio/webm") if i % 2 == 0 else ("image", "image/png")
        file_id = media_file_seed(db, kind=kind, room_id=room_id, data=MEDIA[kind] + bytes([i % 251]) * file_size,
                                  content_type=ctype, upload_date=created)
        doc = message_doc(room_id, f"{kind} message", type=kind, url=KINDS[kind].path(file_id), created_at=created)
        db[MESSAGES].insert_one(doc)
        message_ids.append(doc["_id"])
        file_ids.append((kind, file_id))
    return {"messages": message_ids, "files": file_ids}


def room_leftovers(db, room_id: str, file_ids=()) -> dict:
    """Everything stored for a room, counted (`rooms`, `messages`, `<kind>.files`,
    `<kind>.chunks`; all zero once it is purged). `file_ids` (kind, id) pairs known from
    seeding or uploading: their chunks are counted too."""
    counts = {"rooms": db[ROOMS].count_documents({"roomId": room_id}),
              "messages": db[MESSAGES].count_documents({"roomId": room_id})}
    for kind in KINDS:
        ids = [f["_id"] for f in media_files_of_room(db, kind=kind, room_id=room_id)]
        counts[f"{kind}.files"] = len(ids)
        ids += [file_id for k, file_id in file_ids if k == kind]
        counts[f"{kind}.chunks"] = media_chunk_count(db, kind=kind, file_ids=ids)
    counts["thumbnails"] = db[f"{THUMBNAILS}.files"].count_documents({"metadata.roomId": room_id})
    return counts


# --- stored media (sync PyMongo `db`; where a kind lives is voice's answer) -------------


LEGACY = object()  # `attached_to` of a file stored before ownership existed: no attachedTo key


def media_file_seed(db, *, kind: str, room_id: str, data: bytes, content_type: str, username: str = "ann",
                    upload_date: datetime | None = None, attached_to=LEGACY) -> ObjectId:
    """Store a file directly, as an upload would have (metadata roomId/username/contentType,
    and `attachedTo`: None for an unclaimed upload, a message id; LEGACY leaves it out)."""
    metadata = {"roomId": room_id, "username": username, "contentType": content_type}
    if attached_to is not LEGACY:
        metadata["attachedTo"] = attached_to
    file_id = gridfs.GridFSBucket(db, bucket_name=bucket_name(KINDS[kind])).upload_from_stream(
        "blob", data, metadata=metadata)
    if upload_date is not None:
        files_collection(db, KINDS[kind]).update_one({"_id": file_id}, {"$set": {"uploadDate": upload_date}})
    return file_id


def media_file(db, *, kind: str, file_id) -> dict | None:
    """The stored file's document (length, metadata, uploadDate...), or None."""
    return files_collection(db, KINDS[kind]).find_one({"_id": ObjectId(file_id)})


def media_files_of_room(db, *, kind: str, room_id: str) -> list[dict]:
    return list(files_collection(db, KINDS[kind]).find({"metadata.roomId": room_id}))


def media_content(db, *, kind: str, file_id) -> bytes:
    chunks = chunks_collection(db, KINDS[kind]).find({"files_id": ObjectId(file_id)}).sort("n", 1)
    return b"".join(c["data"] for c in chunks)


def media_chunk_count(db, *, kind: str, file_ids) -> int:
    return chunks_collection(db, KINDS[kind]).count_documents({"files_id": {"$in": [ObjectId(i) for i in file_ids]}})


def media_orphan_chunks(db, *, kind: str) -> set:
    """Ids of chunks whose file has no files document (what a failed upload must not leave)."""
    files = set(files_collection(db, KINDS[kind]).distinct("_id"))
    return set(chunks_collection(db, KINDS[kind]).distinct("files_id")) - files


def media_thumbnails(db, *, file_id) -> list[dict]:
    """The stored thumbnails (files documents) of image `file_id`, with their chunk counts."""
    docs = list(db[f"{THUMBNAILS}.files"].find({"metadata.thumbnailOf": ObjectId(file_id)}))
    for doc in docs:
        doc["chunks"] = db[f"{THUMBNAILS}.chunks"].count_documents({"files_id": doc["_id"]})
    return docs


def thumbnail_orphan_chunks(db) -> set:
    """Ids of thumbnail chunks without a files document (a losing concurrent copy must not leave them)."""
    return set(db[f"{THUMBNAILS}.chunks"].distinct("files_id")) - set(db[f"{THUMBNAILS}.files"].distinct("_id"))


def media_thumbnails_of_room(db, *, room_id: str) -> list[dict]:
    return list(db[f"{THUMBNAILS}.files"].find({"metadata.roomId": room_id}))


def media_file_restore(db, *, kind: str, document: dict, data: bytes) -> None:
    """Store `data` under a files document's own id and metadata (as an import would), behind
    the server's back."""
    size = int(document["chunkSize"])
    chunks = [{"files_id": document["_id"], "n": n, "data": data[at : at + size]}
              for n, at in enumerate(range(0, len(data), size))]
    chunks_collection(db, KINDS[kind]).insert_many(chunks)
    files_collection(db, KINDS[kind]).insert_one({**document, "length": len(data)})


def media_file_remove(db, *, kind: str, file_id) -> None:
    """Delete a file behind the server's back (another process, an operator)."""
    gridfs.GridFSBucket(db, bucket_name=bucket_name(KINDS[kind])).delete(ObjectId(file_id))
