"""The Socket.IO event handlers (contract §4): parse the payload, call one action, answer.

`socket_event` only records a handler in this module's table; `events_register(sio)`
(called by `realtime.composition`) puts them all on the server. Importing registers nothing.

Every handler is wrapped by `socket_event`, which gives all of them the same behaviour:

* at most MAX_PENDING_EVENTS events per socket started and not finished (counted before
  the lock); the first one beyond is refused and the socket disconnected;
* one event at a time per socket, in arrival order (the socket's lock);
* the write, relay or join rate limit, charged before anything else so junk costs tokens too;
* any payload shape is accepted by the signature (`*args`), then checked: no payload,
  several arguments, a list or a number all become `payload must be an object`;
* the acknowledgement: `{"ok": true, ...}` or `{"ok": false, "error": text}`. Without a
  client callback python-socketio drops the return value, so a failure is only logged;
* nothing escapes: client errors are logged at INFO, a database that is down at WARNING,
  anything else (a bug) with its traceback, and the socket keeps being served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import socketio

from chillout_project import metrics
from chillout_project.errors import ChilloutError
from chillout_project.http import DATABASE_DOWN
from realtime import actions, payloads
from realtime.connections import (
    JOIN_LIMIT,
    RELAY_LIMIT,
    TYPING_LIMIT,
    WRITE_LIMIT,
    Connection,
    RateLimit,
    client_ip,
    connection_bucket_take,
    connection_get,
    socket_media_base,
)
from realtime.ice_servers import ice_servers_issue
from realtime.presence import presence_flush
from realtime.recovery import RecoverySession
from realtime.server import server
from realtime.sessions import socket_cut
from realtime.state import state
from voice.kinds import MediaKind

logger = logging.getLogger(__name__)

Action = Callable[[Connection, dict], Awaitable[dict | None]]

_handlers: dict[str, Callable] = {}


def socket_event(name: str, *, bucket: RateLimit | None = None) -> Callable[[Action], Action]:
    """Register `action(connection, payload) -> extra ack fields` as the handler of `name`."""

    def register(action: Action) -> Action:
        async def handler(sid: str, *args) -> dict:
            connection = connection_get(sid=sid)
            if connection is None:
                return {"ok": False, "error": "not connected"}
            if not connection.backlog.admit():
                return events_overflowed(name=name, connection=connection)
            try:
                async with connection.lock:
                    if connection_get(sid=sid) is not connection or connection.backlog.overflowed:
                        return {"ok": False, "error": "not connected"}
                    return await event_run(name=name, connection=connection, action=action, bucket=bucket, args=args)
            finally:
                connection.backlog.done()

        _handlers[name] = handler
        return action

    return register


async def event_run(*, name: str, connection: Connection, action: Action, bucket: RateLimit | None, args: tuple) -> dict:
    started = time.perf_counter()
    try:
        if bucket is not None:
            connection_bucket_take(connection, bucket)
        extra = await action(connection, payloads.payload_object(args))
    except ChilloutError as exc:
        return event_refused(name=name, sid=connection.sid, reason=exc.code, error=exc.message, started=started)
    except DATABASE_DOWN as exc:
        logger.warning("%s from %s failed, database unavailable: %s", name, connection.sid, exc)
        return event_refused(
            name=name, sid=connection.sid, reason="database_unavailable", error="database unavailable", started=started
        )
    except Exception:
        logger.exception("%s from %s failed", name, connection.sid)
        return event_refused(
            name=name, sid=connection.sid, reason="internal_error", error="internal server error", started=started
        )
    metrics.socket_event_record(event=name, outcome="handled", seconds=time.perf_counter() - started, sid=connection.sid)
    return {"ok": True, **(extra or {})}


def events_overflowed(*, name: str, connection: Connection) -> dict:
    """More than MAX_PENDING_EVENTS events of this socket wait: refuse, and cut it (once).

    The disconnect runs in its own task: awaited here it would wait for the socket's lock,
    which the events ahead of this one hold. Those still queued behind the lock return
    `not connected` without running (`backlog.overflowed`); events arriving after the cut
    are refused without a log line or a metric each (a flood would make thousands).
    """
    if connection.backlog.cut:
        return {"ok": False, "error": "too many events waiting"}  # the cut is counted and logged once
    connection.backlog.cut = True
    logger.info("socket %s disconnected: too many events waiting (%d)", connection.sid, connection.backlog.limit)
    metrics.socket_cut(reason="too_many_pending")
    sio = server()
    sio.start_background_task(socket_cut, sio, connection.sid, why="too many events waiting")
    return event_refused(
        name=name, sid=connection.sid, reason="too_many_pending", error="too many events waiting", started=time.perf_counter()
    )


def event_refused(*, name: str, sid: str, reason: str, error: str, started: float) -> dict:
    metrics.socket_event_record(
        event=name, outcome="refused", reason=reason, seconds=time.perf_counter() - started, sid=sid
    )
    return {"ok": False, "error": error}


# --- connection --------------------------------------------------------------------------


async def connect(sid: str, environ: dict, auth=None) -> None:
    """Start serving the socket.

    The per-IP cap is not checked here: every engine.io session already holds its IP's
    slot from its handshake, and the handshakes past the cap were refused
    (`realtime.sessions`).
    """
    ip = client_ip(environ)
    await actions.do_connection_open(sid=sid, ip=ip, media_base=socket_media_base(environ))
    environ_slim(environ)
    logger.debug("socket %s connected from %s", sid, ip)


def environ_slim(environ: dict) -> None:
    """Drop what a connected socket's handshake `environ` no longer needs (memory per idle
    socket: its headers as strings, ~4 KB, more with a browser's cookies).

    python-socketio keeps the handshake's `environ` for the socket's life (and engine.io's
    websocket handler holds the same dict), but reads it only to call `connect` again on a
    repeated CONNECT of the same engine.io session; engine.io reads `asgi.scope` and
    `asgi.send` when the websocket ends. Those, and what `connect` reads, are kept
    (`ENVIRON_KEPT`). Checked against python-socketio 5.18.1 / python-engineio 4.15.1
    (pinned by `realtime.sessions` and `realtime.backpressure`).
    """
    kept = {key: environ[key] for key in ENVIRON_KEPT if key in environ}
    environ.clear()
    environ.update(kept)


ENVIRON_KEPT = ("asgi.scope", "asgi.send", "asgi.receive", "wsgi.url_scheme", "REMOTE_ADDR", "HTTP_HOST")


async def disconnect(sid: str, reason=None) -> None:
    """Leave the room (and its call) after the socket's last event has finished."""
    connection = connection_get(sid=sid)
    if connection is None:
        return
    async with connection.lock:
        try:
            await actions.do_connection_close(connection=connection)
        except Exception:
            logger.exception("clean-up of %s after disconnect failed", sid)
        logger.debug("socket %s disconnected (%s)", sid, reason)


