"""The GridFS implementation of the media store: the only module that names a bucket or a collection.

Layout (the GridFS spec, so `mongofiles` and any driver read it): per kind a bucket
(`voices`, `images`), i.e. a `<bucket>.files` collection (one document per file:
`length`, `chunkSize`, `uploadDate`, `filename`, `metadata: {roomId, username, contentType,
attachedTo, description?}`) and a `<bucket>.chunks` collection (`{files_id, n, data}` per
`CHUNK_SIZE` bytes). `description` is what the upload's processing measured (voice
`{duration, waveform}`, image `{width, height}`); `attachedTo` is the message that owns the
file (below).

Thumbnails live in their own bucket, `thumbnails`, one file per (image, width) with
`metadata: {roomId, thumbnailOf, width, contentType}` and a unique index on
(`thumbnailOf`, `width`): a thumbnail can never be served, attached to a message or counted
as an upload of the images bucket, and two requests that make the same one store it once.
They go with their image (`delete`), with their room (`room_delete`), and are not exported
(an import makes them again on demand).

Writes. `GridFSUpload` writes chunks as they fill (flushing every `FLUSH_CHUNKS`), so an
upload holds at most ~1 MB in memory: PyMongo's `GridIn` batches up to 48 MB of chunks
(measured: +110 MB peak RSS per 10 MB upload under Daphne). The files document is written
last, so a file is invisible to readers until whole; `abort()` removes the chunks written.
An import restores a file the same way (chunks, then its files document). A delete goes the
other way: the files document first, so a file whose chunks are being deleted is already
unreachable.

Ownership. `metadata.attachedTo` is null from the upload until one message claims the file
(`attach`: a conditional update, so of two messages racing for a file exactly one wins);
only that message's delete deletes the file (`delete_owned`), and a file still unattached
after `UPLOAD_ATTACH_SECONDS` is deleted by `unattached_delete` (conditional too, so a file
attached meanwhile stays). Files stored before ownership existed have no `attachedTo` key:
they may still be attached once, and are never taken for unattached uploads.

Reads use PyMongo's `AsyncGridFSBucket` (ranged: `seek` then `read`), except the bytes of a
file this process stored a moment ago (`voice.recent_files`): its files document is read
all the same (a deleted file is gone, whatever is in memory), its chunks are not. The async methods
run on the server's event loop; the sync ones (`*_sync`: stats, export, import, indexes)
run in management commands and at start-up, never on the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from bson import Binary, ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from chillout_project.errors import InvalidInput
from chillout_project.mongo import async_db, sync_db
from voice.kinds import KINDS, MediaKind
from voice.recent_files import RecentFiles

CHUNK_SIZE = 255 * 1024  # GridFS' default chunk size
FLUSH_CHUNKS = 4
BATCH = 500  # file ids per delete
BUCKETS = {"voice": "voices", "image": "images"}  # kind name → bucket name
ATTACHED_TO = "attachedTo"  # metadata field: the _id of the message that owns the file, or null
UNATTACHED = {f"metadata.{ATTACHED_TO}": {"$exists": True, "$eq": None}}  # uploaded since ownership, never claimed
THUMBNAILS = "thumbnails"  # bucket of the images' thumbnails

_recent = RecentFiles()  # empty until an upload closes


def bucket_name(kind: MediaKind) -> str:
    return BUCKETS[kind.name]


def files_collection(db, kind: MediaKind):
    """`<bucket>.files` of `db` (sync or async database)."""
    return db[f"{bucket_name(kind)}.files"]


def chunks_collection(db, kind: MediaKind):
    return db[f"{bucket_name(kind)}.chunks"]


class GridFSUpload:
    """One file on its way in: chunks written as they fill, the files document at `close`."""

    def __init__(self, *, bucket: str, filename: str, metadata: dict):
        db = async_db()
        self._files = db[f"{bucket}.files"]
        self._chunks = db[f"{bucket}.chunks"]
        self.file_id = ObjectId()
        self.filename = filename
        self.metadata = metadata
        self.length = 0
        self._buffer = bytearray()
        self._pending: list[dict] = []
        self._next_n = 0
        self._kept: list[bytes] | None = []  # the bytes, while the file may still go to `_recent`
        self.closed = False

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.length += len(data)
        if self._kept is not None and _recent.fits(self.length):
            self._kept.append(bytes(data))
        else:
            self._kept = None
        while len(self._buffer) >= CHUNK_SIZE:
            self._take_chunk(bytes(self._buffer[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]
        if len(self._pending) >= FLUSH_CHUNKS:
            await self._flush()

    async def close(self, *, username: str | None = None) -> ObjectId:
        """Write the remaining chunks, then the files document that makes the file visible."""
        if username is not None:
            self.metadata["username"] = username
        if self._buffer:
            self._take_chunk(bytes(self._buffer))
            self._buffer.clear()
        await self._flush()
        await self._files.insert_one(
            {
                "_id": self.file_id,
                "length": self.length,
                "chunkSize": CHUNK_SIZE,
                "uploadDate": datetime.now(UTC),
                "filename": self.filename,
                "metadata": self.metadata,
            }
        )
        self.closed = True
        if self._kept:
            _recent.put(self.file_id, b"".join(self._kept))
        self._kept = None
        return self.file_id

    async def abort(self) -> None:
        self._pending.clear()
        self._buffer.clear()
        self._kept = None
        await self._chunks.delete_many({"files_id": self.file_id})
        self.closed = True

    def _take_chunk(self, data: bytes) -> None:
        self._pending.append({"files_id": self.file_id, "n": self._next_n, "data": Binary(data)})
        self._next_n += 1

    async def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            await self._chunks.insert_many(pending, ordered=True)


class GridFSFile:
    """An open stored file: its length and type, and its bytes from any offset (from memory
    when this process stored it lately, else from its chunks)."""

    def __init__(self, grid_out):
        self._grid_out = grid_out
        self.length: int = grid_out.length
        self.metadata: dict = grid_out.metadata or {}
        self.content_type: str | None = self.metadata.get("contentType")
        self._data = _recent.get(grid_out._id, length=self.length)

    async def read_range(self, *, start: int, length: int, piece: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """`length` bytes from `start`, one chunk (one database read) per piece."""
        if self._data is not None:
            view = memoryview(self._data)
            for at in range(start, start + length, piece):
                yield bytes(view[at : min(at + piece, start + length)])
            return
        if start:
            await self._grid_out.seek(start)
        remaining = length
        while remaining > 0:
            data = await self._grid_out.read(min(piece, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


class GridFSStore:
    """Media in GridFS buckets; see the module docstring."""

    def upload(
        self, *, kind: MediaKind, room_id: str, filename: str, content_type: str, description: dict | None = None
    ) -> GridFSUpload:
        metadata = {"roomId": room_id, "username": None, "contentType": content_type, ATTACHED_TO: None}
        if description:
            metadata["description"] = description
        return GridFSUpload(bucket=bucket_name(kind), filename=filename, metadata=metadata)

    async def description(self, *, kind: MediaKind, file_id: ObjectId) -> dict | None:
        found = await files_collection(async_db(), kind).find_one({"_id": file_id}, projection={"metadata.description": 1})
        if found is None:
            return None
        return (found.get("metadata") or {}).get("description") or {}

    async def thumbnail_open(self, *, file_id: ObjectId, width: int) -> GridFSFile | None:
        found = await async_db()[f"{THUMBNAILS}.files"].find_one(
            {"metadata.thumbnailOf": file_id, "metadata.width": width}, projection={"_id": 1}
        )
        if found is None:
            return None
        try:
            grid_out = await AsyncGridFSBucket(async_db(), bucket_name=THUMBNAILS).open_download_stream(found["_id"])
        except NoFile:  # deleted with its image in between
            return None
        return GridFSFile(grid_out)

    async def thumbnail_store(self, *, kind: MediaKind, file_id: ObjectId, width: int, data: bytes, content_type: str) -> None:
        """Store a thumbnail of an image once: a second writer's copy loses on the unique index
        and is removed; an image deleted meanwhile takes the new thumbnail with it."""
        image = await files_collection(async_db(), kind).find_one({"_id": file_id}, projection={"metadata.roomId": 1})
        if image is None:
            return
        metadata = {"roomId": image["metadata"]["roomId"], "thumbnailOf": file_id, "width": width, "contentType": content_type}
        upload = GridFSUpload(bucket=THUMBNAILS, filename=f"{file_id}-w{width}", metadata=metadata)
        await upload.write(data)
        try:
            await upload.close()
        except DuplicateKeyError:
            await upload.abort()
            return
        if await files_collection(async_db(), kind).find_one({"_id": file_id}, projection={"_id": 1}) is None:
            await self._thumbnails_delete(of_ids=[file_id])

    async def _thumbnails_delete(self, *, of_ids: list[ObjectId]) -> tuple[int, int]:
        """Delete the thumbnails of these images: (files, bytes)."""
        db = async_db()
        query = {"metadata.thumbnailOf": {"$in": of_ids}}
        found = await db[f"{THUMBNAILS}.files"].find(query, {"_id": 1, "length": 1}).to_list(None)
        ids = [f["_id"] for f in found]
        _recent.drop(ids)
        if ids:
            await db[f"{THUMBNAILS}.files"].delete_many({"_id": {"$in": ids}})
            await db[f"{THUMBNAILS}.chunks"].delete_many({"files_id": {"$in": ids}})
        return len(ids), sum(int(f.get("length", 0)) for f in found)

    async def open(self, *, kind: MediaKind, file_id: ObjectId) -> GridFSFile | None:
        try:
            grid_out = await AsyncGridFSBucket(async_db(), bucket_name=bucket_name(kind)).open_download_stream(file_id)
        except NoFile:
            return None
        return GridFSFile(grid_out)

    async def delete(self, *, kind: MediaKind, file_id: ObjectId) -> bool:
        """Delete one file (an image with its thumbnails)."""
        _recent.drop([file_id])
        try:
            await AsyncGridFSBucket(async_db(), bucket_name=bucket_name(kind)).delete(file_id)
        except NoFile:
            return False
        finally:
            if kind.name == "image":
                await self._thumbnails_delete(of_ids=[file_id])
        return True

    async def attach(
        self, *, kind: MediaKind, file_id: ObjectId, room_id: str, username: str, message_id: ObjectId
    ) -> bool:
        """Make `message_id` the file's owner if it is `room_id`'s, uploaded by `username`, unclaimed."""
        result = await files_collection(async_db(), kind).update_one(
            {
                "_id": file_id,
                "metadata.roomId": room_id,
                "metadata.username": username,
                f"metadata.{ATTACHED_TO}": None,  # null, or missing on files older than ownership
            },
            {"$set": {f"metadata.{ATTACHED_TO}": message_id}},
        )
        return result.modified_count == 1

    async def detach(self, *, kind: MediaKind, file_id: ObjectId, message_id: ObjectId) -> bool:
        result = await files_collection(async_db(), kind).update_one(
            {"_id": file_id, f"metadata.{ATTACHED_TO}": message_id}, {"$set": {f"metadata.{ATTACHED_TO}": None}}
        )
        return result.modified_count == 1

    async def metadata(self, *, kind: MediaKind, file_id: ObjectId) -> dict | None:
        found = await files_collection(async_db(), kind).find_one({"_id": file_id}, projection={"metadata": 1})
        return None if found is None else (found.get("metadata") or {})

    async def delete_owned(self, *, kind: MediaKind, file_id: ObjectId, message_id: ObjectId) -> bool:
        """Delete the file only if `message_id` owns it (files document first, then its chunks)."""
        return await self._delete_where(kind=kind, file_filter={"_id": file_id, f"metadata.{ATTACHED_TO}": message_id})

    async def unattached_delete(self, *, older_than: datetime, dry_run: bool = False) -> dict[str, tuple[int, int]]:
        """Delete (or count) files uploaded before `older_than` that no message claimed: bucket → (files, bytes).

        One conditional delete per file, so a file attached since it was listed is kept."""
        counts: dict[str, tuple[int, int]] = {}
        for kind in KINDS.values():
            query = {**UNATTACHED, "uploadDate": {"$lt": older_than}}
            found = await files_collection(async_db(), kind).find(query, {"_id": 1, "length": 1}).to_list(None)
            for file_doc in found:
                if dry_run or await self._delete_where(kind=kind, file_filter={**query, "_id": file_doc["_id"]}):
                    number, size = counts.get(bucket_name(kind), (0, 0))
                    counts[bucket_name(kind)] = (number + 1, size + int(file_doc.get("length", 0)))
        return counts

    async def _delete_where(self, *, kind: MediaKind, file_filter: dict) -> bool:
        db = async_db()
        file_doc = await files_collection(db, kind).find_one(file_filter, {"_id": 1})
        if file_doc is None:
            return False
        if (await files_collection(db, kind).delete_one(file_filter)).deleted_count == 0:
            return False
        _recent.drop([file_doc["_id"]])
        await chunks_collection(db, kind).delete_many({"files_id": file_doc["_id"]})
        if kind.name == "image":
            await self._thumbnails_delete(of_ids=[file_doc["_id"]])
        return True

    async def in_room(self, *, kind: MediaKind, file_id: ObjectId, room_id: str) -> bool:
        found = await files_collection(async_db(), kind).find_one(
            {"_id": file_id, "metadata.roomId": room_id}, projection={"_id": 1}
        )
        return found is not None

    async def room_ids(self) -> set[str]:
        """Every roomId that owns a file (`distinct`, answered from the metadata.roomId index)."""
        owners: set[str] = set()
        for bucket in (*BUCKETS.values(), THUMBNAILS):
            values = await async_db()[f"{bucket}.files"].distinct("metadata.roomId")
            owners.update(v for v in values if isinstance(v, str))
        return owners

    async def room_delete(
        self, *, room_id: str, older_than: datetime | None = None, dry_run: bool = False
    ) -> dict[str, tuple[int, int]]:
        """Delete (or count) a room's files, optionally only older ones: bucket → (files, bytes).

        Thumbnails go by the same filter (one is never older than its image, so an image
        that stays keeps them) and, when only older files go, also with their image."""
        db = async_db()
        counts: dict[str, tuple[int, int]] = {}
        file_filter: dict = {"metadata.roomId": room_id}
        if older_than is not None:
            file_filter["uploadDate"] = {"$lt": older_than}
        for bucket in (*BUCKETS.values(), THUMBNAILS):
            files, chunks = db[f"{bucket}.files"], db[f"{bucket}.chunks"]
            found = await files.find(file_filter, {"_id": 1, "length": 1}).to_list(None)
            for start in range(0, len(found), BATCH):
                batch = found[start : start + BATCH]
                ids = [f["_id"] for f in batch]
                if not dry_run:
                    _recent.drop(ids)
                    await files.delete_many({"_id": {"$in": ids}})
                    await chunks.delete_many({"files_id": {"$in": ids}})
                    if bucket == BUCKETS["image"] and older_than is not None:
                        _add(counts, THUMBNAILS, await self._thumbnails_delete(of_ids=ids))
                _add(counts, bucket, (len(ids), sum(int(f.get("length", 0)) for f in batch)))
        return counts

    def totals_sync(self) -> dict[str, dict[str, int]]:
        """bucket → {files, bytes}, every bucket listed."""
        totals = {}
        for bucket in (*BUCKETS.values(), THUMBNAILS):
            rows = list(
                sync_db()[f"{bucket}.files"].aggregate(
                    [{"$group": {"_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"}}}]
                )
            )
            totals[bucket] = {"files": rows[0]["files"] if rows else 0, "bytes": rows[0]["bytes"] if rows else 0}
        return totals

    def bytes_by_room_sync(self, *, room_ids: list[str]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for bucket in (*BUCKETS.values(), THUMBNAILS):
            for row in sync_db()[f"{bucket}.files"].aggregate(
                [
                    {"$match": {"metadata.roomId": {"$in": room_ids}}},
                    {"$group": {"_id": "$metadata.roomId", "bytes": {"$sum": "$length"}}},
                ]
            ):
                totals[row["_id"]] = totals.get(row["_id"], 0) + row["bytes"]
        return totals

    def room_export_sync(self, *, room_id: str, media_dir: Path, dumps) -> list[dict]:
        """Write the room's files to `media_dir` as `<bucket>/<id>.bin` + `.json`; list them."""
        db = sync_db()
        entries = []
        for kind in KINDS.values():
            bucket = bucket_name(kind)
            folder = media_dir / bucket
            folder.mkdir(parents=True, exist_ok=True)
            for file_doc in files_collection(db, kind).find({"metadata.roomId": room_id}).sort("_id", ASCENDING):
                name = str(file_doc["_id"])
                with open(folder / f"{name}.bin", "wb") as out:
                    for chunk in chunks_collection(db, kind).find({"files_id": file_doc["_id"]}).sort("n", ASCENDING):
                        out.write(chunk["data"])
                (folder / f"{name}.json").write_text(dumps(file_doc))
                entries.append({"bucket": bucket, "file": file_doc, "path": f"{bucket}/{name}.bin"})
        return entries

    def entry_read_sync(self, *, entry: dict, media_dir: Path) -> bytes:
        """The bytes of one exported file, checked against its entry."""
        if entry.get("bucket") not in BUCKETS.values():
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

    def entry_restore_sync(self, *, entry: dict, blob: bytes) -> None:
        """Chunks first, then the files document, as an upload does."""
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

    def indexes_ensure_sync(self) -> list[str]:
        """Files by room (purge, export find a room's media without a scan), by owner and age
        (the purge of unattached uploads), and chunks by
        (files_id, n) as the GridFS spec does: `GridFSUpload` does not create it the way
        PyMongo's GridIn does, and without it every chunk read of a download scans."""
        db = sync_db()
        names = []
        for bucket in (*BUCKETS.values(), THUMBNAILS):
            names.append(db[f"{bucket}.files"].create_index([("metadata.roomId", ASCENDING)]))
            names.append(db[f"{bucket}.chunks"].create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True))
        for bucket in BUCKETS.values():
            names.append(
                db[f"{bucket}.files"].create_index([(f"metadata.{ATTACHED_TO}", ASCENDING), ("uploadDate", ASCENDING)])
            )
        names.append(
            db[f"{THUMBNAILS}.files"].create_index(
                [("metadata.thumbnailOf", ASCENDING), ("metadata.width", ASCENDING)], unique=True
            )
        )
        return names


def _add(counts: dict[str, tuple[int, int]], bucket: str, more: tuple[int, int]) -> None:
    """Add (files, bytes) to a bucket's count; a bucket with nothing removed is not listed."""
    if more == (0, 0):
        return
    number, size = counts.get(bucket, (0, 0))
    counts[bucket] = (number + more[0], size + more[1])

