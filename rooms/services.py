"""Writes to rooms and messages: the only place that changes them, cache invalidation included.

Every write to a room moves its `lastActivity` (contract §2), so an active room never
expires. The room is touched *before* the message is inserted: the purge removes messages
whose room is gone, and a message must never exist, even briefly, under a room that is
about to expire.

Coalesced touches. The room document's `lastActivity` only feeds a TTL of
`ROOM_TTL_SECONDS` (30 days). A message write moves it when this process has not moved it
in the last `touch_resolution()` seconds; so the stored value is never older than that
resolution behind the room's newest write, which is far inside the TTL (the resolution is
capped at 1 % of it): a room written to never expires, and the purge's re-check of
`lastActivity` stays sound. A touch in flight is shared by the writes that arrive meanwhile,
so none of them stores its message before the room is touched. Joins likewise read the
room document at most once per resolution (`room_ensure`). Uploads and deletes, which are
rare, touch every time. Concurrent message inserts go out grouped (`rooms.writes.InsertGroup`).

The trade-off: a room deleted on purpose (`manage.py delete_room`, from another process) is
not re-created by this process's writes for up to the resolution; messages stored meanwhile
have no room, and the purge removes them as it removes any orphan.

History caches (`rooms.history`) are invalidated here: a delete or an edit gives the room a
new `historyVersion` (seen by every process on its next read) and drops this process's entry.
Every stored message is noted to this process's cache once acknowledged (so its reads need
not fetch it back), and every failed insert too (it may have landed all the same).

Exactly-once sends (`message_create_once`): a send that carries a `clientOffset` is stored
at most once per (roomId, username, clientOffset), whichever process gets the repeat, by a
unique partial index. The insert is tried first (a new send, the common case, costs no
read); a repeat, or the loser of a race between two copies, fails on the index, reads and
returns the original, and its caller broadcasts nothing.

Callers (REST views, socket handlers) broadcast only after these functions return, i.e.
after the write is acknowledged by the database, i.e. durable (`MONGO_WRITE_CONCERN`). Media
files are `voice`'s: a media message claims its file (`message_media_create`), and a caller
that deletes a media message asks `voice.media.media_delete_by_path` to delete the file the
message owns.
"""

import asyncio
import functools
from datetime import datetime

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from chillout_project import metrics
from chillout_project.errors import Forbidden, InvalidInput, NotFound
from chillout_project.mongo import async_db
from chillout_project.validators import check_object_id
from rooms.documents import (
    CLIENT_OFFSET,
    CREATED_AT,
    EDITED_AT,
    HISTORY_VERSION,
    LAST_ACTIVITY,
    MESSAGES,
    ROOM_ID,
    ROOM_VERSION,
    ROOMS,
    message_new,
    room_new,
    touch_resolution,
)
from rooms.history import history_forget, history_note_failed, history_note_stored
from rooms.wire import utc_now
from rooms.writes import InsertGroup, RecentKeys, write_retrying
from voice.kinds import MediaKind
from voice.media import media_attach, media_attach_refusal, media_description, media_detach


# A media send racing its twin (same clientOffset) waits this long at most for the winner's insert.
TWIN_WAIT_SECONDS = 2.0
TWIN_POLL_SECONDS = 0.02


async def _messages_insert_many(docs: list[dict]) -> None:
    await async_db()[MESSAGES].insert_many(docs, ordered=False)


_message_inserts = InsertGroup(insert_many=_messages_insert_many)
_touched = RecentKeys(window=touch_resolution)  # lastActivity moved by this process
_known = RecentKeys(window=touch_resolution)  # the room document was found, created or touched here


async def room_get_or_create(*, room_id: str) -> dict:
    """Atomic under concurrency: parallel first calls all get the one room.

    `find_one_and_update(upsert)` would be one round trip, but the embedded server scans
    the whole collection for findAndModify; a find, then an insert that may lose the race
    on the unique index, stays indexed on every server.
    """
    rooms = async_db()[ROOMS]
    room = await rooms.find_one({ROOM_ID: room_id})
    if room is not None:
        return room
    room = room_new(room_id=room_id, last_activity=utc_now())
    try:
        # Retried on a dead pooled connection: a retry that finds its own insert done
        # fails on the unique roomId, and is answered like a lost race, by reading.
        await write_retrying(operation=lambda: rooms.insert_one(room))
    except DuplicateKeyError:
        return await rooms.find_one({ROOM_ID: room_id})
    return room


