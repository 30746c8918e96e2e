"""Parsing of Socket.IO event payloads into typed values, before anything else runs.

The original server destructured whatever arrived and died on an event without a payload;
it also passed `{"$ne": null}` straight into queries. Here every payload must be one JSON
object, every field is checked for its Python type and length first (via the same `check_*`
validators as the REST API), and anything else raises `InvalidInput`, whose text goes back
in the acknowledgement. Nothing here touches the database or the shared state.

The size of a whole packet is capped by the engine (`MAX_PACKET_BYTES`); the opaque WebRTC
bodies relayed for calls (`offer`, `answer`, `candidate`) are checked to be objects of at
most `MAX_RELAY_BYTES` as compact JSON (a real SDP offer is 2–10 KB): every relayed byte is
queued for another socket, which must not be flooded through its peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bson import ObjectId
from django.conf import settings

from chillout_project.errors import InvalidInput
from realtime.guards import json_bytes
from rooms.validators import check_message_text, check_object_id, check_room_id, check_username
from voice.kinds import MediaKind
from voice.services import media_path_parse

MAX_SID_CHARS = 64
MAX_MEDIA_URL_CHARS = 2048


class RelayTooLarge(InvalidInput):
    """A WebRTC body over MAX_RELAY_BYTES (its own reason on /metrics)."""

    code = "relay_too_large"


@dataclass(frozen=True)
class RoomPayload:
    """An event about a room, with the name the client claims (None: no claim)."""

    room_id: str
    username: str | None = None


@dataclass(frozen=True)
class TextPayload:
    room_id: str
    username: str | None
    text: str


@dataclass(frozen=True)
class MediaPayload:
    room_id: str
    username: str | None
    file_id: ObjectId


@dataclass(frozen=True)
class DeletePayload:
    room_id: str
    message_id: ObjectId


@dataclass(frozen=True)
class RelayPayload:
    to: str
    body: dict


def payload_object(args: tuple) -> dict:
    """The event's single argument, which must be a JSON object whose text fields are Unicode text.

    JSON can carry lone surrogates (`"\\ud800"`, which the server's JSON fallback accepts);
    no UTF-8 store or peer can take them, so they are refused here for every field rather
    than failing deep in the BSON encoder as an internal error.
    """
    if len(args) != 1 or not isinstance(args[0], dict):
        raise InvalidInput("payload must be an object")
    if not all(is_unicode_text(value) for value in args[0].values() if isinstance(value, str)):
        raise InvalidInput("text fields must be valid Unicode (no lone surrogates)")
    return args[0]


def is_unicode_text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_claimed_username(value: object) -> str | None:
    """The name an event claims to come from; missing or empty claims nothing."""
    if value is None or value == "":
        return None
    return check_username(value)


def payload_join(data: dict) -> RoomPayload:
    """`join_room`: a missing or empty name binds `Anonymous`."""
    return RoomPayload(room_id=check_room_id(data.get("roomId")), username=check_username(data.get("username")))


def payload_room(data: dict) -> RoomPayload:
    return RoomPayload(
        room_id=check_room_id(data.get("roomId")), username=check_claimed_username(data.get("username"))
    )


def payload_text(data: dict) -> TextPayload:
    room = payload_room(data)
    return TextPayload(room_id=room.room_id, username=room.username, text=check_message_text(data.get("message")))


def payload_media(data: dict, *, kind: MediaKind) -> MediaPayload:
    room = payload_room(data)
    return MediaPayload(
        room_id=room.room_id, username=room.username, file_id=check_media_url(data.get("url"), kind=kind)
    )


def payload_delete(data: dict) -> DeletePayload:
    return DeletePayload(
        room_id=check_room_id(data.get("roomId")),
        message_id=check_object_id(data.get("messageId"), field="messageId"),
    )


def payload_relay(data: dict, *, body_key: str) -> RelayPayload:
    to = data.get("to")
    if not isinstance(to, str) or not to or len(to) > MAX_SID_CHARS:
        raise InvalidInput("to must be a socket id")
    body = data.get(body_key)
    if not isinstance(body, dict):
        raise InvalidInput(f"{body_key} must be an object")
    if json_bytes(body) > settings.MAX_RELAY_BYTES > 0:
        raise RelayTooLarge(f"{body_key} must be at most {settings.MAX_RELAY_BYTES} bytes")
    return RelayPayload(to=to, body=body)


def check_media_url(value: object, *, kind: MediaKind) -> ObjectId:
    """The file id in `/api/<kind>/<id>`, relative or behind any `http(s)://host`.

    The host is not trusted and not kept: the server stores the path and builds absolute
    URLs itself.
    """
    expected = f"url must be a {kind.name} file URL of this server ({kind.path('<id>')})"
    if not isinstance(value, str) or len(value) > MAX_MEDIA_URL_CHARS:
        raise InvalidInput(expected)
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(expected) from None
    if (parts.scheme or parts.netloc) and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise InvalidInput(expected)
    parsed = media_path_parse(parts.path) if not (parts.query or parts.fragment) else None
    if parsed is None or parsed[0] != kind:
        raise InvalidInput(expected)
    return parsed[1]
