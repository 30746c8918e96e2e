"""REST figures: GET /api/room latency by history size, media upload/download throughput.

    python bench/rest.py [--repeat 50]

Starts its own embedded database and a Daphne server; prints one JSON line per figure.
"""

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
from bson import ObjectId
from pymongo import MongoClient

from _harness import RssSampler, embedded_database, percentile, proc_rss_mb, server_process


def fill_room(db, room_id: str, count: int) -> None:
    """The room and `count` messages, as the services store them (a room document first:
    messages without one are orphans, which the server's purge removes)."""
    db.rooms.update_one(
        {"roomId": room_id}, {"$setOnInsert": {"lastActivity": datetime.now(UTC), "__v": 0}}, upsert=True
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    docs = [
        {
            "_id": ObjectId(),
            "roomId": room_id,
            "username": f"user{i % 7}",
            "message": f"message number {i} " + "x" * 80,
            "type": "text",
            "url": None,
            "createdAt": start + timedelta(milliseconds=i),
        }
        for i in range(count)
    ]
    for i in range(0, len(docs), 1000):
        db.messages.insert_many(docs[i : i + 1000])


def time_gets(client: httpx.Client, path: str, repeat: int) -> dict:
    client.get(path)  # warm-up
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    return {"p50_ms": round(statistics.median(samples), 2), "p90_ms": round(percentile(samples, 0.9), 2), "bytes": len(response.content)}


def media_figures(client: httpx.Client, pid: int, size_mb: int = 10) -> dict:
    header = b"RIFF" + (size_mb * 1024 * 1024 - 8).to_bytes(4, "little") + b"WAVEfmt "
    data = header + bytes(size_mb * 1024 * 1024 - len(header))
    rss_before = proc_rss_mb(pid)
    with RssSampler(pid) as sampler:
        t0 = time.perf_counter()
        response = client.post("/api/room/bench-media/voice", files={"voice": ("blob", data, "audio/wav")})
        upload_s = time.perf_counter() - t0
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    t0 = time.perf_counter()
    body = client.get(url).content
    download_s = time.perf_counter() - t0
    assert body == data
    return {
        "upload_MBps": round(size_mb / upload_s, 1),
        "download_MBps": round(size_mb / download_s, 1),
        "rss_before_upload_MB": round(rss_before, 1),
        "rss_peak_during_upload_MB": round(sampler.peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with embedded_database() as database:
        uri = f"{database.uri}/chillout_bench"
        db = MongoClient(uri).get_default_database()
        fill_room(db, "small", 10)
        fill_room(db, "large", 10_000)
        with server_process(uri) as (url, pid), httpx.Client(base_url=url, timeout=120) as client:
            for room in ("small", "large"):
                for query, label in (("?limit=50", "limit50"), ("", "full")):
                    figures = time_gets(client, f"/api/room/{room}{query}", args.repeat if room == "small" or query else 10)
                    print(json.dumps({"figure": f"GET room {label}", "messages": 10 if room == "small" else 10_000, **figures}))
            print(json.dumps({"figure": "media 10 MB", **media_figures(client, pid)}))


if __name__ == "__main__":
    main()