async def socket_snapshot(sid: str) -> RecoverySession:
    """Connection state recovery: what a socket whose transport was lost gets back (its room
    and name), read before `disconnect` clears them."""
    binding = await state().binding_get(sid=sid)
    if binding is None:
        return RecoverySession(sid=sid)
    return RecoverySession(sid=sid, room_id=binding.room_id, username=binding.username)


async def socket_restore(sid: str, session: RecoverySession) -> None:
    """Connection state recovery: put a recovered socket (already accepted by `connect`) back
    in its room, under its lock like any event. Raising makes it an ordinary connection."""
    connection = connection_get(sid=sid)
    if connection is None:
        raise RuntimeError(f"socket {sid} is not registered")
    if session.room_id is None or session.username is None:
        return
    async with connection.lock:
        await actions.do_socket_restore(connection=connection, room_id=session.room_id, username=session.username)
    logger.info("socket %s recovered into %s", sid, session.room_id)


async def sockets_close() -> None:
    """At graceful shutdown: disconnect every socket, each with its clean-up (presence,
    call roster, the persisted "left the audio call" notice), stop the server's tasks, and
    leave the shared state (with `REDIS_URL`: the others need not wait to reap this process)."""
    await actions.do_sockets_disconnect()
    await presence_flush()
    await server().shutdown()
    await state().close()


