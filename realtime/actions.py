"""What the Socket.IO events do: `check_*` refuse, `do_*` change things, `notify_*` emit.

Handlers in `realtime.events` parse a payload and call one `do_*` here; the database is
reached only through `rooms.services` / `voice.selectors` / `voice.media` (async driver),
the shared state only through `realtime.state`. A database write always finishes before
the broadcast that announces it. A `check_*` reads at most (state, database) and raises;
it never writes or emits. The rooms-online gauge moves where presence does: in
`do_room_join` and `do_room_leave`, never per event.

Concurrency. One socket's events run one at a time (see `realtime.connections`), but
different sockets interleave at every `await`. So a `check_*` can be stale by the time the
write after it lands: a media file checked to exist may be deleted (its message deleted,
its room purged) before the message naming it is stored; a call roster returned to a
joiner (`call_participants`) may already miss or include a member who changed in the
meantime, and that member's own `user_left_call` / `user_joined_call` follows. Roster
changes are made in the state first (atomic there) and then announced, so two sockets
racing to join never both miss each other.

Connection state recovery (`realtime.recovery_server`). Every `room_emit` is a room
broadcast: logged and replayed to a socket that comes back within the window. Emits to one
socket (`to=`: relays, `call_participants`) and `user_typing` with `typing: true`
(volatile: a stale "is typing" is worse than a missed one) are not. A recovered socket is
put back in its room (`do_socket_restore`), never in its call: its disconnect already took
it out of the roster and announced it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from django.conf import settings

from chillout_project import metrics
from chillout_project.errors import Forbidden, InvalidInput, NotFound
from realtime.connections import Connection, Typing, connection_drop, connection_register, connection_sids
from realtime.payloads import DeletePayload, EditPayload, MediaPayload, RelayPayload, TextPayload
from realtime.presence import presence_coalescer
from realtime.channels import room_channel
from realtime.server import server
from realtime.state import Binding, state
from rooms.services import (
    message_by_client_offset,
    message_create,
    message_create_once,
    message_delete,
    message_edit,
    message_media_create,
    message_media_create_once,
    room_ensure,
)
from rooms.validators import ANONYMOUS_USERNAME, SYSTEM_USERNAME
from rooms.wire import message_edited_wire, message_wire
from voice.kinds import IMAGE, VOICE, MediaKind
from voice.media import media_delete_by_path
from voice.selectors import media_file_in_room

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaSend:
    """How a media message of one kind is stored and announced."""

    text: str
    event: str


MEDIA_SENDS = {
    VOICE: MediaSend(text="Voice message", event="receive_voice_message"),
    IMAGE: MediaSend(text="Image message", event="receive_image_message"),
}


@dataclass(frozen=True)
class Relay:
    """A WebRTC signaling event passed from one socket to another in its room."""

    event: str
    body_key: str
    with_username: bool


RELAYS = (
    Relay(event="offer", body_key="offer", with_username=True),
    Relay(event="answer", body_key="answer", with_username=True),
    Relay(event="ice_candidate", body_key="candidate", with_username=False),
)


# --- rooms and presence -----------------------------------------------------------------


def check_member(*, binding: Binding | None, room_id: str, claimed: str | None) -> Binding | None:
    """The socket's identity in `room_id` given its current `binding`; None if it is elsewhere.

    Pure: the caller (`do_member_ensure`) does the implicit join. In its own room a socket
    may not claim another name.
    """
    if binding is None or binding.room_id != room_id:
        return None
    if claimed is not None and claimed != binding.username:
        raise Forbidden("username does not match the name this socket joined the room with")
    return binding


def implicit_username(*, binding: Binding | None, claimed: str | None) -> str:
    """The name of an implicit join: the claimed one, else the socket's previous one, else `Anonymous`."""
    return claimed or (binding.username if binding is not None else ANONYMOUS_USERNAME)


async def do_member_ensure(*, connection: Connection, room_id: str, claimed: str | None) -> Binding:
    """The socket's identity in `room_id`, joining the room first if it is elsewhere.

    The implicit join exists because the web client re-sends no `join_room` after an
    automatic reconnect; it joins with `implicit_username`.
    """
    binding = await state().binding_get(sid=connection.sid)
    member = check_member(binding=binding, room_id=room_id, claimed=claimed)
    if member is not None:
        return member
    username = implicit_username(binding=binding, claimed=claimed)
    await do_room_join(connection=connection, room_id=room_id, username=username)
    return Binding(room_id=room_id, username=username)


