"""Figures about what the database holds, for `manage.py room_stats` (sync PyMongo).

Aggregations run on the server side; each is one pass over its collection, so this is an
operator's command, not something to call per request. Media figures come from
`voice.media`.
"""

from __future__ import annotations

from pymongo import DESCENDING

from chillout_project.mongo import sync_db
from voice.media import media_bytes_by_room_sync, media_totals_sync


def room_stats_collect(*, top: int = 5) -> dict:
    db = sync_db()
    by_type = {row["_id"]: row["n"] for row in db.messages.aggregate([{"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
    media = media_totals_sync()

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
    media_bytes = media_bytes_by_room_sync(room_ids=largest_ids)
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