def events_register(sio: socketio.AsyncServer) -> None:
    """Put every handler of this module on `sio` (once, by the composition root)."""
    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    for name, handler in _handlers.items():
        sio.on(name, handler)


# --- rooms -------------------------------------------------------------------------------


@socket_event("join_room", bucket=JOIN_LIMIT)
async def join_room(connection: Connection, data: dict) -> dict:
    payload = payloads.payload_join(data)
    await actions.do_room_join(connection=connection, room_id=payload.room_id, username=payload.username)
    return {"username": payload.username}


@socket_event("leave_room", bucket=JOIN_LIMIT)
async def leave_room(connection: Connection, data: dict) -> None:
    """Leaving a room the socket is not in is a no-op."""
    await actions.do_room_leave_event(connection=connection, room_id=payloads.payload_room(data).room_id)


# --- messages ----------------------------------------------------------------------------


@socket_event("send_message", bucket=WRITE_LIMIT)
async def send_message(connection: Connection, data: dict) -> dict:
    wire = await actions.do_text_send(connection=connection, payload=payloads.payload_text(data))
    return {"message": wire}


def media_send_action(kind: MediaKind) -> Action:
    async def send_media_message(connection: Connection, data: dict) -> dict:
        payload = payloads.payload_media(data, kind=kind)
        wire = await actions.do_media_send(connection=connection, kind=kind, payload=payload)
        return {"message": wire}

    return send_media_message


for _kind in actions.MEDIA_SENDS:
    socket_event(f"send_{_kind.name}_message", bucket=WRITE_LIMIT)(media_send_action(_kind))


@socket_event("delete_message", bucket=WRITE_LIMIT)
async def delete_message(connection: Connection, data: dict) -> None:
    await actions.do_message_delete(connection=connection, payload=payloads.payload_delete(data))


@socket_event("edit_message", bucket=WRITE_LIMIT)
async def edit_message(connection: Connection, data: dict) -> dict:
    wire = await actions.do_message_edit(connection=connection, payload=payloads.payload_edit(data))
    return {"message": wire}


@socket_event("typing", bucket=TYPING_LIMIT)
async def typing(connection: Connection, data: dict) -> None:
    payload = payloads.payload_typing(data)
    await actions.do_typing(connection=connection, room_id=payload.room_id, typing=payload.typing)


# --- calls -------------------------------------------------------------------------------


@socket_event("join_call", bucket=WRITE_LIMIT)
async def join_call(connection: Connection, data: dict) -> dict:
    """The ack carries the ICE servers of `GET /api/turn` (fresh TURN credentials), so a
    joiner has them without another request; a client without an ack callback gets nothing."""
    payload = payloads.payload_room(data)
    await actions.do_call_join(connection=connection, room_id=payload.room_id, claimed=payload.username)
    return {"iceServers": ice_servers_issue(via="join_call")["iceServers"]}


@socket_event("leave_call", bucket=WRITE_LIMIT)
async def leave_call(connection: Connection, data: dict) -> None:
    payload = payloads.payload_room(data)
    await actions.do_call_leave_event(connection=connection, room_id=payload.room_id, claimed=payload.username)


def relay_action(relay: actions.Relay) -> Action:
    async def relay_signal(connection: Connection, data: dict) -> None:
        payload = payloads.payload_relay(data, body_key=relay.body_key)
        await actions.do_relay(connection=connection, relay=relay, payload=payload)

    return relay_signal


for _relay in actions.RELAYS:
    socket_event(_relay.event, bucket=RELAY_LIMIT)(relay_action(_relay))
