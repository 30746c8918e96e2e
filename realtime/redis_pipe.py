"""One Redis connection for the commands of every message: written as they come, replies
matched in order (pipelining without batching).

Why. redis-py's asyncio client spends ~90 µs of CPU per command on this machine (a pooled
connection taken and given back, a retry wrapper, a `wait_for` task per write under
`socket_timeout`, observability hooks) and one system call per command; the per-message
path (the recovery log's append + publish script, the publish of a volatile emit) pays it
for every chat message. Here a command is packed and queued with its future; the commands
queued in one turn of the event loop are written together (one system call), on one shared
connection; one reader task reads the replies and resolves the futures in the order they
were written, which is the order Redis answers on one connection: ~20 µs per command, and
concurrent commands share the round trip.

Failure. A command that gets no reply within `timeout` (a hung Redis) or a connection error
fails every command still waiting (their replies could no longer be matched) and drops the
connection; the next command connects again. An error reply (`ResponseError`) fails only its
own command.

Relies on redis-py 8.1's `Connection.send_packed_command` writing its bytes before its first
suspension when the connection is open and has no `socket_timeout` (the sends are tasks
started in the order of the queue, so that order is the order on the wire); `redis_pipe_version_check` refuses other
versions and tests/scale/test_room_channels.py checks that concurrent commands get their
own replies.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
from importlib.metadata import version

from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

SUPPORTED_REDIS = ("8.1.0",)


def redis_pipe_version_check() -> None:
    installed = version("redis")
    if installed not in SUPPORTED_REDIS:
        raise RuntimeError(
            f"realtime.redis_pipe relies on redis {SUPPORTED_REDIS}'s Connection, not the installed {installed}: "
            "check that send_packed_command still writes before its first await, then add the version"
        )


class PipelinedRedis:
    """`await pipe.call(*command)`; `pipe.script(source)` gives an EVALSHA caller."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        redis_pipe_version_check()
        self.pool = aioredis.ConnectionPool.from_url(url, decode_responses=True, socket_timeout=None)
        self.timeout = timeout
        self._connection = None
        self._connecting = asyncio.Lock()
        self._pending: collections.deque[asyncio.Future] = collections.deque()
        self._reader: asyncio.Task | None = None
        self._unsent: list[bytes] = []
        self._flush_scheduled = False

    async def _connected(self):
        if self._connection is None or not self._connection.is_connected:
            async with self._connecting:
                if self._connection is None or not self._connection.is_connected:
                    connection = self.pool.make_connection()
                    await connection.connect()
                    self._connection = connection
        return self._connection

    async def call(self, *command):
        connection = await self._connected()
        reply = asyncio.get_running_loop().create_future()
        self._pending.append(reply)
        self._unsent.extend(connection.pack_command(*command))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(reply)
        except TimeoutError:
            self._fail(connection, RedisConnectionError(f"no reply from Redis within {self.timeout} s"))
            raise

    def _flush(self) -> None:
        """Write every command queued in this turn of the loop at once (one system call).
        Commands queued for a connection that failed meanwhile were failed with it."""
        self._flush_scheduled = False
        unsent, self._unsent = self._unsent, []
        connection = self._connection
        if connection is None or not unsent:
            return
        asyncio.ensure_future(self._send(connection, unsent))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.ensure_future(self._read(connection))

    async def _send(self, connection, unsent: list[bytes]) -> None:
        try:
            await connection.send_packed_command(b"".join(unsent), check_health=False)
        except BaseException as error:
            self._fail(connection, error)

    async def _read(self, connection) -> None:
        while self._pending and connection is self._connection:
            try:
                response = await connection.read_response(timeout=math.inf)
            except ResponseError as error:
                reply = self._pending.popleft()
                if not reply.done():
                    reply.set_exception(error)
                continue
            except BaseException as error:
                self._fail(connection, error)
                return
            reply = self._pending.popleft()
            if not reply.done():
                reply.set_result(response)

    def _fail(self, connection, error: BaseException) -> None:
        """Fail every command waiting on `connection` and drop it."""
        if connection is not self._connection:
            return
        self._connection = None
        self._unsent = []
        pending, self._pending = self._pending, collections.deque()
        for reply in pending:
            if not reply.done():
                reply.set_exception(RedisConnectionError(str(error) or type(error).__name__))
                reply.exception()  # retrieved: nobody may be waiting on it any more
        asyncio.ensure_future(connection.disconnect(nowait=True))

    def script(self, source: str):
        sha = hashlib.sha1(source.encode()).hexdigest()

        async def run(*, keys: list, args: list):
            try:
                return await self.call("EVALSHA", sha, len(keys), *keys, *args)
            except NoScriptError:
                return await self.call("EVAL", source, len(keys), *keys, *args)

        return run

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.disconnect()
        if self._reader is not None:
            self._reader.cancel()
        await self.pool.disconnect()
