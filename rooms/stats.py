"""Figures about what the database holds, for `manage.py room_stats` (sync PyMongo).

Aggregations run on the server side; each is one pass over its collection, so this is an
operator's command, not something to call per request. Media figures come from
`voice.media`.
"""

from __future__ import annotations

from pymongo import DESCENDING

from chillout_project.mongo import sync_db
from rooms.documents import LAST_ACTIVITY, MESSAGES, ROOM_ID, ROOMS
from voice.media import media_bytes_by_room_sync, media_totals_sync


def room_stats_collect(*, top: int = 5) -> dict:
    db = sync_db()
    by_type = {row["_id"]: row["n"] for row in db[MESSAGES].aggregate([{"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
    media = media_totals_sync()

    largest = list(
        db[MESSAGES].aggregate(
            [
                {"$group": {"_id": f"${ROOM_ID}", "messages": {"$sum": 1}}},
                {"$sort": {"messages": -1, "_id": 1}},
                {"$limit": top},
            ]
        )
    )
    largest_ids = [row["_id"] for row in largest]
    media_bytes = media_bytes_by_room_sync(room_ids=largest_ids)
    last_activity = {r[ROOM_ID]: r[LAST_ACTIVITY] for r in db[ROOMS].find({ROOM_ID: {"$in": largest_ids}})}

    recent = list(db[ROOMS].find({}, {ROOM_ID: 1, LAST_ACTIVITY: 1}).sort(LAST_ACTIVITY, DESCENDING).limit(top))
    recent_counts = {
        row["_id"]: row["n"]
        for row in db[MESSAGES].aggregate(
            [{"$match": {ROOM_ID: {"$in": [r[ROOM_ID] for r in recent]}}}, {"$group": {"_id": f"${ROOM_ID}", "n": {"$sum": 1}}}]
        )
    }
    return {
        "rooms": db[ROOMS].count_documents({}),
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
            {"roomId": r[ROOM_ID], "lastActivity": r[LAST_ACTIVITY], "messages": recent_counts.get(r[ROOM_ID], 0)}
            for r in recent
        ],
    }
