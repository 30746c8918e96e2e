"""`check_*`: client input refused with a clear text; the right type first, never a query operator."""

import pytest
from bson import ObjectId

from chillout_project.errors import InvalidInput
from rooms.validators import (
    ANONYMOUS_USERNAME,
    check_history_limit,
    check_message_text,
    check_object_id,
    check_room_id,
    check_username,
)


def test_room_ids(settings):
    assert check_room_id("r" * settings.MAX_ROOM_ID_CHARS) == "r" * settings.MAX_ROOM_ID_CHARS
    for bad, text in [("", "non-empty"), (None, "non-empty"), ({"$ne": None}, "non-empty"),
                      ("r" * (settings.MAX_ROOM_ID_CHARS + 1), "at most"), ("a/b", "'/'")]:
        with pytest.raises(InvalidInput, match=text):
            check_room_id(bad)


def test_usernames(settings):
    assert check_username(None) == check_username("") == ANONYMOUS_USERNAME
    assert check_username("ünïcode 🙂") == "ünïcode 🙂"
    for bad, text in [(["a"], "string"), ("u" * (settings.MAX_USERNAME_CHARS + 1), "at most"),
                      ("System", "reserved"), (" system ", "reserved")]:
        with pytest.raises(InvalidInput, match=text):
            check_username(bad)


def test_message_texts(settings):
    assert check_message_text("  hi  ") == "  hi  "  # stored as sent
    assert check_message_text("🙂" * settings.MAX_MESSAGE_CHARS)  # counted in code points
    for bad, text in [(1, "string"), (" \n\t", "empty"), ("x" * (settings.MAX_MESSAGE_CHARS + 1), "at most")]:
        with pytest.raises(InvalidInput, match=text):
            check_message_text(bad)


def test_object_ids():
    oid = ObjectId()
    assert check_object_id(str(oid), field="messageId") == oid
    for bad in [oid, "z" * 24, "a" * 12, b"a" * 12, None]:
        with pytest.raises(InvalidInput, match="messageId must be a 24-character hex id"):
            check_object_id(bad, field="messageId")


def test_history_limits(settings):
    assert check_history_limit(None) is None
    assert check_history_limit(str(settings.HISTORY_PAGE_MAX)) == settings.HISTORY_PAGE_MAX
    for bad, text in [("x", "integer"), ("0", "between"), (str(settings.HISTORY_PAGE_MAX + 1), "between")]:
        with pytest.raises(InvalidInput, match=text):
            check_history_limit(bad)
