"""A minimal Socket.IO app on `RecoveringServer`, for tests/realtime/test_recovery_server.py.

Run as `python -m tests.realtime.recovery_app <port> memory` or `... <port> <redis url> <prefix>`
(uvicorn, one process). Restoring a socket into room `broken` fails. It is not Chillout's app (whose wiring comes later): rooms are
python-socketio's, and `restore` announces the socket in its room as presence would.
Events: `join(room)`, `bcast(room, text)` (to the room, then `private` to the sender),
`others(room, text)` (the room except the sender), `skip(room, text, sid)` (the room
except that sid), `burst(room, label, count)`, `pid()`.
"""

import asyncio
import os
import sys
import uuid

import socketio
import uvicorn

from realtime.pubsub import RoomChannelsMixin
from realtime.recovery import InMemoryRecoveryLog, RecoverySession
from realtime.recovery_server import OrderedRedisManagerMixin, RecoveringServer, RecoveryManagerMixin


class Manager(RecoveryManagerMixin, socketio.AsyncManager):
    pass


class RedisManager(OrderedRedisManagerMixin, RoomChannelsMixin, RecoveryManagerMixin, socketio.AsyncManager):
    pass


async def no_node(sid: str) -> None:
    """This app never emits to a socket of another process."""
    return None


def server_create(backend: str, prefix: str) -> RecoveringServer:
    if backend == "memory":
        log, manager = InMemoryRecoveryLog(window_seconds=120, max_events=1000), Manager()
    else:
        from realtime.recovery_redis import RedisRecoveryLog

        log = RedisRecoveryLog(url=backend, prefix=prefix, window_seconds=120, max_events=1000)
        manager = RedisManager()
        node = uuid.uuid4().hex
        manager.channels_init(url=backend, prefix=prefix, node_id=lambda: node, node_of=no_node,
                              is_room=lambda name: not manager.is_sid_room("/", name))  # fmt: skip

    async def restore(sid: str, session: RecoverySession) -> None:
        if session.room_id == "broken":
            raise RuntimeError("cannot put the socket back (as a database that is down)")
        await sio.enter_room(sid, session.room_id)
        await sio.emit("joined", {"sid": sid, "restored": True}, room=session.room_id)

    sio = RecoveringServer(async_mode="asgi", client_manager=manager, recovery_log=log, restore=restore)

    @sio.on("join")
    async def join(sid, room):
        await sio.enter_room(sid, room)
        await sio.emit("joined", {"sid": sid}, room=room)
        return True

    @sio.on("bcast")
    async def bcast(sid, room, text):
        await sio.emit("msg", {"text": text}, room=room)
        await sio.emit("private", {"text": text}, to=sid)
        return True

    @sio.on("others")
    async def others(sid, room, text):
        await sio.emit("msg", {"text": text}, room=room, skip_sid=sid)
        return True

    @sio.on("skip")
    async def skip(sid, room, text, skipped):
        await sio.emit("msg", {"text": text}, room=room, skip_sid=skipped)
        return True

    @sio.on("burst")
    async def burst(sid, room, label, count):
        """`count` room broadcasts at once (concurrent emits of one process)."""
        await asyncio.gather(*(sio.emit("msg", {"text": f"{label}{i}"}, room=room) for i in range(count)))
        return True

    @sio.on("pid")
    async def pid(sid):
        return os.getpid()

    return sio


if __name__ == "__main__":
    port, backend = int(sys.argv[1]), sys.argv[2]
    app = socketio.ASGIApp(server_create(backend, sys.argv[3] if len(sys.argv) > 3 else ""))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
