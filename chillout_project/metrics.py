"""Every Prometheus metric Chillout exports, and the small functions that feed them.

All metrics live in this one module so that their names, labels and help texts are reviewed
in one place, and so that other parts of the code call a function with keyword arguments
instead of touching `prometheus_client` objects (a wrong label set would only fail at run
time). Label values are always bounded sets (URL patterns, event names, reasons): never a
room id, a username or a raw path, which would make the number of series unbounded.

The Socket.IO metrics are defined here but fed by `realtime/`: it calls
`socket_connected()` / `socket_disconnected()`, `rooms_online_set()`,
`socket_event_record()` (which also writes the event's log line), `socket_cut()`,
`session_refused()`, `session_opened()` / `session_closed()`, and nothing else.

The process figures a soak watches (`bench/soak.py`) are fed from here too: asyncio tasks
and event-loop lag by `loop_monitor` (a background loop, registered in `apps.py`), open
database connections by `MongoConnectionListener` (a PyMongo pool listener, `mongo.py`).

Exported by `GET /metrics` (`chillout_project.views.metrics`), guarded by `METRICS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time

from prometheus_client import Counter, Gauge, Histogram
from pymongo.monitoring import ConnectionPoolListener

logger = logging.getLogger("chillout.socket")

# Seconds; from a cached GET (~1 ms) to a 10 MiB upload on a slow disk.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UPLOAD_BUCKETS = (1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024**2, 4 * 1024**2, 10 * 1024**2)

# --- HTTP --------------------------------------------------------------------------

http_requests = Counter(
    "chillout_http_requests_total",
    "HTTP requests answered, by method, route (URL pattern) and status.",
    ["method", "route", "status"],
)
http_request_duration = Histogram(
    "chillout_http_request_duration_seconds",
    "Time from the request reaching the application to the end of the response.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
http_requests_in_flight = Gauge(
    "chillout_http_requests_in_flight",
    "HTTP requests being handled now (excluding Socket.IO long-polls).",
)

# --- Storage -----------------------------------------------------------------------

upload_bytes = Histogram(
    "chillout_upload_bytes",
    "Size of media files stored, by kind (voice, image).",
    ["kind"],
    buckets=UPLOAD_BUCKETS,
)
uploads_refused = Counter(
    "chillout_uploads_refused_total",
    "Uploads refused before anything was stored, by reason (rate_limited: per client IP).",
    ["reason"],
)
messages_stored = Counter(
    "chillout_messages_stored_total",
    "Messages stored, by type (text, voice, image, call_notification, call_ended).",
    ["type"],
)

# --- ICE servers (fed by realtime/ice_servers.py and realtime/views.py) ------------

turn_credentials = Counter(
    "chillout_turn_credentials_issued_total",
    "TURN credentials issued, by where they went (rest: GET /api/turn; join_call: its ack).",
    ["via"],
)
turn_refused = Counter(
    "chillout_turn_requests_refused_total",
    "GET /api/turn refused before anything was issued, by reason (rate_limited: per client IP).",
    ["reason"],
)

# --- Expiry purge ------------------------------------------------------------------

purge_runs = Counter(
    "chillout_purge_runs_total",
    "Purge passes, by outcome (ok, error, skipped: another process held the lease).",
    ["outcome"],
)
purge_removed = Counter(
    "chillout_purge_removed_total",
    "Items removed by purge passes, by kind (rooms, messages, files, bytes).",
    ["kind"],
)
purge_duration = Histogram(
    "chillout_purge_duration_seconds",
    "Duration of completed purge passes.",
    buckets=(0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# --- Socket.IO (fed by realtime/) --------------------------------------------------

sockets_connected = Gauge("chillout_sockets_connected", "Socket.IO connections open now.")
socket_connects = Counter(
    "chillout_socket_connects_total",
    "Socket.IO connections accepted (their log line is at DEBUG: docs/decisions.md).",
)
rooms_online = Gauge("chillout_rooms_online", "Rooms with at least one connected socket.")
pubsub_messages = Counter(
    "chillout_pubsub_messages_received_total",
    "Messages this process received from the other processes over Redis, by channel kind"
    " (room: a room it serves a member of; node: addressed to one of its sockets).",
    ["kind"],
)
pubsub_room_channels = Gauge("chillout_pubsub_room_channels", "Room channels this process is subscribed to.")
socket_events = Counter(
    "chillout_socket_events_total",
    "Socket.IO events, by event name and outcome (handled, refused).",
    ["event", "outcome"],
)
socket_events_refused = Counter(
    "chillout_socket_events_refused_total",
    "Socket.IO events refused, by event name and reason (a short fixed code).",
    ["event", "reason"],
)
socket_rate_limited = Counter(
    "chillout_socket_rate_limited_total",
    "Socket.IO events refused by a rate limit, by event name.",
    ["event"],
)
socket_disconnects = Counter(
    "chillout_socket_disconnects_total",
    "Sockets cut by the server for breaking a limit, by reason (too_many_pending, slow_consumer,"
    " bad_payload, connect_timeout).",
    ["reason"],
)
socket_copies = Counter(
    "chillout_socket_copies_total",
    "Copies of emitted events (without an ack callback) handed to sockets, by path: direct (framed"
    " once and written into the websocket's connection, realtime/wire.py) or queue (engine.io's queue).",
    ["path"],
)
_copies_direct = socket_copies.labels("direct")
_copies_queue = socket_copies.labels("queue")
engineio_sessions_refused = Counter(
    "chillout_engineio_sessions_refused_total",
    "Engine.io handshakes refused, by reason (host_not_allowed, too_many_sessions).",
    ["reason"],
)
engineio_sessions = Gauge(
    "chillout_engineio_sessions",
    "Engine.io sessions this process admitted and has not yet released, with or without a"
    " Socket.IO connection (each holds one of its IP's MAX_CONNECTIONS_PER_IP slots).",
)
library_tuning = Gauge(
    "chillout_library_tuning",
    "Reaches into libraries' internals (chillout_project/tunings.py), one series each: labelled"
    " active=\"1\" when used, \"0\" when the library's own behaviour is used (switched off, or a"
    " version it was not checked against).",
    ["name", "kind", "active"],
)
socket_event_duration = Histogram(
    "chillout_socket_event_duration_seconds",
    "Time to handle a Socket.IO event, by event name.",
    ["event"],
    buckets=LATENCY_BUCKETS,
)


# --- Process (a soak's figures) ----------------------------------------------------

asyncio_tasks = Gauge("chillout_asyncio_tasks", "asyncio tasks alive on the server's event loop (sampled each second).")
event_loop_lag = Gauge(
    "chillout_event_loop_lag_seconds",
    "How late the event loop ran the last one-second timer of `loop_monitor`: a busy or blocked loop shows here.",
)
mongo_connections = Gauge(
    "chillout_mongo_connections",
    "Database connections the driver's pools hold open now (sync and async clients together).",
)
gc_full_seconds = Histogram(
    "chillout_gc_full_seconds",
    "Duration of each timed collection of every generation (GC_FULL_SECONDS): the event loop's pause.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
gc_full_found = Counter(
    "chillout_gc_full_found", "Unreachable objects the timed full collections found (and freed)."
)
malloc_trim_seconds = Histogram(
    "chillout_malloc_trim_seconds",
    "Duration of each `malloc_trim(0)` (MALLOC_TRIM_SECONDS), in a worker thread: free heap pages given back to the OS.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
python_allocated_blocks = Gauge(
    "chillout_python_allocated_blocks",
    "Memory blocks the Python allocator has handed out and not got back (`sys.getallocatedblocks`): "
    "flat while RSS grows means the growth is below Python (fragmentation, C libraries).",
)
LOOP_MONITOR_INTERVAL = 1.0


async def loop_monitor(*, interval: float = LOOP_MONITOR_INTERVAL) -> None:
    """Background loop: every `interval`, how late its own timer fired and how many tasks exist."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(interval)
        event_loop_lag.set(max(time.monotonic() - asked - interval, 0.0))
        asyncio_tasks.set(len(asyncio.all_tasks()))
        python_allocated_blocks.set(sys.getallocatedblocks())


