"""GridFS buckets and their indexes."""

from gridfs import AsyncGridFSBucket
from pymongo import ASCENDING

from chillout_project.mongo import async_db, sync_db
from voice.kinds import KINDS, MediaKind


def media_bucket(kind: MediaKind) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(async_db(), bucket_name=kind.bucket)


def media_indexes_ensure() -> list[str]:
    """Index file metadata by room, so a room's media are found without a scan (purge, export),
    and chunks by (files_id, n) as the GridFS spec does: our own writer (`gridfs_writer`) does
    not create it the way PyMongo's GridIn does, and without it every chunk read of a
    download scans the whole chunks collection."""
    db = sync_db()
    names = []
    for kind in KINDS.values():
        names.append(db[f"{kind.bucket}.files"].create_index([("metadata.roomId", ASCENDING)]))
        names.append(
            db[f"{kind.bucket}.chunks"].create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
        )
    return names
