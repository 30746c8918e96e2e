"""The media interface: the one seam through which anything outside `voice` reaches stored media.

Media are voice notes AND images (`voice.kinds`): both live behind this interface, whatever
holds their bytes. Today that is GridFS (`voice.gridfs_store`, the only module that names a
bucket or a collection); another store (S3, a CDN origin) goes behind the same functions.
Callers hold kinds, file ids, room ids and `/api/<kind>/<id>` paths, never collections.

Async functions run on the server's event loop; the `*_sync` ones run in management commands
and at start-up only (they use the sync driver).

Ownership (contract §2): a file belongs to at most one message. `media_attach` claims it
for a message (same room, same uploader, unclaimed: one conditional update, so concurrent
claims have one winner), `media_delete_by_path` deletes it only for its owner, and
`media_unattached_delete` removes uploads nobody claimed in time.

Concurrency caveat: a file checked by `media_file_in_room` may be deleted (its message
deleted, its room purged) before the caller uses the answer; callers treat that as any
later delete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bson import ObjectId

from voice.gridfs_store import GridFSStore
from voice.kinds import MediaKind, media_path_parse


class MediaUpload(Protocol):
    """A file being written: invisible to readers until `close()`, gone after `abort()`."""

    file_id: ObjectId
    closed: bool

    async def write(self, data: bytes) -> None: ...
    async def close(self, *, username: str) -> ObjectId: ...
    async def abort(self) -> None: ...


class MediaFile(Protocol):
    length: int
    metadata: dict
    content_type: str | None  # None for legacy files stored without a detected type

    def read_range(self, *, start: int, length: int) -> AsyncIterator[bytes]: ...


_store = GridFSStore()  # holds no connection: each call reaches the database through chillout_project.mongo


def media_upload_open(
    *, kind: MediaKind, room_id: str, filename: str, content_type: str, description: dict | None = None
) -> MediaUpload:
    """Start storing a file of `room_id` with its detected type and its `description` (what
    processing measured: voice `{duration, waveform}`, image `{width, height}`); its uploader
    is named at `close(username=…)`."""
    return _store.upload(kind=kind, room_id=room_id, filename=filename, content_type=content_type, description=description)


async def media_description(*, kind: MediaKind, file_id: ObjectId) -> dict | None:
    """What the upload measured (`{duration, waveform}` or `{width, height}`; `{}` for files
    stored before it was measured); None if there is no such file. `rooms` copies it into the
    message that names the file, so a history needs no lookup here."""
    return await _store.description(kind=kind, file_id=file_id)


async def media_thumbnail_open(*, file_id: ObjectId, width: int) -> MediaFile | None:
    """The stored `width` thumbnail of image `file_id`, open for ranged reads; None if not made yet."""
    return await _store.thumbnail_open(file_id=file_id, width=width)


async def media_thumbnail_store(*, kind: MediaKind, file_id: ObjectId, width: int, data: bytes, content_type: str) -> None:
    """Store the `width` thumbnail of image `file_id` (once: a concurrent copy is dropped; none if
    the image is gone). It is deleted with its image and with its room."""
    await _store.thumbnail_store(kind=kind, file_id=file_id, width=width, data=data, content_type=content_type)


async def media_open(*, kind: MediaKind, file_id: ObjectId) -> MediaFile | None:
    """The stored file, open for ranged reads; None if there is none."""
    return await _store.open(kind=kind, file_id=file_id)


async def media_delete(*, kind: MediaKind, file_id: ObjectId) -> bool:
    """Delete one file (an image with its thumbnails); False if there was none."""
    return await _store.delete(kind=kind, file_id=file_id)


async def media_delete_by_path(*, path: str, message_id: ObjectId) -> bool:
    """Delete the file a message's stored `url` path (`/api/<kind>/<24hex>`) names, if that
    message owns it (`media_attach`); False otherwise: a message naming a file it does not
    own never deletes it."""
    parsed = media_path_parse(path)
    if parsed is None:
        return False
    kind, file_id = parsed
    return await _store.delete_owned(kind=kind, file_id=file_id, message_id=message_id)


async def media_attach(*, kind: MediaKind, file_id: ObjectId, room_id: str, username: str, message_id: ObjectId) -> bool:
    """Claim a file for the message `message_id`: only a file uploaded to `room_id` under
    `username` and not yet claimed. Atomic (one conditional update): of concurrent claims of
    one file exactly one gets True."""
    return await _store.attach(kind=kind, file_id=file_id, room_id=room_id, username=username, message_id=message_id)


async def media_detach(*, kind: MediaKind, file_id: ObjectId, message_id: ObjectId) -> bool:
    """Undo `media_attach` (the message was not stored); False if `message_id` did not own it."""
    return await _store.detach(kind=kind, file_id=file_id, message_id=message_id)


async def media_attach_refusal(*, kind: MediaKind, file_id: ObjectId, room_id: str, username: str) -> str:
    """Why `media_attach` refused this file, as a text for the sender (read after the refusal)."""
    metadata = await _store.metadata(kind=kind, file_id=file_id)
    if metadata is None or metadata.get("roomId") != room_id:
        return f"no such {kind.name} file in this room"
    if metadata.get("username") != username:
        return f"this {kind.name} file was uploaded by another user"
    return f"this {kind.name} file is already attached to a message"


async def media_unattached_delete(*, older_than: datetime, dry_run: bool = False) -> dict[str, tuple[int, int]]:
    """Delete (or count) uploads older than `older_than` that no message claimed; per store
    part (bucket) the files and bytes."""
    return await _store.unattached_delete(older_than=older_than, dry_run=dry_run)


async def media_file_in_room(*, kind: MediaKind, file_id: ObjectId, room_id: str) -> bool:
    """True when `file_id` is a file of this kind uploaded to `room_id`."""
    return await _store.in_room(kind=kind, file_id=file_id, room_id=room_id)


async def media_room_ids() -> set[str]:
    """Every roomId that owns a stored file: the candidates for orphans (the caller knows which rooms exist)."""
    return await _store.room_ids()


async def media_room_delete(
    *, room_id: str, older_than: datetime | None = None, dry_run: bool = False
) -> dict[str, tuple[int, int]]:
    """Delete (or with `dry_run` count) a room's files, optionally only those stored before
    `older_than`, with their thumbnails; returns per store part (bucket) the files and bytes."""
    return await _store.room_delete(room_id=room_id, older_than=older_than, dry_run=dry_run)


def media_totals_sync() -> dict[str, dict[str, int]]:
    """Per store part (bucket): {files, bytes}."""
    return _store.totals_sync()


def media_bytes_by_room_sync(*, room_ids: list[str]) -> dict[str, int]:
    return _store.bytes_by_room_sync(room_ids=room_ids)


def media_export_sync(*, room_id: str, media_dir: Path, dumps: Callable[[object], str]) -> list[dict]:
    """Write a room's files into `media_dir` (metadata serialised with `dumps`); returns the
    export's entries `{bucket, file, path}`, paths relative to `media_dir`."""
    return _store.room_export_sync(room_id=room_id, media_dir=media_dir, dumps=dumps)


def media_import_read_sync(*, entry: dict, media_dir: Path) -> bytes:
    """The bytes of an exported entry, checked (known bucket, inside `media_dir`, right length)."""
    return _store.entry_read_sync(entry=entry, media_dir=media_dir)


def media_import_sync(*, entry: dict, blob: bytes) -> None:
    """Store an exported file again under its own id and metadata."""
    _store.entry_restore_sync(entry=entry, blob=blob)


def media_indexes_ensure() -> list[str]:
    """Create the store's indexes; returns their names (run at start-up and by `ensure_indexes`)."""
    return _store.indexes_ensure_sync()


__all__ = [
    "MediaFile",
    "MediaUpload",
    "media_attach",
    "media_attach_refusal",
    "media_bytes_by_room_sync",
    "media_delete",
    "media_delete_by_path",
    "media_description",
    "media_detach",
    "media_export_sync",
    "media_file_in_room",
    "media_import_read_sync",
    "media_import_sync",
    "media_indexes_ensure",
    "media_open",
    "media_path_parse",
    "media_room_delete",
    "media_room_ids",
    "media_thumbnail_open",
    "media_thumbnail_store",
    "media_totals_sync",
    "media_unattached_delete",
    "media_upload_open",
]