def gc_full_observe(*, seconds: float, found: int) -> None:
    gc_full_seconds.observe(seconds)
    gc_full_found.inc(found)


class MongoConnectionListener(ConnectionPoolListener):
    """Keeps `chillout_mongo_connections` at the number of pooled connections open.

    PyMongo's base class raises NotImplementedError in every method (logged per event), so
    the other pool events are answered with a no-op here."""

    def connection_created(self, event) -> None:
        mongo_connections.inc()

    def connection_closed(self, event) -> None:
        mongo_connections.dec()

    def _ignored(self, event) -> None:
        """Any other pool event: not counted."""

    pool_created = pool_ready = pool_cleared = pool_closed = connection_ready = _ignored
    connection_check_out_started = connection_check_out_failed = _ignored
    connection_checked_out = connection_checked_in = _ignored


def http_request_observe(*, method: str, route: str, status: int, seconds: float) -> None:
    http_requests.labels(method, route, str(status)).inc()
    http_request_duration.labels(method, route).observe(seconds)


def upload_observe(*, kind: str, size: int) -> None:
    upload_bytes.labels(kind).observe(size)


def upload_refused(*, reason: str) -> None:
    uploads_refused.labels(reason).inc()


def turn_credentials_issued(*, via: str) -> None:
    turn_credentials.labels(via).inc()


