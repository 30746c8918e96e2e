"""Identity checks every app needs (room ids, usernames, object ids): pure, no app imports.

They live in the core because `voice` (uploads) and `rooms` (messages) both validate the same
identities and `voice` may not import `rooms`. Every check insists on the Python type first:
a `{"$ne": null}` object where a string belongs is just a bad value, never a query operator.
"""

from bson import ObjectId
from django.conf import settings

from chillout_project.errors import InvalidInput
from chillout_project.names import SYSTEM_USERNAME, name_is_reserved

ANONYMOUS_USERNAME = "Anonymous"


def check_room_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("roomId must be a non-empty string")
    if len(value) > settings.MAX_ROOM_ID_CHARS:
        raise InvalidInput(f"roomId must be at most {settings.MAX_ROOM_ID_CHARS} characters")
    if "/" in value:
        raise InvalidInput("roomId must not contain '/'")
    return value


def check_username(value: object) -> str:
    """A display name; empty or missing binds `Anonymous`; `System` is reserved, and so is
    any name that could pass for it on screen (its Unicode skeleton: `chillout_project.names`)."""
    if value is None or value == "":
        return ANONYMOUS_USERNAME
    if not isinstance(value, str):
        raise InvalidInput("username must be a string")
    if len(value) > settings.MAX_USERNAME_CHARS:
        raise InvalidInput(f"username must be at most {settings.MAX_USERNAME_CHARS} characters")
    if name_is_reserved(value):
        raise InvalidInput("the username System is reserved")
    return value


def check_object_id(value: object, *, field: str) -> ObjectId:
    if not isinstance(value, str) or not ObjectId.is_valid(value) or len(value) != 24:
        raise InvalidInput(f"{field} must be a 24-character hex id")
    return ObjectId(value)
