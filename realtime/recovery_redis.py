"""`RecoveryLog` in Redis, shared by every server process (with `REDIS_URL`).

A socket that lost its transport on one process can recover on another, and a session
saved by a process that is then killed is still there. Keys (`P` = `REDIS_PREFIX`):

| key | type | holds |
| --- | --- | --- |
| `P rs:<pid>` | string, TTL window | the saved session (JSON: sid, room, name, until) |
| `P rl:<room>` | stream, TTL window | the room's broadcasts; entry id `<ms>-<n>` (the offset without its epoch), fields `ev`, `args`, `skip` (JSON) |
| `P rm:<room>` | hash, TTL | the log's head: `e` epoch, `n` last number, `ms` last time, `until` |

The model is Node's `@socket.io/redis-streams-adapter` (a stream, the entry id as offset,
`MAXLEN` trimming, a session key read with `GETDEL`), with one stream per room instead of one
for everything, explicit ids whose sequence part counts the room's events without gaps (so
"does the log still reach back" is exact, see `realtime.recovery`), time trimming with
`XTRIM MINID`, and the head in its own hash so that it outlives trimmed events.

The append (every room broadcast) goes through `realtime.redis_pipe.PipelinedRedis`, one
connection pipelined across concurrent appends; the rest through an ordinary client.

Atomicity. An append is one Lua script (number, XADD, both trims, head, TTLs): appends to a
room from several processes get consecutive numbers in the order Redis runs them. A read
(`events_since`) is one MULTI (head and range from one snapshot); a take is `GETDEL`.
Time comes from the caller's clock (as milliseconds in ARGV), so both implementations keep
time the same way; the TTLs only collect garbage. The keys a script touches are passed as
KEYS, so a room's keys could live on one Redis Cluster slot with a `{room}` hash tag.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import orjson

from realtime.recovery import (
    Clock,
    LoggedEvent,
    Offset,
    RecoveryLog,
    RecoverySession,
    epoch_new,
    offset_parse,
)
from realtime.redis_pipe import redis_commands_create
from realtime.redis_pool import redis_client_create

# KEYS: stream, head. ARGV: now_ms, window_ms, max_events, epoch if new, event, args, skip,
# then a channel ('' for none) and the head and tail of a message published on it with the
# offset (a JSON string) between them. Returns the offset.
_APPEND = """
local stream, head = KEYS[1], KEYS[2]
local now, window, maxlen = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', head, 'e', 'n', 'ms', 'until')
local epoch, n, ms, keep = h[1], tonumber(h[2]), tonumber(h[3]), tonumber(h[4])
if not epoch or keep < now then
  epoch, n, ms, keep = ARGV[4], 0, 0, 0
  redis.call('DEL', stream)
end
n = n + 1
if now > ms then ms = now end
local id = string.format('%d-%d', ms, n)
redis.call('XADD', stream, 'MAXLEN', maxlen, id, 'ev', ARGV[5], 'args', ARGV[6], 'skip', ARGV[7])
redis.call('XTRIM', stream, 'MINID', string.format('%d', now - window))
if now + window > keep then keep = now + window end
redis.call('HSET', head, 'e', epoch, 'n', n, 'ms', ms, 'until', string.format('%d', keep))
redis.call('PEXPIRE', stream, window)
redis.call('PEXPIRE', head, keep - now + 1)
local offset = epoch .. ':' .. id
if ARGV[8] ~= '' then
  redis.call('PUBLISH', ARGV[8], ARGV[9] .. '"' .. offset .. '"' .. ARGV[10])
end
return offset
"""

# KEYS: session, head (of the session's room, or "" when it has none).
# ARGV: session JSON, now_ms, window_ms.
_SESSION_SAVE = """
local session, head = KEYS[1], KEYS[2]
local now, window = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('SET', session, ARGV[1], 'PX', window)
if head ~= '' then
  local keep = tonumber(redis.call('HGET', head, 'until'))
  if keep and keep >= now and keep < now + window then
    redis.call('HSET', head, 'until', string.format('%d', now + window))
    redis.call('PEXPIRE', head, window + 1)
  end
