"""Index creation for rooms and messages, run at start-up and by `manage.py ensure_indexes`."""

import logging

from django.conf import settings

from rooms.documents import Message, Room

logger = logging.getLogger(__name__)

TTL_INDEX = "lastActivity_1"


def room_indexes_ensure() -> list[str]:
    """Create the room and message indexes; adjust the TTL when `ROOM_TTL_SECONDS` changed."""
    rooms = Room._get_collection()
    existing = rooms.index_information().get(TTL_INDEX)
    if existing and existing.get("expireAfterSeconds") != settings.ROOM_TTL_SECONDS:
        logger.info(
            "room TTL changes from %s to %s seconds",
            existing.get("expireAfterSeconds"),
            settings.ROOM_TTL_SECONDS,
        )
        rooms.drop_index(TTL_INDEX)
    Room.ensure_indexes()
    Message.ensure_indexes()
    return sorted(rooms.index_information()) + sorted(Message._get_collection().index_information())