async def do_room_join(*, connection: Connection, room_id: str, username: str) -> None:
    """Move the socket into `room_id` as `username` (out of any other room first)."""
    await room_ensure(room_id=room_id)
    previous = await state().binding_get(sid=connection.sid)
    if previous is not None and previous != Binding(room_id=room_id, username=username):
        await do_room_leave(connection=connection)
    online = await room_enter_and_bind(sid=connection.sid, room_id=room_id, username=username)
    await rooms_online_publish()
    await notify_online_users(room_id=room_id, online=online)


async def room_enter_and_bind(*, sid: str, room_id: str, username: str) -> list[str]:
    """Enter the room's channel, then bind the socket to the room in the state; the online names.

    In this order, a binding (presence, relay targets, the reaper's view) never names a
    room whose channel the socket is not in; a failed binding (Redis down) takes the
    socket out of the channel again, so it never hears a room it is not bound to.
    """
    channel = room_channel(room_id=room_id)
    await server().enter_room(sid, channel)
    try:
        return await state().room_join(sid=sid, room_id=room_id, username=username)
    except BaseException:
        await server().leave_room(sid, channel)
        raise


async def do_room_leave(*, connection: Connection) -> Binding | None:
    """Take the socket out of its room (and that room's call); returns what it left.

    Also what removes the sockets of a dead process (`realtime.cluster`), so the socket may
    be served elsewhere, and be removed concurrently by another caller: only the one whose
    atomic `room_leave` / `call_leave` removed it announces it.
    """
    binding = await state().binding_get(sid=connection.sid)
    if binding is None:
        return None
    await do_typing_stop(connection=connection)
    await do_call_leave(connection=connection, binding=binding)
    left, online = await state().room_leave(sid=connection.sid)
    await server().leave_room(connection.sid, room_channel(room_id=binding.room_id))
    if left is None:
        return None
    await rooms_online_publish()
    await notify_online_users(room_id=left.room_id, online=online)
    return left


async def do_room_leave_event(*, connection: Connection, room_id: str) -> None:
    """`leave_room`: leaving a room the socket is not in is a no-op."""
    binding = await state().binding_get(sid=connection.sid)
    if binding is not None and binding.room_id == room_id:
        await do_room_leave(connection=connection)


async def do_connection_open(*, sid: str, ip: str | None, media_base: str) -> None:
    """Start serving the socket (its IP's slot was taken at the handshake: `realtime.sessions`)."""
    connection_register(sid=sid, ip=ip, media_base=media_base)
    metrics.socket_connected()


async def do_connection_close(*, connection: Connection) -> None:
    """After a disconnect: leave the room (and its call), forget the socket.

    The caller holds the socket's lock, so its last event has finished. The IP's slot is
    released when the engine.io session ends (`realtime.sessions`).
    """
    try:
        await do_room_leave(connection=connection)
    finally:
        connection_drop(sid=connection.sid)
        metrics.socket_disconnected()


async def do_socket_restore(*, connection: Connection, room_id: str, username: str) -> None:
    """A recovered socket back in its room with its name (presence, `online_users` to the
    room), not in its call. No rate-limit token: the client did not ask for it."""
    await do_room_join(connection=connection, room_id=room_id, username=username)


async def rooms_online_publish() -> None:
    """The rooms-online gauge, after a join or a leave changed presence."""
    count = state().rooms_online_known()
    metrics.rooms_online_set(count=await state().rooms_online_count() if count is None else count)


async def do_sockets_disconnect() -> None:
    """Disconnect every socket of this process, each with its clean-up (see `events.disconnect`)."""
    sio = server()
    await asyncio.gather(*(sio.disconnect(sid) for sid in connection_sids()), return_exceptions=True)


async def room_emit(event: str, data, *, room_id: str, skip_sid: str | None = None, volatile: bool = False) -> None:
    """Send `event` to everyone in chat room `room_id` (but `skip_sid`), through its channel.
    Logged for connection state recovery unless `volatile`."""
    await server().emit(event, data, room=room_channel(room_id=room_id), skip_sid=skip_sid, volatile=volatile)


async def notify_online_users(*, room_id: str, online: list[str]) -> None:
    """Coalesced per room (`realtime.presence`): sent now, or once its interval ends with the true list."""
    await presence_coalescer(emit=online_users_send).changed(room_id=room_id, online=online)


async def online_users_send(room_id: str, online: list[str]) -> None:
    await room_emit("online_users", online, room_id=room_id)


# --- messages ----------------------------------------------------------------------------


async def do_text_send(*, connection: Connection, payload: TextPayload) -> dict:
    binding = await do_member_ensure(connection=connection, room_id=payload.room_id, claimed=payload.username)
    return await do_message_post(
        connection=connection,
        binding=binding,
        event="receive_message",
        text=payload.text,
        client_offset=payload.client_offset,
    )