end
return 1
"""


def _json(value) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


class RedisRecoveryLog(RecoveryLog):
    """Sessions and room logs in Redis (`redis.asyncio`); one instance per process."""

    def __init__(
        self,
        *,
        url: str,
        prefix: str,
        window_seconds: float,
        max_events: int,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(window_seconds=window_seconds, max_events=max_events, clock=clock)
        self.prefix = prefix
        self.window_ms = max(int(window_seconds * 1000), 1)
        self.redis = redis_client_create(url, name=f"{prefix}recovery")
        # The append runs for every room broadcast: on the pipelined connection.
        self.pipe = redis_commands_create(url, name=f"{prefix}recovery-commands")
        self._append = self.pipe.script(_APPEND)
        self._session_save = self.redis.register_script(_SESSION_SAVE)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def session_save(self, *, pid: str, session: RecoverySession) -> None:
        now = self._now_ms()
        value = {"sid": session.sid, "room": session.room_id, "name": session.username, "until": now + self.window_ms}
        head = self.key("rm", session.room_id) if session.room_id is not None else ""
        await self._session_save(keys=[self.key("rs", pid), head], args=[_json(value), now, self.window_ms])

    async def session_take(self, *, pid: str) -> RecoverySession | None:
        if not isinstance(pid, str):
            return None
        raw = await self.redis.getdel(self.key("rs", pid))
        if raw is None:
            return None
        value = json.loads(raw)
        if value["until"] < self._now_ms():
            return None
        return RecoverySession(sid=value["sid"], room_id=value["room"], username=value["name"])

    async def event_append(
        self, *, room_id: str, event: str, args: Sequence, skip_sids: Sequence[str] = ()
    ) -> str:
        return await self.event_append_publish(room_id=room_id, event=event, args=args, skip_sids=skip_sids)

    async def event_append_publish(
        self,
        *,
        room_id: str,
        event: str,
        args: Sequence,
        skip_sids: Sequence[str] = (),
        channel: str = "",
        message: Callable[[str], tuple[str, str]] | None = None,
    ) -> str:
        """`event_append`, and in the same script a PUBLISH on `channel` of the message
        `head + <offset as a JSON string> + tail`, where `message(args_json)` gives head and
        tail. Redis runs scripts one at a time, so the channel carries a room's events in
        the order of their offsets, whichever process appended them."""
        args_json = _json(list(args))
        head, tail = message(args_json) if message is not None else ("", "")
        return await self._append(
            keys=[self.key("rl", room_id), self.key("rm", room_id)],
            args=[
                self._now_ms(),
                self.window_ms,
                self.max_events,
                epoch_new(),
                event,
                args_json,
                _json(list(skip_sids)),
                channel,
                head,
                tail,
            ],
        )

    async def events_since(self, *, room_id: str, offset: str) -> list[LoggedEvent] | None:
        parsed = offset_parse(offset)
        if parsed is None:
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self.key("rm", room_id), "e", "n", "until")
            pipe.xrange(self.key("rl", room_id), min=f"({parsed.ms}-{parsed.n}", max="+")
            (epoch, last_n, until), entries = await pipe.execute()
        now = self._now_ms()
        if epoch is None or epoch != parsed.epoch or int(until) < now or parsed.n > int(last_n):
            return None
        oldest_ms = now - self.window_ms
        events = [entry for entry in entries if int(entry[0].split("-")[0]) >= oldest_ms]
        if parsed.n == int(last_n):
            return []
        if not events or int(events[0][0].split("-")[1]) != parsed.n + 1:
            return None  # trimmed past the offset, or not an offset of this log's history
        return [self._logged(epoch, entry_id, fields) for entry_id, fields in events]

    @staticmethod
    def _logged(epoch: str, entry_id: str, fields: dict) -> LoggedEvent:
        ms, n = entry_id.split("-")
        return LoggedEvent(
            offset=str(Offset(epoch=epoch, ms=int(ms), n=int(n))),
            event=fields["ev"],
            args=orjson.loads(fields["args"]),
            skip_sids=tuple(orjson.loads(fields["skip"])),
        )

    async def close(self) -> None:
        await self.pipe.close()
        await self.redis.aclose()
