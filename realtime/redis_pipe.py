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

Per command, what remains is packing it (`hiredis.pack_command`, C: ~2 µs where redis-py's
asyncio `pack_command` takes ~20 for the recovery log's 14 arguments) and one future. The
reply timeout is one watchdog timer per connection, not a timer per command: the watchdog
looks at the oldest command waiting (replies come in order, so it is the first to be late)
and re-arms itself for when that one would be late.

Failure. A command that gets no reply within `timeout` (a hung Redis) or a connection error
fails every command still waiting (their replies could no longer be matched) and drops the
connection; the next command connects again. An error reply (`ResponseError`) fails only its
own command. A caller cancelled while waiting leaves its future in the queue, cancelled: its
reply is read and dropped in turn.

Relies on redis-py 8.1's `Connection.send_packed_command` writing its bytes before its first
suspension when the connection is open and has no `socket_timeout` (the sends are tasks
started in the order of the queue, so that order is the order on the wire), and on hiredis
3.5's `pack_command` packing as redis-py does: the tuning `redis_pipe` of
`chillout_project.tunings`. `redis_commands_create(url)` gives a `PipelinedRedis` on the
versions it was checked against, else (or with the tuning off) a `LibraryRedis`, the same
two calls on redis-py's own client. tests/unit/test_redis_pipe.py compares the two packings
and tests/scale/test_room_channels.py checks that concurrent commands get their own replies.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math

import hiredis
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from chillout_project.tunings import reach_active
from realtime.redis_pool import redis_client_create


def redis_commands_create(url: str, *, name: str, timeout: float = 10.0) -> PipelinedRedis | LibraryRedis:
    """The client for the per-message commands, its connections named `name` (CLIENT LIST):
    pipelined when the `redis_pipe` tuning is active."""
    if reach_active("redis_pipe"):
        return PipelinedRedis(url, name=name, timeout=timeout)
    return LibraryRedis(url, name=name, timeout=timeout)


class LibraryRedis:
    """`PipelinedRedis`'s calls on redis-py's own asyncio client (the tuning's fallback)."""

    def __init__(self, url: str, *, name: str, timeout: float = 10.0) -> None:
        self.redis = redis_client_create(url, name=name, socket_timeout=timeout)

    async def call(self, *command):
        return await self.redis.execute_command(*command)

    def script(self, source: str):
        script = self.redis.register_script(source)

        async def run(*, keys: list, args: list):
            return await script(keys=keys, args=args)

        return run

    async def close(self) -> None:
        await self.redis.aclose()


class PipelinedRedis:
    """`await pipe.call(*command)`; `pipe.script(source)` gives an EVALSHA caller."""

    def __init__(self, url: str, *, name: str, timeout: float = 10.0) -> None:
        self.pool = aioredis.ConnectionPool.from_url(url, decode_responses=True, socket_timeout=None, client_name=name)
        self.timeout = timeout
        self._connection = None
        self._connecting = asyncio.Lock()
        self._pending: collections.deque[tuple[asyncio.Future, float]] = collections.deque()  # (reply, sent at)
        self._reader: asyncio.Task | None = None
        self._unsent: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None

    async def _connected(self):
        if self._connection is None or not self._connection.is_connected:
            async with self._connecting:
                if self._connection is None or not self._connection.is_connected:
                    connection = self.pool.make_connection()
                    try:  # connecting also waits for replies (CLIENT SETINFO): bounded like a command
                        async with asyncio.timeout(self.timeout):
                            await connection.connect()
                    except TimeoutError:
                        await connection.disconnect(nowait=True)
                        raise RedisConnectionError(f"no reply from Redis within {self.timeout} s") from None
                    self._connection = connection
        return self._connection

    async def call(self, *command):
        await self._connected()
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        self._pending.append((reply, loop.time()))
        self._unsent.append(hiredis.pack_command(command))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.timeout, self._watch)
        return await reply

    def _watch(self) -> None:
        """Fail the connection if the oldest waiting command is late, else look again when it would be."""
        self._watchdog = None
        if self._connection is None or not self._pending:
            return
        late_at = self._pending[0][1] + self.timeout
        loop = asyncio.get_running_loop()
        if loop.time() >= late_at:
            self._fail(self._connection, RedisConnectionError(f"no reply from Redis within {self.timeout} s"))
        else:
            self._watchdog = loop.call_at(late_at, self._watch)

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
                reply, _ = self._pending.popleft()
                if not reply.done():
                    reply.set_exception(error)
                continue
            except BaseException as error:
                self._fail(connection, error)
                return
            reply, _ = self._pending.popleft()
            if not reply.done():
                reply.set_result(response)

    def _fail(self, connection, error: BaseException) -> None:
        """Fail every command waiting on `connection` and drop it."""
        if connection is not self._connection:
            return
        self._connection = None
        self._unsent = []
        pending, self._pending = self._pending, collections.deque()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for reply, _ in pending:
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
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.disconnect()
        if self._reader is not None:
            self._reader.cancel()
        await self.pool.disconnect()