def turn_request_refused(*, reason: str) -> None:
    turn_refused.labels(reason).inc()


def message_stored(*, type: str) -> None:
    messages_stored.labels(type).inc()


def purge_observe(*, outcome: str, rooms: int = 0, messages: int = 0, files: int = 0, size: int = 0,
                  seconds: float | None = None) -> None:
    purge_runs.labels(outcome).inc()
    for kind, count in (("rooms", rooms), ("messages", messages), ("files", files), ("bytes", size)):
        if count:
            purge_removed.labels(kind).inc(count)
    if seconds is not None:
        purge_duration.observe(seconds)


def socket_connected() -> None:
    """Call from the `connect` handler once the connection is accepted."""
    sockets_connected.inc()
    socket_connects.inc()


def socket_disconnected() -> None:
    """Call from the `disconnect` handler (only for connections counted as connected)."""
    sockets_connected.dec()


def socket_cut(*, reason: str) -> None:
    """A socket the server disconnected for breaking a limit (`reason`: a short fixed code)."""
    socket_disconnects.labels(reason).inc()


def socket_copies_sent(*, direct: int, queued: int) -> None:
    """One emit's copies: `direct` written into websockets' connections, `queued` on engine.io's queues."""
    if direct:
        _copies_direct.inc(direct)
    if queued:
        _copies_queue.inc(queued)


def session_refused(*, reason: str) -> None:
    """An engine.io handshake refused before any session existed (`reason`: a short fixed code)."""
    engineio_sessions_refused.labels(reason).inc()


def session_opened() -> None:
    """An engine.io handshake admitted (its slot counted)."""
    engineio_sessions.inc()


def session_closed() -> None:
    """An admitted engine.io session's slot given back (once per `session_opened`)."""
    engineio_sessions.dec()


def library_tuning_set(*, name: str, kind: str, active: bool) -> None:
    """Whether the reach `name` is used by this process (one series per reach)."""
    with contextlib.suppress(KeyError):
        library_tuning.remove(name, kind, "0" if active else "1")
    library_tuning.labels(name, kind, "1" if active else "0").set(1)


def rooms_online_set(*, count: int) -> None:
    """Call whenever presence changes with the number of rooms that have someone online."""
    rooms_online.set(count)


def pubsub_received(*, kind: str) -> None:
    pubsub_messages.labels(kind).inc()


def pubsub_room_channels_set(*, count: int) -> None:
    pubsub_room_channels.set(count)


def socket_event_record(
    *, event: str, outcome: str, seconds: float | None = None, reason: str | None = None, sid: str | None = None
) -> None:
    """Count one Socket.IO event and write its log line; the only call a handler needs.

    `outcome` is `handled` or `refused`. For a refusal, `reason` is a short fixed code
    (`invalid_payload`, `rate_limited`, `not_author`, …), never free text, because it is
    a metric label. `rate_limited` also feeds `chillout_socket_rate_limited_total`.
    Payloads are never logged (they hold user messages).
    """
    _child(socket_events, event, outcome).inc()
    if seconds is not None:
        _child(socket_event_duration, event).observe(seconds)
    refused = outcome == "refused"
    if refused:
        reason = reason or "unknown"
        _child(socket_events_refused, event, reason).inc()
        if reason == "rate_limited":
            _child(socket_rate_limited, event).inc()
    # Refusals at INFO; handled events at DEBUG, since ICE candidates alone come in bursts.
    level = logging.INFO if refused else logging.DEBUG
    if not logger.isEnabledFor(level):
        return
    extra = {"event": event, "outcome": outcome, "sid": sid}
    if refused:
        extra["reason"] = reason
    if seconds is not None:
        extra["duration_ms"] = round(seconds * 1000, 1)
    logger.log(level, "socket %s %s%s", event, outcome, f" ({reason})" if refused else "", extra=extra)


_children: dict[tuple, object] = {}


def _child(metric, *labels: str):
    """`metric.labels(*labels)`, remembered: the labelled child of a Socket.IO metric is
    looked up once per label set instead of at every event (label values are bounded sets,
    so this dict is too)."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child
