"""Writes to rooms and messages: the only place that changes them.

Every write to a room moves its `lastActivity` (contract §2), so an active room never
expires. The room is touched *before* the message is inserted: the purge removes messages
whose room is gone, and a message must never exist, even briefly, under a room that is
about to expire.

Message writes coalesce the touch to one per `ROOM_TOUCH_RESOLUTION_SECONDS` per room and
process, and group concurrent inserts (`rooms.writes`): "every write moves lastActivity"
holds at that resolution. Uploads and deletes, which are rare, touch every time.

Callers (REST views, socket handlers) broadcast only after these functions return, i.e.
after the write is acknowledged by the database.
"""

from datetime import datetime

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from chillout_project import metrics
from chillout_project.errors import Forbidden, NotFound
from chillout_project.mongo import async_db
from rooms.wire import utc_now
from rooms.writes import known, message_insert, room_touch_coalesced, write_retrying


async def room_get_or_create(*, room_id: str) -> dict:
    """Atomic under concurrency: parallel first calls all get the one room.

    `find_one_and_update(upsert)` would be one round trip, but the embedded server scans
    the whole collection for findAndModify; a find, then an insert that may lose the race
    on the unique index, stays indexed on every server.
    """
    rooms = async_db().rooms
    room = await rooms.find_one({"roomId": room_id})
    if room is not None:
        return room
    room = {"_id": ObjectId(), "roomId": room_id, "lastActivity": utc_now(), "__v": 0}
    try:
        # Retried on a dead pooled connection: a retry that finds its own insert done
        # fails on the unique roomId, and is answered like a lost race, by reading.
        await write_retrying(operation=lambda: rooms.insert_one(room))
    except DuplicateKeyError:
        return await rooms.find_one({"roomId": room_id})
    return room


async def room_ensure(*, room_id: str) -> None:
    """Make sure the room exists, as a join must: one database read per room and process per
    `ROOM_TOUCH_RESOLUTION_SECONDS` at most, since a room this process found, created or
    touched that recently cannot have expired (the TTL is 100× longer at least)."""
    await known.once(room_id=room_id, action=lambda: room_get_or_create(room_id=room_id))


async def room_touch(*, room_id: str, at: datetime | None = None, history_changed: bool = False) -> None:
    """Set `lastActivity` (creating the room if it expired meanwhile).

    `history_changed` gives the room a new `historyVersion`: caches of its history
    (`rooms.history`) drop what they hold when it differs, which is how a delete reaches
    every process.
    """
    rooms = async_db().rooms
    fields = {"lastActivity": at or utc_now()}
    if history_changed:
        fields["historyVersion"] = ObjectId()
    update = {"$set": fields, "$setOnInsert": {"__v": 0}}

    async def upsert() -> None:
        try:
            await rooms.update_one({"roomId": room_id}, update, upsert=True)
        except DuplicateKeyError:
            await rooms.update_one({"roomId": room_id}, {"$set": fields})

    await write_retrying(operation=upsert)


async def message_create(
    *,
    room_id: str,
    username: str,
    text: str,
    type: str = "text",
    url: str | None = None,
    call_initiator: str | None = None,
) -> dict:
    """Store one message and return the stored document (the app makes `_id`/`createdAt`)."""
    now = utc_now()
    doc = {
        "_id": ObjectId(),
        "roomId": room_id,
        "username": username,
        "message": text,
        "type": type,
        "url": url,
        "createdAt": now,
    }
    if call_initiator is not None:
        doc["callInitiator"] = call_initiator
    await room_touch_coalesced(room_id=room_id, touch=lambda: room_touch(room_id=room_id, at=now))
    await message_insert(doc=doc)
    metrics.message_stored(type=type)
    return doc


async def message_delete(*, room_id: str, message_id: ObjectId, username: str) -> dict:
    """Delete a message and its media file; only its author may. Returns the deleted doc."""
    from voice.services import media_delete_by_path

    messages = async_db().messages
    doc = await messages.find_one({"_id": message_id, "roomId": room_id})
    if doc is None:
        raise NotFound("message not found")
    if doc.get("username") != username:
        raise Forbidden("only the author of a message can delete it")
    await messages.delete_one({"_id": message_id, "roomId": room_id})
    if doc.get("url"):
        await media_delete_by_path(path=doc["url"])
    await room_touch(room_id=room_id, history_changed=True)  # after the delete: see rooms.history
    return doc
