"""The wire shapes of rooms and messages (contract §2–§3), built from stored documents.

Key order of a message is part of the web client's contract:
`username, message, type, url, _id, createdAt` (+ `callInitiator` for call notices); a media
message's description (`duration`, `waveform` / `width`, `height`) follows, only when stored,
then `editedAt` once edited. A stored `clientOffset` never goes on the wire.
Media are stored as server paths (`/api/voice/<id>`); on the wire they become absolute URLs
with the base the caller passes (`PUBLIC_URL`, else the request's scheme and host).

Every wire shape of the rooms app is built here, for REST and sockets alike. A history is
assembled from `Part`s: a message's JSON bytes, or for a media message its wire dict whose
relative `url` still needs the caller's media base (`rooms.history` caches parts).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson

from rooms.documents import MEDIA_FIELDS

Part = bytes | dict


def utc_now() -> datetime:
    """Now, truncated to milliseconds: the precision MongoDB stores, so emitted == stored."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and `Z`, as JavaScript's `toISOString()`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message_wire(doc: dict, *, media_base: str) -> dict:
    url = doc.get("url")
    wire = {
        "username": doc["username"],
        "message": doc["message"],
        "type": doc["type"],
        "url": f"{media_base}{url}" if url else None,
        "_id": str(doc["_id"]),
        "createdAt": iso_timestamp(doc["createdAt"]),
    }
    if "callInitiator" in doc:
        wire["callInitiator"] = doc["callInitiator"]
    for name in MEDIA_FIELDS:
        if name in doc:
            wire[name] = doc[name]
    if doc.get("editedAt") is not None:
        wire["editedAt"] = iso_timestamp(doc["editedAt"])
    return wire


def message_edited_wire(doc: dict) -> dict:
    """`message_edited` (contract §4): `{messageId, message, editedAt}` of an edited message."""
    return {"messageId": str(doc["_id"]), "message": doc["message"], "editedAt": iso_timestamp(doc["editedAt"])}


def message_part(doc: dict) -> Part:
    """A message's JSON bytes; for a media message its wire dict (the URL is per request)."""
    wire = message_wire(doc, media_base="")
    return wire if wire["url"] else orjson.dumps(wire)


def message_part_kept(doc: dict) -> Part:
    """`message_part` for a part that is kept (the history cache): its bytes copied to their length.

    orjson (3.12 on) returns bytes in a buffer of at least 4 KiB that it never shrinks, so a
    150-byte message held as `orjson.dumps` output holds 4 KiB: 27x, and the cache's byte
    bound (`HISTORY_CACHE_BYTES`, which counts lengths) would not bound its memory. Measured
    by the soak's tracemalloc diff (docs/soak.md); Home Assistant trims its cached orjson
    fragments the same way. The copy costs ~0.4 µs, paid once per cached message.
    """
    part = message_part(doc)
    return bytes(memoryview(part)) if isinstance(part, bytes) else part


def messages_json(parts: list[Part], *, media_base: str) -> bytes:
    """The JSON array of the messages, media URLs made absolute with `media_base`."""
    return b"[" + b",".join(p if isinstance(p, bytes) else _media_json(p, media_base) for p in parts) + b"]"


def _media_json(wire: dict, media_base: str) -> bytes:
    return orjson.dumps({**wire, "url": f"{media_base}{wire['url']}"})


def room_json(room: dict, parts: list[Part], *, media_base: str) -> bytes:
    """The room's wire shape (contract §2 key order) as JSON bytes."""
    head, tail = _room_around_messages(room)
    return head + messages_json(parts, media_base=media_base) + tail


async def room_json_stream(
    room: dict, parts: AsyncIterator[Part], *, media_base: str, chunk_bytes: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """The same bytes as `room_json`, in pieces of about `chunk_bytes`, from parts that are
    still being read (a full history streamed from the database cursor)."""
    head, tail = _room_around_messages(room)
    pending, size, separator = [head + b"["], len(head) + 1, b""
    async for part in parts:
        piece = part if isinstance(part, bytes) else _media_json(part, media_base)
        pending += (separator, piece)
        size += len(piece) + 1
        separator = b","
        if size >= chunk_bytes:
            yield b"".join(pending)
            pending, size = [], 0
    pending += (b"]", tail)
    yield b"".join(pending)


def _room_around_messages(room: dict) -> tuple[bytes, bytes]:
    """What comes before and after the messages array in the room's JSON."""
    head = orjson.dumps({"_id": str(room["_id"]), "roomId": room["roomId"]})
    tail = orjson.dumps({"lastActivity": iso_timestamp(room["lastActivity"]), "__v": room.get("__v", 0)})
    return head[:-1] + b',"messages":', b"," + tail[1:]
