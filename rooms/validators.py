"""`check_*` functions: validate client input, raise `InvalidInput` with a clear text.

Shared by the REST views and the socket handlers, so both refuse the same things the same
way. The identity checks (room id, username, object id) are the core's
(`chillout_project.validators`, since `voice` needs them too) and are re-exported here;
the message and history checks are the rooms app's own.
"""

from django.conf import settings

from chillout_project.errors import InvalidInput
from chillout_project.validators import (
    ANONYMOUS_USERNAME,
    SYSTEM_USERNAME,
    check_object_id,
    check_room_id,
    check_username,
)

__all__ = [
    "ANONYMOUS_USERNAME",
    "SYSTEM_USERNAME",
    "check_history_limit",
    "check_message_text",
    "check_object_id",
    "check_room_id",
    "check_username",
]


def check_message_text(value: object) -> str:
    """Counted in code points; must contain a non-whitespace character; stored as sent."""
    if not isinstance(value, str):
        raise InvalidInput("message must be a string")
    if not value.strip():
        raise InvalidInput("message must not be empty")
    if len(value) > settings.MAX_MESSAGE_CHARS:
        raise InvalidInput(f"message must be at most {settings.MAX_MESSAGE_CHARS} characters")
    return value


def check_history_limit(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        limit = int(value)
    except ValueError:
        raise InvalidInput("limit must be an integer") from None
    if not 1 <= limit <= settings.HISTORY_PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {settings.HISTORY_PAGE_MAX}")
    return limit
