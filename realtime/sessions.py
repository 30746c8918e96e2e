"""Engine.io sessions, from their handshake: allowed Host, per-IP count, CONNECT deadline.

Contract §6: the per-IP cap counts engine.io sessions from the handshake (polling too),
not only Socket.IO connections, and a Socket.IO connection whose `Host` is not allowed is
refused like an HTTP request. Both happen in engine.io's `connect` event, which fires at
the handshake of either transport, before any Socket.IO CONNECT. `sessions_install(sio)`
wraps the `connect` / `disconnect` handlers python-socketio registered on its engine.io
server (whatever class `sio` is: they are read from `sio.eio.handlers`, so a subclass's
overrides are kept); importing this module changes nothing.

Per IP, with `MAX_CONNECTIONS_PER_IP` = M (0 = no cap), across every process sharing the
state (the counts are in Redis with `REDIS_URL`): the first M sessions are counted from
their handshake and served as usual; the handshake of the next one is refused with
engine.io's own refusal, `{"message": "too many connections"}` (401 JSON on polling; on a
websocket the ASGI server answers 403 without a body), counted in
`chillout_engineio_sessions_refused_total{reason="too_many_sessions"}`. So one IP holds at
most M sessions, connected or not. What clients see of the refusal (python-socketio's
`connect_error` gets the JSON body on polling; socket.io-client a transport error, and
retries) is in docs/decisions.md, "Half-open sessions".

Every session without a Socket.IO connection `CONNECT_TIMEOUT_SECONDS` after its handshake
is closed (python-socketio has no such timeout; Node's `connectTimeout` is 45 s): a bare
handshake would otherwise hold its slot, and its memory, for as long as it answers pings.
The deadline is a timer (no task), cancelled at the CONNECT, so a connected socket holds
none; a session whose Socket.IO connection ends while it stays open gets a new one.

A refused handshake never reaches engine.io's `disconnect`; every admitted session does,
once (its slot is released there; `_sessions.pop` makes a second report harmless).
Relies on python-socketio registering `connect` / `disconnect` on `sio.eio` and on
engine.io's refusal of a handshake whose `connect` handler returns a value: the extension
`session_admission` of `chillout_project.tunings`. On a version it was not checked against
it is not installed (one warning, `chillout_library_tuning{active="0"}`): no per-IP cap
and no CONNECT deadline until it is re-checked; the lock keeps the checked versions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from django.conf import settings

from chillout_project import metrics
from chillout_project.http import host_allowed
from chillout_project.tunings import reach_active
from realtime.connections import client_ip
from realtime.state import state

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 5.0  # how long a session being closed may take to read what waits for it


@dataclass(slots=True)
class Session:
    ip: str | None  # the IP whose slot this session holds (None: not counted)
    deadline: asyncio.TimerHandle | None = None  # until its Socket.IO CONNECT (`connect_deadline_due`)


_sessions: dict[str, Session] = {}


async def session_admit(*, ip: str | None, limit: int) -> str:
    """`counted` (holds one of the IP's `limit` slots), `refused` (the IP has them all; not
    counted), or `uncounted` (no cap, or no client address).

    One atomic check-and-count (`connection_acquire`: a Lua script with Redis), so
    concurrent handshakes on any process never admit more than `limit`.
    """
    if ip is None or limit <= 0:
        return "uncounted"
    if await state().connection_acquire(ip=ip, limit=limit):
        return "counted"
    return "refused"


def sessions_install(sio) -> bool:
    """Guard every engine.io session of `sio` (a python-socketio `AsyncServer`), once;
    False when the libraries are not the versions this was checked against."""
    if not reach_active("session_admission"):
        return False
    eio = sio.eio
    socketio_connect = eio.handlers["connect"]
    socketio_message = eio.handlers["message"]
    socketio_disconnect = eio.handlers["disconnect"]

    async def eio_connect(eio_sid: str, environ: dict):
        host = environ.get("HTTP_HOST", "")
        if not host_allowed(host):
            metrics.session_refused(reason="host_not_allowed")
            logger.info("engine.io handshake refused: Host %r is not in ALLOWED_HOSTS", host[:200])
            return {"message": "host not allowed"}
        ip = client_ip(environ)
        verdict = await session_admit(ip=ip, limit=settings.MAX_CONNECTIONS_PER_IP)
        if verdict == "refused":  # engine.io answers 401 with this body (403 on a websocket)
            metrics.session_refused(reason="too_many_sessions")
            logger.info("engine.io handshake from %s refused: too many sessions", ip)
            return {"message": "too many connections"}
        session = _sessions[eio_sid] = Session(ip=ip if verdict == "counted" else None)
        metrics.session_opened()
        try:
            answer = await socketio_connect(eio_sid, environ)
        except BaseException:
            await session_release(eio_sid)
            raise
        if answer is not None and answer is not True:
            await session_release(eio_sid)
            return answer
        if eio_sid in _sessions:
            deadline_arm(sio, eio_sid, session)
        return answer

    async def eio_message(eio_sid: str, data):
        await socketio_message(eio_sid, data)
        session = _sessions.get(eio_sid)
        if session is None:
            return
        if sio.manager.sid_from_eio_sid(eio_sid, "/") is not None:
            deadline_cancel(session)  # connected: nothing to wait for
        elif session.deadline is None:
            deadline_arm(sio, eio_sid, session)  # its Socket.IO connection ended, the session did not

    async def eio_disconnect(eio_sid: str, reason=None):
        try:
            return await socketio_disconnect(eio_sid, reason)
        finally:
            await session_release(eio_sid)

    eio.on("connect", eio_connect)
    eio.on("message", eio_message)
    eio.on("disconnect", eio_disconnect)
    return True


async def session_release(eio_sid: str) -> None:
    """Give the session's slot back and stop its deadline; only the first call for a session
    does anything.

    Called from engine.io's `disconnect` (whatever ended the session: the client's CLOSE, a
    lost transport or ping timeout, the deadline, a cut) and from a refused or failed
    `connect`; engine.io reports each admitted session's end once, and `_sessions.pop`
    makes any second call a no-op, so a slot is released exactly once. The pop comes
    before the awaited release: a call that interleaves with it finds nothing to release.
    The gauge drops once the count is back (`chillout_engineio_sessions`).
    """
    session = _sessions.pop(eio_sid, None)
    if session is None:
        return
    deadline_cancel(session)
    try:
        if session.ip is not None:
            await state().connection_release(ip=session.ip)
    finally:
        metrics.session_closed()


def deadline_arm(sio, eio_sid: str, session: Session) -> None:
    if settings.CONNECT_TIMEOUT_SECONDS > 0:
        session.deadline = asyncio.get_running_loop().call_later(
            settings.CONNECT_TIMEOUT_SECONDS, connect_deadline_due, sio, eio_sid
        )


def deadline_cancel(session: Session) -> None:
    if session.deadline is not None:
        session.deadline.cancel()
        session.deadline = None


def connect_deadline_due(sio, eio_sid: str) -> None:
    """`CONNECT_TIMEOUT_SECONDS` after the handshake (a timer, not a task per session: an
    idle socket holds neither, as the timer is cancelled at its CONNECT): close the session
    if it has no Socket.IO connection. Its slot comes back through engine.io's `disconnect`,
    which the close triggers (`session_release`)."""
    session = _sessions.get(eio_sid)
    if session is not None:
        session.deadline = None
    if sio.manager.sid_from_eio_sid(eio_sid, "/") is None:
        sio.start_background_task(connect_deadline_close, sio, eio_sid)


async def connect_deadline_close(sio, eio_sid: str) -> None:
    if await session_close(sio, eio_sid, why=f"no Socket.IO CONNECT within {settings.CONNECT_TIMEOUT_SECONDS} s"):
        metrics.socket_cut(reason="connect_timeout")


async def socket_cut(sio, sid: str, *, why: str) -> None:
    """Disconnect Socket.IO socket `sid` (its `disconnect` handler runs: presence, call) and
    end its engine.io session too, dropping a websocket's TCP connection.

    python-socketio's `disconnect` only sends DISCONNECT: a hostile client that ignores it
    would keep its session, its slot and its stream of frames.
    """
    eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
    await sio.disconnect(sid)
    if eio_sid is not None:
        await session_close(sio, eio_sid, why=why, abort=True)


async def session_close(sio, eio_sid: str, *, why: str, abort: bool = False) -> bool:
    """Close an engine.io session that has no Socket.IO connection; False if already closing.

    First lets the client take what is queued for it (a CONNECT_ERROR) for at most
    `DRAIN_SECONDS`: a polling session that is closed can no longer be read at all (engine.io
    answers 400), and a long-poll that is not yet waiting would miss the error's message.
    Then a CLOSE packet goes out and engine.io reports the session's end, which releases
    its slot. Never waits for the client longer than that. `abort` (a hostile client) skips
    the wait and drops a websocket's TCP connection, which a client that keeps sending
    would otherwise hold open.
    """
    socket = sio.eio.sockets.get(eio_sid)
    if socket is None or socket.closed or socket.closing:
        return False
    if not abort:
        try:
            await asyncio.wait_for(socket.queue.join(), DRAIN_SECONDS)
        except TimeoutError:
            pass
        if socket.closed or socket.closing:
            return False
    logger.info("engine.io session %s closed: %s", eio_sid, why)
    await engineio_close(sio.eio, socket)
    transport_abort = getattr(socket, "chillout_abort", None)  # a websocket (realtime.backpressure)
    if abort and transport_abort is not None:
        transport_abort()
    return True


async def engineio_close(eio, socket) -> None:
    """Close an engine.io session without waiting for the client, and forget it at once.

    engine.io 4.15.1 keeps a closed polling session in `sockets` until its next request,
    and a POST to it then fails with a `KeyError` traceback and a 500: removed here, a
    later request gets engine.io's 400 `Invalid session`. A long-poll already waiting
    still receives the CLOSE packet.
    """
    await socket.close(wait=False)
    if eio.sockets.get(socket.sid) is socket:
        del eio.sockets[socket.sid]