async def do_media_send(*, connection: Connection, kind: MediaKind, payload: MediaPayload) -> dict:
    """Store and announce a voice or image message for a file the sender uploaded to the room
    and no message owns yet (the service claims it for the message, atomically).

    A repeat of a send already stored (same `clientOffset`) answers the original before
    the file is checked: its file is owned by that message by now."""
    if payload.client_offset is not None:
        binding = await do_member_ensure(connection=connection, room_id=payload.room_id, claimed=payload.username)
        original = await message_by_client_offset(
            room_id=binding.room_id, username=binding.username, client_offset=payload.client_offset
        )
        if original is not None:
            return message_wire(original, media_base=connection.media_base)
    await check_media_in_room(kind=kind, payload=payload)
    binding = await do_member_ensure(connection=connection, room_id=payload.room_id, claimed=payload.username)
    send = MEDIA_SENDS[kind]
    claim = dict(room_id=binding.room_id, username=binding.username, text=send.text, kind=kind, file_id=payload.file_id)
    if payload.client_offset is None:
        doc, created = await message_media_create(**claim), True
    else:
        doc, created = await message_media_create_once(**claim, client_offset=payload.client_offset)
    return await notify_message(connection=connection, room_id=binding.room_id, doc=doc, event=send.event, created=created)


async def check_media_in_room(*, kind: MediaKind, payload: MediaPayload) -> None:
    if not await media_file_in_room(kind=kind, file_id=payload.file_id, room_id=payload.room_id):
        raise NotFound(f"no such {kind.name} file in this room")


async def do_message_post(
    *, connection: Connection, binding: Binding, event: str, text: str, client_offset: str | None = None
) -> dict:
    """Store a text message as the socket's bound name, then send it to the whole room.

    With a `client_offset` already stored (a repeat after a lost ack), nothing is stored or
    sent: the original is returned for the ack."""
    if client_offset is None:
        doc, created = await message_create(room_id=binding.room_id, username=binding.username, text=text), True
    else:
        doc, created = await message_create_once(
            room_id=binding.room_id, username=binding.username, text=text, client_offset=client_offset
        )
    return await notify_message(connection=connection, room_id=binding.room_id, doc=doc, event=event, created=created)


async def notify_message(*, connection: Connection, room_id: str, doc: dict, event: str, created: bool = True) -> dict:
    """The stored message for the ack; sent to the room only if this call stored it."""
    wire = message_wire(doc, media_base=connection.media_base)
    if created:
        await room_emit(event, wire, room_id=room_id)
    return wire


async def do_message_delete(*, connection: Connection, payload: DeletePayload) -> None:
    """Only the author (the socket's bound name) may delete; the service enforces it."""
    binding = await do_member_ensure(connection=connection, room_id=payload.room_id, claimed=None)
    doc = await message_delete(room_id=binding.room_id, message_id=payload.message_id, username=binding.username)
    if doc.get("url"):
        await media_delete_by_path(path=doc["url"], message_id=doc["_id"])  # only the file it owns
    await room_emit("message_deleted", {"messageId": str(payload.message_id)}, room_id=binding.room_id)


async def do_message_edit(*, connection: Connection, payload: EditPayload) -> dict:
    """Only the author (the socket's bound name) may edit, a text message; the service enforces it."""
    binding = await do_member_ensure(connection=connection, room_id=payload.room_id, claimed=None)
    doc = await message_edit(
        room_id=binding.room_id, message_id=payload.message_id, username=binding.username, text=payload.text
    )
    await room_emit("message_edited", message_edited_wire(doc), room_id=binding.room_id)
    return message_wire(doc, media_base=connection.media_base)


# --- typing ------------------------------------------------------------------------------


async def do_typing(*, connection: Connection, room_id: str, typing: bool) -> None:
    """`typing`: shown to the others only when it changes; a `true` restarts the timer
    after which the socket stops typing by itself (`TYPING_TIMEOUT_SECONDS`)."""
    binding = await do_member_ensure(connection=connection, room_id=room_id, claimed=None)
    if not typing:
        await do_typing_stop(connection=connection)
        return
    previous = connection.typing
    if previous is not None:
        previous.timer.cancel()
    connection.typing = Typing(
        room_id=binding.room_id, username=binding.username, timer=asyncio.create_task(typing_expire(connection))
    )
    if previous is None:
        await notify_typing(sid=connection.sid, room_id=binding.room_id, username=binding.username, typing=True)


async def do_typing_stop(*, connection: Connection) -> None:
    """The socket stops typing (it said so, left the room, disconnected): the others are told."""
    typing, connection.typing = connection.typing, None
    if typing is None:
        return
    typing.timer.cancel()
    await notify_typing(sid=connection.sid, room_id=typing.room_id, username=typing.username, typing=False)


