"""`RealtimeState` in Redis, shared by every server process of a deployment (contract §7).

Used when `REDIS_URL` is set (`realtime.state.state_create`). Every key starts with
`REDIS_PREFIX` (`P` below):

| key | type | holds |
| --- | --- | --- |
| `P b:<sid>` | hash | the binding: `room`, `name`, and `node`, the process serving the socket |
| `P pn:<room>` | sorted set | the room's online names, scored by when each came online |
| `P pc:<room>` | hash | name -> how many connections of that name are in the room |
| `P rooms` | set | rooms with at least one connection (metrics) |
| `P c:<room>` | sorted set | the room's call roster, sid scored by when it joined the call |
| `P cn:<room>` | hash | call member sid -> name |
| `P seq` | counter | the scores above: one order across all processes |
| `P ip` | hash | client IP -> connections, across all processes (the per-IP cap) |
| `P nip:<node>` | hash | client IP -> connections of one process (undone when it dies) |
| `P ns:<node>` | set | the bound sids of one process (removed when it dies) |
| `P n:<node>` | string, TTL | one process's heartbeat; `P nodes` is the set of process ids |
| `P reap:<node>`, `P turn:<name>` | string, TTL | who reaps a dead process; who runs a periodic job |

Atomicity. Every method that changes more than one key is one Lua script, so another
process's update can never interleave with it: presence counts and order, a call roster
and its names, the per-IP counts stay consistent whatever the processes do at once.
The scripts compute keys from what they read (a binding's room), so they need a single
Redis server (or a Sentinel-managed primary), not Redis Cluster.

Per event. A process keeps the bindings of its own sockets in memory as well, so an event
of one of its sockets reads its binding without a round trip (`binding_get`); the
rooms-online count for the gauge comes back with each join and leave script and with the
heartbeat (`rooms_online_known`), never from a round trip of its own. `node_of(sid)` tells
the pub/sub manager which process serves a socket (`realtime.pubsub`).

Liveness. Each process refreshes `P n:<node>` (TTL `dead_after`: 3/4 of
`DEAD_PROCESS_SECONDS`) every quarter of `DEAD_PROCESS_SECONDS`. A process killed without its clean-up (kill -9, a lost machine) stops refreshing it;
another process finds the key gone, claims the dead one (`P reap:<node>`, so one reaper
only), and hands each of its sids to `realtime.cluster`, which removes them with the
effects of a disconnect; the dead process's per-IP counts are then subtracted. A process
that was only frozen for too long finds its heartbeat gone (`heartbeat()` returns False)
and disconnects its own sockets, whose clients reconnect and join again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from realtime.redis_pool import redis_client_create
from realtime.state import Binding, CallMember, RealtimeState

logger = logging.getLogger(__name__)

# Removes sid's binding and its presence; returns {room, name} or nothing. Shared by the
# join and leave scripts (prepended to them).
_DROP = """
local function drop(P, sid)
  local b = redis.call('HMGET', P .. 'b:' .. sid, 'room', 'name', 'node')
  if not b[1] then return nil end
  local room, name, node = b[1], b[2], b[3]
  redis.call('DEL', P .. 'b:' .. sid)
  redis.call('SREM', P .. 'ns:' .. node, sid)
  if redis.call('HINCRBY', P .. 'pc:' .. room, name, -1) <= 0 then
    redis.call('HDEL', P .. 'pc:' .. room, name)
    redis.call('ZREM', P .. 'pn:' .. room, name)
  end
  if redis.call('EXISTS', P .. 'pn:' .. room) == 0 then
    redis.call('SREM', P .. 'rooms', room)
  end
  return {room, name}
end
"""

# ARGV: prefix, sid, room, name, node -> {rooms online, the room's online names}.
_ROOM_JOIN = _DROP + """
local P, sid, room, name, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
drop(P, sid)
redis.call('HSET', P .. 'b:' .. sid, 'room', room, 'name', name, 'node', node)
redis.call('SADD', P .. 'ns:' .. node, sid)
if redis.call('HINCRBY', P .. 'pc:' .. room, name, 1) == 1 then
  redis.call('ZADD', P .. 'pn:' .. room, redis.call('INCR', P .. 'seq'), name)
