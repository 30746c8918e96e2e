"""The MongoDB documents of a room and its messages.

A room's history is one document per message in `messages`, indexed by (roomId, _id), so
appending costs the same at 10 and at 100,000 messages and no room can hit the 16 MB
document cap. The room document stays small: it carries the TTL (`lastActivity`) that
expires the room after `ROOM_TTL_SECONDS` without a write.

These mongoengine classes are the schema and the index definitions, and the sync API of
management commands. Request and socket hot paths read and write the same collections
through PyMongo's async driver (`rooms.services`, `rooms.selectors`).
"""

from django.conf import settings
from mongoengine import DateTimeField, Document, IntField, StringField

MESSAGE_TYPES = ("text", "voice", "image", "call_notification", "call_ended")


class Room(Document):
    room_id = StringField(db_field="roomId", required=True, unique=True, max_length=settings.MAX_ROOM_ID_CHARS)
    last_activity = DateTimeField(db_field="lastActivity", required=True)
    version = IntField(db_field="__v", default=0)

    meta = {
        "collection": "rooms",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["last_activity"], "expireAfterSeconds": settings.ROOM_TTL_SECONDS},
        ],
    }


class Message(Document):
    room_id = StringField(db_field="roomId", required=True)
    username = StringField(required=True)
    message = StringField(required=True)
    type = StringField(required=True, choices=MESSAGE_TYPES)
    url = StringField(null=True)
    created_at = DateTimeField(db_field="createdAt", required=True)
    call_initiator = StringField(db_field="callInitiator")

    meta = {
        "collection": "messages",
        "auto_create_index": False,
        "indexes": [{"fields": ["room_id", "id"], "name": "roomId_1__id_1"}],
    }