async def room_ensure(*, room_id: str) -> None:
    """Make sure the room exists, as a join must: one database read per room and process per
    `touch_resolution()` at most, since a room this process found, created or touched that
    recently cannot have expired (the TTL is 100× longer at least)."""
    await _known.once(key=room_id, action=functools.partial(room_get_or_create, room_id=room_id))


async def room_touch(*, room_id: str, at: datetime | None = None, history_changed: bool = False) -> None:
    """Set `lastActivity` (creating the room if it expired meanwhile).

    `history_changed` gives the room a new `historyVersion`: caches of its history
    (`rooms.history`) drop what they hold when it differs, which is how a delete reaches
    every process.
    """
    rooms = async_db()[ROOMS]
    fields = {LAST_ACTIVITY: at or utc_now()}
    if history_changed:
        fields[HISTORY_VERSION] = ObjectId()
    update = {"$set": fields, "$setOnInsert": {ROOM_VERSION: 0}}

    async def upsert() -> None:
        try:
            await rooms.update_one({ROOM_ID: room_id}, update, upsert=True)
        except DuplicateKeyError:
            await rooms.update_one({ROOM_ID: room_id}, {"$set": fields})

    await write_retrying(operation=upsert)


async def room_touch_on_media_stored(sender, *, room_id: str, **kwargs) -> None:
    """Receiver of `voice.signals.media_stored` (connected in `RoomsConfig.ready`): an upload
    is a write to its room, so it moves `lastActivity` (creating the room if needed)."""
    await room_touch(room_id=room_id)


def room_forget(*, room_id: str) -> None:
    """The room's document is gone: the next write moves `lastActivity` (re-creating it)."""
    _touched.forget(key=room_id)
    _known.forget(key=room_id)
    history_forget(room_id=room_id)


async def message_create(
    *,
    room_id: str,
    username: str,
    text: str,
    type: str = "text",
    url: str | None = None,
    call_initiator: str | None = None,
    media: dict | None = None,
    client_offset: str | None = None,
    message_id: ObjectId | None = None,
) -> dict:
    """Store one message and return the stored document (the app makes `_id`/`createdAt`).

    `media`: the description of the file a media message names (`voice.media.media_description`).
    With `client_offset`, raises `DuplicateKeyError` when the same send is stored already
    (see `message_create_once`)."""
    doc = message_new(
        room_id=room_id,
        username=username,
        text=text,
        type=type,
        url=url,
        created_at=utc_now(),
        call_initiator=call_initiator,
        media=media,
        client_offset=client_offset,
        message_id=message_id,
    )
    await _message_store(doc)
    return doc


async def message_media_create(
    *, room_id: str, username: str, text: str, kind: MediaKind, file_id: ObjectId, client_offset: str | None = None
) -> dict:
    """Store a voice or image message that takes ownership of its uploaded file.

    Order: the file is claimed first, for the message's `_id` (made here), then the message
    (with the file's description) is inserted; if the insert fails the claim is undone. So
    a stored message always owns its file, and readers never see a message whose file
    another message won. What a
    crash of this process between the two steps leaves is a file claimed by no stored
    message: invisible to everyone, deleted with its room (docs/decisions.md).
    Raises `Forbidden` with the reason when the file cannot be claimed.
    """
    message_id = ObjectId()
    claim = {"kind": kind, "file_id": file_id}
    if not await media_attach(**claim, room_id=room_id, username=username, message_id=message_id):
        raise Forbidden(await media_attach_refusal(**claim, room_id=room_id, username=username))
    try:
        doc = message_new(
            room_id=room_id,
            username=username,
            text=text,
            type=kind.name,
            url=kind.path(file_id),
            created_at=utc_now(),
            media=await media_description(**claim),  # copied in: a history needs no lookup
            client_offset=client_offset,
        )
        doc["_id"] = message_id
        await _message_store(doc)
    except BaseException:
        await media_detach(**claim, message_id=message_id)
        raise
    return doc


async def _message_store(doc: dict) -> None:
    room_id = doc[ROOM_ID]
    await _touched.once(key=room_id, action=functools.partial(room_touch, room_id=room_id, at=doc[CREATED_AT]))
    _known.mark(key=room_id)
    try:
        await _message_inserts.insert(doc=doc)
    except DuplicateKeyError:
        raise  # a repeat: this document is not stored
    except BaseException:
        history_note_failed(room_id=room_id)  # it may have landed all the same
        raise
    history_note_stored(doc=doc)
    metrics.message_stored(type=doc["type"])


async def message_by_client_offset(*, room_id: str, username: str, client_offset: str) -> dict | None:
    return await async_db()[MESSAGES].find_one({ROOM_ID: room_id, "username": username, CLIENT_OFFSET: client_offset})


