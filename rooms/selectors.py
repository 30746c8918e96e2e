"""Reads of rooms and messages (async, PyMongo's native driver).

`room_history_get` is the one read of a room's history: it asks the per-process cache
(`rooms.history`) first and reads the database when the cache cannot answer, so callers
never know whether there is a cache.
"""

from collections.abc import AsyncIterator

from bson import ObjectId
from django.conf import settings
from pymongo import ASCENDING, DESCENDING

from chillout_project.errors import InvalidInput
from chillout_project.mongo import async_db
from rooms.documents import MESSAGES, ROOM_ID, ROOMS
from rooms.history import history_cached, history_prefetch
from rooms.wire import Part, message_part


async def room_find(*, room_id: str) -> dict | None:
    return await async_db()[ROOMS].find_one({ROOM_ID: room_id})


async def message_get(*, room_id: str, message_id: ObjectId) -> dict | None:
    return await async_db()[MESSAGES].find_one({"_id": message_id, ROOM_ID: room_id})


async def message_list(*, room_id: str, limit: int | None = None, before: ObjectId | None = None) -> list[dict]:
    """A room's messages oldest first: all of them, or the newest `limit` (older than `before`)."""
    messages = async_db()[MESSAGES]
    if limit is None:
        return await messages.find({ROOM_ID: room_id}).sort("_id", ASCENDING).to_list(None)
    query: dict = {ROOM_ID: room_id}
    if before is not None:
        query["_id"] = {"$lt": before}
    newest = await messages.find(query).sort("_id", DESCENDING).limit(limit).to_list(None)
    newest.reverse()
    return newest


def room_history_prefetch(*, room_id: str, full: bool) -> None:
    """Let the history cache start its part of the next read of the room now, while the caller
    reads the room document (`rooms.history.history_prefetch`); `full`: the whole history."""
    history_prefetch(room_id=room_id, full=full)


async def room_history_stream(*, room: dict) -> list[Part] | AsyncIterator[Part]:
    """The room's whole history as wire parts, oldest first: the cache's list when it holds
    all of it, else the parts one database batch at a time (`HISTORY_STREAM_BATCH`), so a
    read's memory stays bounded whatever the room's size.

    The first batch is read before this returns, so a database that is down fails here
    (503), not in the middle of a response. A message stored or deleted while the cursor
    runs may or may not be in it, as with any read of a changing room.
    """
    parts = await history_cached(room=room)
    if parts is not None:
        return parts
    cursor = (
        async_db()[MESSAGES]
        .find({ROOM_ID: room[ROOM_ID]})
        .sort("_id", ASCENDING)
        .batch_size(settings.HISTORY_STREAM_BATCH)
    )
    first = await cursor.to_list(settings.HISTORY_STREAM_BATCH)  # the cursor goes on after these
    return _parts_streamed(first=first, cursor=cursor)


async def _parts_streamed(*, first: list[dict], cursor) -> AsyncIterator[Part]:
    try:
        for doc in first:
            yield message_part(doc)
        async for doc in cursor:
            yield message_part(doc)
    finally:
        await cursor.close()


async def room_history_get(*, room: dict, limit: int | None = None, before: ObjectId | None = None) -> list[Part]:
    """The room's messages as wire parts, oldest first: all, or the newest `limit` older than
    `before`. Raises `InvalidInput` when `before` is not a message of this room."""
    room_id = room[ROOM_ID]
    if before is not None and await message_get(room_id=room_id, message_id=before) is None:
        raise InvalidInput("before is not a message of this room")
    parts = await history_cached(room=room, limit=limit, before=before)
    if parts is None:
        parts = [message_part(doc) for doc in await message_list(room_id=room_id, limit=limit, before=before)]
    return parts