end
redis.call('SADD', P .. 'rooms', room)
return {redis.call('SCARD', P .. 'rooms'), redis.call('ZRANGE', P .. 'pn:' .. room, 0, -1)}
"""

# ARGV: prefix, sid -> {} when unbound, else {room, name, online names, rooms online}.
_ROOM_LEAVE = _DROP + """
local P, sid = ARGV[1], ARGV[2]
local left = drop(P, sid)
if not left then return {} end
return {left[1], left[2], redis.call('ZRANGE', P .. 'pn:' .. left[1], 0, -1), redis.call('SCARD', P .. 'rooms')}
"""

# ARGV: prefix, room, sid, name -> nil if already in, else the others as {sid, name, ...}.
_CALL_JOIN = """
local P, room, sid, name = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local roster, names = P .. 'c:' .. room, P .. 'cn:' .. room
if redis.call('ZSCORE', roster, sid) then return false end
local others = {}
for _, other in ipairs(redis.call('ZRANGE', roster, 0, -1)) do
  table.insert(others, other)
  table.insert(others, redis.call('HGET', names, other))
end
redis.call('ZADD', roster, redis.call('INCR', P .. 'seq'), sid)
redis.call('HSET', names, sid, name)
return others
"""

# ARGV: prefix, room, sid -> 1 if it was in the call.
_CALL_LEAVE = """
local P, room, sid = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZREM', P .. 'c:' .. room, sid) == 0 then return 0 end
redis.call('HDEL', P .. 'cn:' .. room, sid)
return 1
"""

# ARGV: prefix, ip, limit, node -> 1 if counted, 0 if the IP is at its limit.
_CONNECTION_ACQUIRE = """
local P, ip, limit, node = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if limit > 0 and tonumber(redis.call('HGET', P .. 'ip', ip) or '0') >= limit then return 0 end
redis.call('HINCRBY', P .. 'ip', ip, 1)
redis.call('HINCRBY', P .. 'nip:' .. node, ip, 1)
return 1
"""

# ARGV: prefix, ip, node. A process's counts subtracted by a reaper (it was taken for
# dead) are not subtracted a second time when its sockets disconnect later.
_CONNECTION_RELEASE = """
local P, ip, node = ARGV[1], ARGV[2], ARGV[3]
local mine = redis.call('HINCRBY', P .. 'nip:' .. node, ip, -1)
if mine <= 0 then redis.call('HDEL', P .. 'nip:' .. node, ip) end
if mine < 0 then return 0 end
if redis.call('HINCRBY', P .. 'ip', ip, -1) <= 0 then redis.call('HDEL', P .. 'ip', ip) end
return 1
"""

# ARGV: prefix, node. Forget a process whose sockets have all been removed: subtract its
# per-IP counts. Does nothing if it is alive again, or still has sockets to remove.
_NODE_FORGET = """
local P, node = ARGV[1], ARGV[2]
if redis.call('EXISTS', P .. 'n:' .. node) == 1 or redis.call('SCARD', P .. 'ns:' .. node) > 0 then return 0 end
local counts = redis.call('HGETALL', P .. 'nip:' .. node)
for i = 1, #counts, 2 do
  if redis.call('HINCRBY', P .. 'ip', counts[i], -tonumber(counts[i + 1])) <= 0 then
    redis.call('HDEL', P .. 'ip', counts[i])
  end
