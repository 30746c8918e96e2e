"""The GridFS implementation of the media store: the only module that names a bucket or a collection.

Layout (the GridFS spec, so `mongofiles` and any driver read it): per kind a bucket
(`voices`, `images`), i.e. a `<bucket>.files` collection (one document per file:
`length`, `chunkSize`, `uploadDate`, `filename`, `metadata: {roomId, username, contentType,
attachedTo}`)
and a `<bucket>.chunks` collection (`{files_id, n, data}` per `CHUNK_SIZE` bytes).

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

Reads use PyMongo's `AsyncGridFSBucket` (ranged: `seek` then `read`). The async methods
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

from chillout_project.errors import InvalidInput
from chillout_project.mongo import async_db, sync_db
from voice.kinds import KINDS, MediaKind

CHUNK_SIZE = 255 * 1024  # GridFS' default chunk size
FLUSH_CHUNKS = 4
BATCH = 500  # file ids per delete
BUCKETS = {"voice": "voices", "image": "images"}  # kind name → bucket name
ATTACHED_TO = "attachedTo"  # metadata field: the _id of the message that owns the file, or null
UNATTACHED = {f"metadata.{ATTACHED_TO}": {"$exists": True, "$eq": None}}  # uploaded since ownership, never claimed


def bucket_name(kind: MediaKind) -> str:
    return BUCKETS[kind.name]


def files_collection(db, kind: MediaKind):
    """`<bucket>.files` of `db` (sync or async database)."""
    return db[f"{bucket_name(kind)}.files"]


def chunks_collection(db, kind: MediaKind):
    return db[f"{bucket_name(kind)}.chunks"]


class GridFSUpload:
    """One file on its way in: chunks written as they fill, the files document at `close`."""

    def __init__(self, *, kind: MediaKind, room_id: str, filename: str, content_type: str):
        db = async_db()
        self._files = files_collection(db, kind)
        self._chunks = chunks_collection(db, kind)
        self.file_id = ObjectId()
        self.filename = filename
        self.metadata = {"roomId": room_id, "username": None, "contentType": content_type, ATTACHED_TO: None}
        self.length = 0
        self._buffer = bytearray()
        self._pending: list[dict] = []
        self._next_n = 0
        self.closed = False

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.length += len(data)
        while len(self._buffer) >= CHUNK_SIZE:
            self._take_chunk(bytes(self._buffer[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]
        if len(self._pending) >= FLUSH_CHUNKS:
            await self._flush()

    async def close(self, *, username: str) -> ObjectId:
        """Write the remaining chunks, then the files document that makes the file visible."""
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
        return self.file_id

    async def abort(self) -> None:
        self._pending.clear()
        self._buffer.clear()
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
    """An open stored file: its length and type, and its bytes from any offset."""

    def __init__(self, grid_out):
        self._grid_out = grid_out
        self.length: int = grid_out.length
        self.content_type: str | None = (grid_out.metadata or {}).get("contentType")

    async def read_range(self, *, start: int, length: int, piece: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """`length` bytes from `start`, one chunk (one database read) per piece."""
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

    def upload(self, *, kind: MediaKind, room_id: str, filename: str, content_type: str) -> GridFSUpload:
        return GridFSUpload(kind=kind, room_id=room_id, filename=filename, content_type=content_type)

    async def open(self, *, kind: MediaKind, file_id: ObjectId) -> GridFSFile | None:
        try:
            grid_out = await AsyncGridFSBucket(async_db(), bucket_name=bucket_name(kind)).open_download_stream(file_id)
        except NoFile:
            return None
        return GridFSFile(grid_out)

    async def delete(self, *, kind: MediaKind, file_id: ObjectId) -> bool:
        try:
            await AsyncGridFSBucket(async_db(), bucket_name=bucket_name(kind)).delete(file_id)
        except NoFile:
            return False
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
        await chunks_collection(db, kind).delete_many({"files_id": file_doc["_id"]})
        return True

    async def in_room(self, *, kind: MediaKind, file_id: ObjectId, room_id: str) -> bool:
        found = await files_collection(async_db(), kind).find_one(
            {"_id": file_id, "metadata.roomId": room_id}, projection={"_id": 1}
        )
        return found is not None

    async def room_ids(self) -> set[str]:
        """Every roomId that owns a file (`distinct`, answered from the metadata.roomId index)."""
        owners: set[str] = set()
        for kind in KINDS.values():
            values = await files_collection(async_db(), kind).distinct("metadata.roomId")
            owners.update(v for v in values if isinstance(v, str))
        return owners

    async def room_delete(
        self, *, room_id: str, older_than: datetime | None = None, dry_run: bool = False
    ) -> dict[str, tuple[int, int]]:
        """Delete (or count) a room's files, optionally only older ones: bucket → (files, bytes)."""
        db = async_db()
        counts: dict[str, tuple[int, int]] = {}
        for kind in KINDS.values():
            files, chunks = files_collection(db, kind), chunks_collection(db, kind)
            file_filter: dict = {"metadata.roomId": room_id}
            if older_than is not None:
                file_filter["uploadDate"] = {"$lt": older_than}
            found = await files.find(file_filter, {"_id": 1, "length": 1}).to_list(None)
            for start in range(0, len(found), BATCH):
                batch = found[start : start + BATCH]
                ids = [f["_id"] for f in batch]
                if not dry_run:
                    await files.delete_many({"_id": {"$in": ids}})
                    await chunks.delete_many({"files_id": {"$in": ids}})
                number, size = counts.get(bucket_name(kind), (0, 0))
                counts[bucket_name(kind)] = (number + len(ids), size + sum(int(f.get("length", 0)) for f in batch))
        return counts

    def totals_sync(self) -> dict[str, dict[str, int]]:
        """bucket → {files, bytes}, every bucket listed."""
        totals = {}
        for kind in KINDS.values():
            rows = list(
                files_collection(sync_db(), kind).aggregate(
                    [{"$group": {"_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"}}}]
                )
            )
            totals[bucket_name(kind)] = {"files": rows[0]["files"] if rows else 0, "bytes": rows[0]["bytes"] if rows else 0}
        return totals

    def bytes_by_room_sync(self, *, room_ids: list[str]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for kind in KINDS.values():
            for row in files_collection(sync_db(), kind).aggregate(
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
        for kind in KINDS.values():
            names.append(files_collection(db, kind).create_index([("metadata.roomId", ASCENDING)]))
            names.append(
                files_collection(db, kind).create_index(
                    [(f"metadata.{ATTACHED_TO}", ASCENDING), ("uploadDate", ASCENDING)]
                )
            )
            names.append(
                chunks_collection(db, kind).create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
            )
        return names

