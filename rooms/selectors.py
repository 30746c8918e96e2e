"""Reads of rooms and messages (async, PyMongo's native driver)."""

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from chillout_project.mongo import async_db


async def room_find(*, room_id: str) -> dict | None:
    return await async_db().rooms.find_one({"roomId": room_id})


async def message_get(*, room_id: str, message_id: ObjectId) -> dict | None:
    return await async_db().messages.find_one({"_id": message_id, "roomId": room_id})


async def message_list(*, room_id: str, limit: int | None = None, before: ObjectId | None = None) -> list[dict]:
    """A room's messages oldest first: all of them, or the newest `limit` (older than `before`)."""
    messages = async_db().messages
    if limit is None:
        return await messages.find({"roomId": room_id}).sort("_id", ASCENDING).to_list(None)
    query: dict = {"roomId": room_id}
    if before is not None:
        query["_id"] = {"$lt": before}
    newest = await messages.find(query).sort("_id", DESCENDING).limit(limit).to_list(None)
    newest.reverse()
    return newest
