"""The MongoDB documents of a room and its messages.

A room's history is one document per message in `messages`, indexed by (roomId, _id), so
appending costs the same at 10 and at 100,000 messages and no room can hit the 16 MB
document cap. The room document stays small: it carries the TTL (`lastActivity`) that
expires the room after `ROOM_TTL_SECONDS` without a write.

These mongoengine classes are the one schema of both collections: every stored field
(including `historyVersion`, which history caches compare) and every index. Request and
socket hot paths read and write the same collections through PyMongo's async driver
(`rooms.services`, `rooms.selectors`, `rooms.history`, `rooms.purge`); the collection and
field names they use are the constants below, taken from these classes.
"""

from bson import ObjectId
from django.conf import settings
from mongoengine import DateTimeField, Document, IntField, ListField, ObjectIdField, StringField

MAX_CLIENT_OFFSET_CHARS = 64


def touch_resolution() -> float:
    """Seconds between two `lastActivity` moves of a room by message writes in one process
    (`rooms.services` coalesces them; `rooms.history` relies on the bound).

    `ROOM_TOUCH_RESOLUTION_SECONDS`, capped at 1 % of `ROOM_TTL_SECONDS` so that a short TTL
    (tests, demos) keeps touches fine-grained and a room can never expire while written to.
    """
    return min(settings.ROOM_TOUCH_RESOLUTION_SECONDS, settings.ROOM_TTL_SECONDS / 100)

MESSAGE_TYPES = ("text", "voice", "image", "call_notification", "call_ended")


class Room(Document):
    room_id = StringField(db_field="roomId", required=True, unique=True, max_length=settings.MAX_ROOM_ID_CHARS)
    last_activity = DateTimeField(db_field="lastActivity", required=True)
    version = IntField(db_field="__v", default=0)
    # A new value after every write that removes or replaces history (a delete): caches of
    # the room's history (`rooms.history`) drop what they hold when it differs. Unset until then.
    history_version = ObjectIdField(db_field="historyVersion", null=True)

    meta = {
        "collection": "rooms",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["last_activity"], "expireAfterSeconds": settings.ROOM_TTL_SECONDS},
        ],
    }


CLIENT_OFFSET_INDEX = "roomId_1_username_1_clientOffset_1"
# The same fields, not partial: what a repeat's lookup is planned on. The embedded database
# never plans a query on a partial index (it scans the collection instead), and real
# MongoDB uses this one as well as the partial one (docs/decisions.md).
CLIENT_OFFSET_LOOKUP_INDEX = "roomId_1_clientOffset_1_username_1"


class Message(Document):
    room_id = StringField(db_field="roomId", required=True)
    username = StringField(required=True)
    message = StringField(required=True)
    type = StringField(required=True, choices=MESSAGE_TYPES)
    url = StringField(null=True)
    created_at = DateTimeField(db_field="createdAt", required=True)
    call_initiator = StringField(db_field="callInitiator")
    # The media description, copied from the file when a media message is stored (history
    # needs no lookup in `voice`): voice notes `duration` (ms) and `waveform` (64 ints
    # 0–255), images `width` and `height` (as displayed). Absent on other messages.
    duration = IntField()
    waveform = ListField(IntField())
    width = IntField()
    height = IntField()
    # Set by an edit (`rooms.services.message_edit`); absent when never edited.
    edited_at = DateTimeField(db_field="editedAt")
    # The sender's id of this send (contract §4 `clientOffset`), never on the wire: a repeat
    # of the same (roomId, username, clientOffset) stores nothing new. Absent when not sent.
    client_offset = StringField(db_field="clientOffset", max_length=MAX_CLIENT_OFFSET_CHARS)

    meta = {
        "collection": "messages",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["room_id", "id"], "name": "roomId_1__id_1"},
            {
                "fields": ["room_id", "username", "client_offset"],
                "name": CLIENT_OFFSET_INDEX,
                "unique": True,
                "partialFilterExpression": {"clientOffset": {"$type": "string"}},
            },
            {"fields": ["room_id", "client_offset", "username"], "name": CLIENT_OFFSET_LOOKUP_INDEX},
        ],
    }


def _stored(document: type[Document], field: str) -> str:
    return document._fields[field].db_field


ROOMS = Room._meta["collection"]
MESSAGES = Message._meta["collection"]
ROOM_ID = _stored(Room, "room_id")  # the same name in both collections
LAST_ACTIVITY = _stored(Room, "last_activity")
ROOM_VERSION = _stored(Room, "version")
HISTORY_VERSION = _stored(Room, "history_version")
CREATED_AT = _stored(Message, "created_at")
CALL_INITIATOR = _stored(Message, "call_initiator")
EDITED_AT = _stored(Message, "edited_at")
CLIENT_OFFSET = _stored(Message, "client_offset")
MEDIA_FIELDS = tuple(_stored(Message, f) for f in ("duration", "waveform", "width", "height"))  # wire order too


def room_new(*, room_id: str, last_activity) -> dict:
    """A new room document, as the hot path inserts it (fields as `Room` declares them)."""
    return {"_id": ObjectId(), ROOM_ID: room_id, LAST_ACTIVITY: last_activity, ROOM_VERSION: 0}


def message_new(
    *,
    room_id: str,
    username: str,
    text: str,
    type: str,
    url: str | None,
    created_at,
    call_initiator=None,
    media=None,
    client_offset=None,
    message_id: ObjectId | None = None,
) -> dict:
    """A new message document (fields as `Message` declares them; `_id` made by the app,
    or `message_id`).

    `media`: the file's description (`MEDIA_FIELDS` keys); other keys are ignored."""
    doc = {
        "_id": message_id or ObjectId(),
        ROOM_ID: room_id,
        "username": username,
        "message": text,
        "type": type,
        "url": url,
        CREATED_AT: created_at,
    }
    if call_initiator is not None:
        doc[CALL_INITIATOR] = call_initiator
    for name in MEDIA_FIELDS:
        if media and media.get(name) is not None:
            doc[name] = media[name]
    if client_offset is not None:
        doc[CLIENT_OFFSET] = client_offset
    return doc