async def typing_expire(connection: Connection) -> None:
    """The timer of `do_typing`. It takes the socket's typing state before its first await
    after the sleep, so a `do_typing_stop` never cancels it in the middle of its emit.
    Nobody awaits it: a failure is logged here."""
    try:
        await typing_timer_run(connection)
    except Exception:
        logger.exception("typing timeout of %s not announced", connection.sid)


async def typing_timer_run(connection: Connection) -> None:
    await asyncio.sleep(settings.TYPING_TIMEOUT_SECONDS)
    typing = connection.typing
    if typing is None or typing.timer is not asyncio.current_task():
        return
    connection.typing = None
    await notify_typing(sid=connection.sid, room_id=typing.room_id, username=typing.username, typing=False)


async def notify_typing(*, sid: str, room_id: str, username: str, typing: bool) -> None:
    """`user_typing` to the room but the typist. `true` is volatile (never replayed); `false`
    is logged, so a socket that recovers never keeps a stale "is typing"."""
    await room_emit("user_typing", {"username": username, "typing": typing}, room_id=room_id, skip_sid=sid, volatile=typing)


# --- calls -------------------------------------------------------------------------------


async def do_call_join(*, connection: Connection, room_id: str, claimed: str | None) -> None:
    """Put the socket in the room's call and announce it; a socket already in gets nothing."""
    binding = await do_member_ensure(connection=connection, room_id=room_id, claimed=claimed)
    others = await state().call_join(room_id=room_id, sid=connection.sid, username=binding.username)
    if others is None:
        return
    try:
        doc = await message_create(
            room_id=room_id,
            username=SYSTEM_USERNAME,
            text=f"{binding.username} is in the audio call",
            type="call_notification",
            call_initiator=binding.username,
        )
    except BaseException:
        # Nobody has been told yet: undo, so that a retry announces the join.
        await state().call_leave(room_id=room_id, sid=connection.sid)
        raise
    await room_emit("call_notification", message_wire(doc, media_base=connection.media_base), room_id=room_id)
    joined = {"socketId": connection.sid, "username": binding.username}
    await room_emit("user_joined_call", joined, room_id=room_id, skip_sid=connection.sid)
    await server().emit("call_participants", [member.wire() for member in others], to=connection.sid)


async def do_call_leave_event(*, connection: Connection, room_id: str, claimed: str | None) -> None:
    binding = await do_member_ensure(connection=connection, room_id=room_id, claimed=claimed)
    await do_call_leave(connection=connection, binding=binding)


async def do_call_leave(*, connection: Connection, binding: Binding) -> bool:
    """Take the socket out of its room's call; False (and nothing emitted) if it was not in it."""
    if not await state().call_leave(room_id=binding.room_id, sid=connection.sid):
        return False
    await notify_call_left(connection=connection, binding=binding)
    return True


async def notify_call_left(*, connection: Connection, binding: Binding) -> None:
    """Store and send the notice, then `user_left_call`.

    The peers must close their connection to this socket even when the notice cannot be
    stored (database down), so that failure is logged and `user_left_call` still goes out.
    """
    try:
        doc = await message_create(
            room_id=binding.room_id,
            username=SYSTEM_USERNAME,
            text=f"{binding.username} left the audio call",
            type="call_ended",
        )
    except Exception:
        logger.exception("could not store the call-ended notice of %s in %s", connection.sid, binding.room_id)
    else:
        wire = message_wire(doc, media_base=connection.media_base)
        await room_emit("call_ended_notification", wire, room_id=binding.room_id)
    await room_emit("user_left_call", {"socketId": connection.sid}, room_id=binding.room_id, skip_sid=connection.sid)


# --- WebRTC signaling --------------------------------------------------------------------


async def check_relay_target(*, connection: Connection, to: str) -> Binding:
    """The sender's binding, if `to` is another socket in the same room."""
    binding = await state().binding_get(sid=connection.sid)
    if binding is None:
        raise Forbidden("join a room first")
    target = await state().binding_get(sid=to) if to != connection.sid else None
    if target is None or target.room_id != binding.room_id:
        raise InvalidInput("to must be the socket id of another socket in your room")
    return binding


async def do_relay(*, connection: Connection, relay: Relay, payload: RelayPayload) -> None:
    """Pass an offer, answer or ICE candidate on, labelled with the sender's bound name."""
    binding = await check_relay_target(connection=connection, to=payload.to)
    data = {"from": connection.sid, relay.body_key: payload.body}
    if relay.with_username:
        data["username"] = binding.username
    await server().emit(relay.event, data, to=payload.to)