end
redis.call('DEL', P .. 'nip:' .. node, P .. 'reap:' .. node)
redis.call('SREM', P .. 'nodes', node)
return 1
"""


class RedisState(RealtimeState):
    """Presence, call rosters, bindings and per-IP counts in Redis (`redis.asyncio`).

    One instance per process, created at import; the client connects on first use, on the
    server's event loop. `node_id` names this process in the shared state.
    """

    shared = True

    def __init__(self, *, url: str, prefix: str, dead_after: float) -> None:
        self.prefix = prefix
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.dead_after_ms = max(int(dead_after * 1000), 1)
        self.redis = redis_client_create(url, name=f"{prefix}state")
        self._registered = False
        # The bindings of the sockets this process bound, read without a round trip: only
        # this process changes them while it is alive (a reaper only removes those of a
        # process taken for dead, which then disconnects all of its sockets).
        self._local_bindings: dict[str, Binding] = {}
        self._rooms_online = 0
        self._room_join = self.redis.register_script(_ROOM_JOIN)
        self._room_leave = self.redis.register_script(_ROOM_LEAVE)
        self._call_join = self.redis.register_script(_CALL_JOIN)
        self._call_leave = self.redis.register_script(_CALL_LEAVE)
        self._connection_acquire = self.redis.register_script(_CONNECTION_ACQUIRE)
        self._connection_release = self.redis.register_script(_CONNECTION_RELEASE)
        self._node_forget = self.redis.register_script(_NODE_FORGET)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def binding_get(self, *, sid: str) -> Binding | None:
        local = self._local_bindings.get(sid)
        if local is not None:
            return local
        room_id, username = await self.redis.hmget(self.key("b", sid), "room", "name")
        return None if room_id is None else Binding(room_id=room_id, username=username)

    async def node_of(self, *, sid: str) -> str | None:
        """The process serving `sid` (its binding's), or None if it is bound nowhere."""
        if sid in self._local_bindings:
            return self.node_id
        return await self.redis.hget(self.key("b", sid), "node")

    async def room_join(self, *, sid: str, room_id: str, username: str) -> list[str]:
        rooms, online = await self._room_join(args=[self.prefix, sid, room_id, username, self.node_id])
        self._local_bindings[sid] = Binding(room_id=room_id, username=username)
        self._rooms_online = rooms
        return online

    async def room_leave(self, *, sid: str) -> tuple[Binding | None, list[str]]:
        self._local_bindings.pop(sid, None)
        left = await self._room_leave(args=[self.prefix, sid])
        if not left:
            return None, []
        room_id, username, online, self._rooms_online = left
        return Binding(room_id=room_id, username=username), online

    async def room_online(self, *, room_id: str) -> list[str]:
        return await self.redis.zrange(self.key("pn", room_id), 0, -1)

    async def call_join(self, *, room_id: str, sid: str, username: str) -> list[CallMember] | None:
        others = await self._call_join(args=[self.prefix, room_id, sid, username])
        if others is None:
            return None
        return [CallMember(sid=others[i], username=others[i + 1]) for i in range(0, len(others), 2)]

    async def call_leave(self, *, room_id: str, sid: str) -> bool:
        return bool(await self._call_leave(args=[self.prefix, room_id, sid]))

    async def rooms_online_count(self) -> int:
        return await self.redis.scard(self.key("rooms"))

    def rooms_online_known(self) -> int:
        """As of this process's last join, leave or heartbeat: no round trip of its own."""
        return self._rooms_online

    async def connection_acquire(self, *, ip: str, limit: int) -> bool:
        return bool(await self._connection_acquire(args=[self.prefix, ip, limit, self.node_id]))

    async def connection_release(self, *, ip: str) -> None:
        await self._connection_release(args=[self.prefix, ip, self.node_id])

    async def heartbeat(self) -> bool:
        """Refresh this process's heartbeat key; register it the first time. The same round
        trip reads the rooms-online count (`rooms_online_known`).

        The refresh only updates a key that still exists (`XX`): finding it gone means the
        others may already be removing this process's sockets, so it is registered afresh
        and False tells the caller to disconnect them (see the module doc).
        """
        node_key = self.key("n", self.node_id)
        if self._registered:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(node_key, "1", px=self.dead_after_ms, xx=True)
                pipe.scard(self.key("rooms"))
                alive, self._rooms_online = await pipe.execute()
            if alive:
                return True
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(node_key, "1", px=self.dead_after_ms)
            pipe.sadd(self.key("nodes"), self.node_id)
            await pipe.execute()
        was_registered, self._registered = self._registered, True
        return not was_registered

    async def dead_connections(self) -> AsyncIterator[str]:
        """Sids of processes whose heartbeat expired, each dead process claimed by one caller.

        A sid leaves the dead process's set once the caller is done with it, so a reaper that
        dies midway leaves the rest to the next one (after its claim expires); a sid may then
        be handed out twice, which the atomic `room_leave` / `call_leave` make harmless.
        """
        for node in await self.redis.smembers(self.key("nodes")):
            if node == self.node_id or await self.redis.exists(self.key("n", node)):
                continue
            if not await self.redis.set(self.key("reap", node), self.node_id, nx=True, px=self.dead_after_ms):
                continue
            logger.warning("process %s stopped its heartbeat; removing its connections", node)
            sids_key = self.key("ns", node)
            for sid in await self.redis.smembers(sids_key):
                yield sid
                await self.redis.srem(sids_key, sid)
            await self._node_forget(args=[self.prefix, node])

    async def turn_take(self, *, name: str, seconds: float) -> bool:
        key = self.key("turn", name)
        return bool(await self.redis.set(key, self.node_id, nx=True, px=max(int(seconds * 1000), 1)))

    async def close(self) -> None:
        """Leave the shared state: drop the heartbeat and the per-IP counts, then disconnect.

        Called after every socket was disconnected with its clean-up. Should one still be
        bound, the heartbeat being gone lets the other processes reap it at once.
        """
        await self.redis.delete(self.key("n", self.node_id))
        await self._node_forget(args=[self.prefix, self.node_id])
        await self.redis.aclose()
