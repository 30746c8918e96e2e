"""PyMongo's async driver on the event loop vs the sync driver in a bounded thread pool.

    python bench/db_driver.py [--seconds 5] [--concurrency 8]

The two ways a Django async view can reach MongoDB without blocking the loop. For each,
C concurrent tasks on one asyncio loop repeat (a) the reads of `GET /api/room` (the room by
`roomId`, then its newest 50 messages from a 10-message room) and (b) a 10 MB GridFS
download, read in 255 KB pieces. Prints ops/s, p50 and the CPU seconds per op of this
process. The embedded database runs in its own process, as in the server.
"""

import argparse
import asyncio
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import gridfs
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient, MongoClient

from _harness import embedded_database, percentile
from rest import fill_room

PIECE = 255 * 1024


def room_read_sync(db):
    db.rooms.find_one({"roomId": "small"})
    return list(db.messages.find({"roomId": "small"}).sort("_id", -1).limit(50))


async def room_read_async(db):
    await db.rooms.find_one({"roomId": "small"})
    return await db.messages.find({"roomId": "small"}).sort("_id", -1).limit(50).to_list(None)


def download_sync(bucket, file_id):
    stream = bucket.open_download_stream(file_id)
    while stream.read(PIECE):
        pass


async def download_async(bucket, file_id):
    stream = await bucket.open_download_stream(file_id)
    while await stream.read(PIECE):
        pass


async def run(label: str, operation, seconds: float, concurrency: int) -> None:
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    cpu0 = time.process_time()

    async def worker():
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            await operation()
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "case": label,
                "ops_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(percentile(latencies, 0.99), 2),
                "client_cpu_ms_per_op": round(cpu / len(latencies) * 1000, 2),
            }
        )
    )


async def main(seconds: float, concurrency: int) -> None:
    with embedded_database() as database:
        uri = f"{database.uri}/chillout_bench"
        sync_db = MongoClient(uri).get_default_database()
        async_db = AsyncMongoClient(uri).get_default_database()
        fill_room(sync_db, "small", 10)
        file_id = gridfs.GridFSBucket(sync_db, "voices").upload_from_stream("f", b"\x01" * (10 * 1024 * 1024))
        pool = ThreadPoolExecutor(max_workers=concurrency)
        loop = asyncio.get_running_loop()
        sync_bucket = gridfs.GridFSBucket(sync_db, "voices")
        async_bucket = AsyncGridFSBucket(async_db, "voices")
        for _ in range(2):  # interleaved twice, to see the noise
            await run("room read: async driver", lambda: room_read_async(async_db), seconds, concurrency)
            await run(
                "room read: sync driver in thread pool",
                lambda: loop.run_in_executor(pool, room_read_sync, sync_db),
                seconds,
                concurrency,
            )
            await run("10 MB download: async driver", lambda: download_async(async_bucket, file_id), seconds, concurrency)
            await run(
                "10 MB download: sync driver in thread pool",
                lambda: loop.run_in_executor(pool, download_sync, sync_bucket, file_id),
                seconds,
                concurrency,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
