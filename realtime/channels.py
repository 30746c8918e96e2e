"""Socket.IO room names: a chat room's channel never collides with a socket's own room.

python-socketio puts every socket in a room named by its sid, and socket ids are public
(they travel in `user_joined_call` and `call_participants`). A chat room whose id a client
chooses must therefore never be used as a Socket.IO room name as it is: `join_room` with a
victim's sid as `roomId` would deliver the room's traffic into the victim's personal room.
Every chat room lives in the channel `room:<roomId>`; sids never contain `:`, so no client
input can name a socket's room or any internal one.
"""

from __future__ import annotations

ROOM_PREFIX = "room:"


def room_channel(*, room_id: str) -> str:
    """The Socket.IO room that carries chat room `room_id`."""
    return ROOM_PREFIX + room_id


def room_of_channel(channel: str) -> str | None:
    """The chat room id a channel carries, or None for a socket's own room or another internal one."""
    if channel.startswith(ROOM_PREFIX):
        return channel[len(ROOM_PREFIX):]
    return None
