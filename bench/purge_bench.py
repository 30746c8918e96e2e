"""What one purge pass costs: 10,000 expired messages and 100 media files (not a test).

Usage: python bench/purge_bench.py [--rooms 10] [--messages 10000] [--files 100] [--file-kib 100]
Starts a throwaway embedded database (or uses MONGO_URI), seeds expired rooms directly,
times `room_purge_expired()` and checks that nothing is left.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chillout_project.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--file-kib", type=int, default=100)
    args = parser.parse_args()

    from chillout_project.embedded_db import start_or_reuse

    database = None
    if not os.environ.get("MONGO_URI"):
        database = start_or_reuse(Path(tempfile.mkdtemp(prefix="purge-bench-")))
        os.environ["MONGO_URI"] = f"{database.uri}/purge_bench"

    import django

    django.setup()
    import gridfs
    from bson import ObjectId

    from chillout_project.mongo import connect, sync_db
    from rooms.purge import room_purge_expired
    from voice.gridfs_store import bucket_name, chunks_collection, files_collection
    from voice.kinds import IMAGE, VOICE

    connect()
    db = sync_db()
    old = datetime.now(UTC) - timedelta(days=40)
    room_ids = [f"bench-{i}" for i in range(args.rooms)]
    db.rooms.insert_many([{"_id": ObjectId(), "roomId": r, "lastActivity": old, "__v": 0} for r in room_ids])
    batch = [
        {"_id": ObjectId(), "roomId": room_ids[i % args.rooms], "username": "u", "message": f"message {i} " * 5,
         "type": "text", "url": None, "createdAt": old}
        for i in range(args.messages)
    ]
    for start in range(0, len(batch), 1000):
        db.messages.insert_many(batch[start : start + 1000])
    blob = b"\x89PNG\r\n\x1a\n" + os.urandom(args.file_kib * 1024)
    for i in range(args.files):
        kind = IMAGE if i % 2 else VOICE
        bucket = gridfs.GridFSBucket(db, bucket_name=bucket_name(kind))
        file_id = bucket.upload_from_stream("b", blob, metadata={"roomId": room_ids[i % args.rooms], "username": "u"})
        files_collection(db, kind).update_one({"_id": file_id}, {"$set": {"uploadDate": old}})
    print(f"seeded {args.rooms} rooms, {args.messages} messages, {args.files} files of {args.file_kib} KiB")

    started = time.perf_counter()
    report = asyncio.run(room_purge_expired())
    elapsed = time.perf_counter() - started
    left = (db.messages.count_documents({}) + files_collection(db, VOICE).count_documents({})
            + chunks_collection(db, IMAGE).count_documents({}))
    print(f"purge: {report.rooms} rooms, {report.messages} messages, {report.files_total} files, "
          f"{report.bytes} bytes in {elapsed:.2f} s (left: {left})")
    if database is not None:
        database.stop()


if __name__ == "__main__":
    main()