async def message_create_once(
    *,
    room_id: str,
    username: str,
    text: str,
    client_offset: str,
    type: str = "text",
    url: str | None = None,
    media: dict | None = None,
) -> tuple[dict, bool]:
    """Store a send identified by `client_offset` unless it is stored already.

    Returns the stored message and True, or the original and False for a repeat (after a
    lost acknowledgement, from any process). The insert comes first: a repeat, or a copy
    racing its original, loses on the unique index and reads the winner; a retried insert
    of our own document that the server reports as a duplicate is recognised by its `_id`.
    """
    message_id = ObjectId()
    try:
        return await message_create(
            room_id=room_id,
            username=username,
            text=text,
            type=type,
            url=url,
            media=media,
            client_offset=client_offset,
            message_id=message_id,
        ), True
    except DuplicateKeyError:
        original = await message_by_client_offset(room_id=room_id, username=username, client_offset=client_offset)
        if original is None:
            raise  # another unique index: not a repeat
        return original, original["_id"] == message_id  # ours: a retried insert whose first attempt landed


async def message_media_create_once(
    *, room_id: str, username: str, text: str, kind: MediaKind, file_id: ObjectId, client_offset: str
) -> tuple[dict, bool]:
    """`message_media_create` for a send identified by `client_offset` (see `message_create_once`).

    A repeat racing its original loses the file claim (or the unique index) and returns the
    winner, stored once. The winner claims the file before it inserts its message, so the
    loser waits for that insert (at most `TWIN_WAIT_SECONDS`, polled); if the winner's insert
    fails meanwhile (its claim undone), the loser's refusal stands and a retry can claim.
    """
    key = dict(room_id=room_id, username=username, client_offset=client_offset)
    try:
        return await message_media_create(
            room_id=room_id, username=username, text=text, kind=kind, file_id=file_id, client_offset=client_offset
        ), True
    except (Forbidden, DuplicateKeyError):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TWIN_WAIT_SECONDS
        while (original := await message_by_client_offset(**key)) is None and loop.time() < deadline:
            await asyncio.sleep(TWIN_POLL_SECONDS)
        if original is None:
            raise
        return original, False


async def check_message_author(*, room_id: str, message_id: str | ObjectId, username: str, verb: str) -> dict:
    """The message `message_id` of room `room_id` if `username` wrote it (reads, never writes).

    `verb` names the refused action in the error ("edit", "delete")."""
    if not isinstance(message_id, ObjectId):
        message_id = check_object_id(message_id, field="messageId")
    doc = await async_db()[MESSAGES].find_one({"_id": message_id, ROOM_ID: room_id})
    if doc is None:
        raise NotFound("message not found")
    if doc.get("username") != username:
        raise Forbidden(f"only the author of a message can {verb} it")
    return doc


async def message_edit(*, room_id: str, message_id: str | ObjectId, username: str, text: str) -> dict:
    """Replace a text message's text; only its author may. Returns the edited document, with `editedAt`.

    The room gets a new `historyVersion`, so every process's history cache re-reads it.
    Two edits of one message racing from two sockets of its author: the last write wins
    in the database; their broadcasts may reach the room in the other order.
    """
    doc = await check_message_author(room_id=room_id, message_id=message_id, username=username, verb="edit")
    message_id = doc["_id"]
    messages = async_db()[MESSAGES]
    if doc.get("type") != "text":
        raise InvalidInput("only text messages can be edited")
    now = utc_now()
    result = await messages.update_one({"_id": message_id, ROOM_ID: room_id}, {"$set": {"message": text, EDITED_AT: now}})
    if result.matched_count == 0:
        raise NotFound("message not found")  # deleted meanwhile
    await room_touch(room_id=room_id, at=now, history_changed=True)  # after the edit: see rooms.history
    history_forget(room_id=room_id)
    return {**doc, "message": text, EDITED_AT: now}


async def message_delete(*, room_id: str, message_id: str | ObjectId, username: str) -> dict:
    """Delete a message; only its author may. Returns the deleted document (with its `url`:
    the caller asks `voice` to delete that file)."""
    doc = await check_message_author(room_id=room_id, message_id=message_id, username=username, verb="delete")
    message_id = doc["_id"]
    messages = async_db()[MESSAGES]
    await messages.delete_one({"_id": message_id, ROOM_ID: room_id})
    await room_touch(room_id=room_id, history_changed=True)  # after the delete: see rooms.history
    history_forget(room_id=room_id)
    return doc
