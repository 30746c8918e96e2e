"""Figures about what the database holds, for `manage.py room_stats` (sync PyMongo).

Aggregations run on the server side; each is one pass over its collection, so this is an
operator's command, not something to call per request.
"""

from __future__ import annotations

from pymongo import DESCENDING

from chillout_project.mongo import sync_db
from voice.kinds import KINDS


def room_stats_collect(*, top: int = 5) -> dict:
    db = sync_db()
    by_type = {row["_id"]: row["n"] for row in db.messages.aggregate([{"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
    media = {}
    for kind in KINDS.values():
        rows = list(
            db[f"{kind.bucket}.files"].aggregate(
                [{"$group": {"_id": None, "files": {"$sum": 1}, "bytes": {"$sum": "$length"}}}]
            )
        )
        media[kind.bucket] = {"files": rows[0]["files"] if rows else 0, "bytes": rows[0]["bytes"] if rows else 0}

    largest = list(
        db.messages.aggregate(
            [
                {"$group": {"_id": "$roomId", "messages": {"$sum": 1}}},
                {"$sort": {"messages": -1, "_id": 1}},
                {"$limit": top},
            ]
        )
    )
    largest_ids = [row["_id"] for row in largest]
    media_bytes = _media_bytes_by_room(largest_ids)
    last_activity = {r["roomId"]: r["lastActivity"] for r in db.rooms.find({"roomId": {"$in": largest_ids}})}

    recent = list(db.rooms.find({}, {"roomId": 1, "lastActivity": 1}).sort("lastActivity", DESCENDING).limit(top))
    recent_counts = {
        row["_id"]: row["n"]
        for row in db.messages.aggregate(
            [{"$match": {"roomId": {"$in": [r["roomId"] for r in recent]}}}, {"$group": {"_id": "$roomId", "n": {"$sum": 1}}}]
        )
    }
    return {
        "rooms": db.rooms.count_documents({}),
        "messages": sum(by_type.values()),
        "messagesByType": dict(sorted(by_type.items())),
        "media": media,
        "mediaBytes": sum(m["bytes"] for m in media.values()),
        "largestRooms": [
            {
                "roomId": row["_id"],
                "messages": row["messages"],
                "mediaBytes": media_bytes.get(row["_id"], 0),
                "lastActivity": last_activity.get(row["_id"]),
            }
            for row in largest
        ],
        "recentRooms": [
            {"roomId": r["roomId"], "lastActivity": r["lastActivity"], "messages": recent_counts.get(r["roomId"], 0)}
            for r in recent
        ],
    }


def _media_bytes_by_room(room_ids: list[str]) -> dict[str, int]:
    db = sync_db()
    totals: dict[str, int] = {}
    for kind in KINDS.values():
        for row in db[f"{kind.bucket}.files"].aggregate(
            [
                {"$match": {"metadata.roomId": {"$in": room_ids}}},
                {"$group": {"_id": "$metadata.roomId", "bytes": {"$sum": "$length"}}},
            ]
        ):
            totals[row["_id"]] = totals.get(row["_id"], 0) + row["bytes"]
    return totals
