"""Per-request observation: one log line, the HTTP metrics, the in-flight count.

`ObservedApp` wraps the whole ASGI application (asgi.py), so it also sees what never reaches
Django: Socket.IO's HTTP long-polling and the 413s of `BodyLimitMiddleware`. It times each
HTTP request from the scope's start to the last body message, and writes one log line with
method, route, status and duration. A request that ends without a response because its
client disconnected (an upload aborted mid-body, under servers that call the application
before the body is complete: uvicorn) is logged and counted as 499, not 500. Bodies, query strings and raw paths are never logged:
paths carry room ids, and bodies carry messages.

The route label is the URL pattern Django matched (`/api/room/<path:room_id>`), not the
raw path, so metrics keep a bounded number of series. Only Django knows it, after
resolving, so `RouteMiddleware` writes it into a holder dict that `ObservedApp` put in the
scope (a holder, because Channels' URLRouter copies the scope dict on its way down).

The same wrapper counts in-flight requests for graceful shutdown (`shutdown.py`): once the
server is draining, new requests are answered 503 at once, so a client that keeps its
connection alive cannot hold the shutdown open.
"""

from __future__ import annotations

import asyncio
import logging
import time

from asgiref.sync import markcoroutinefunction

from chillout_project import metrics
from chillout_project.http import asgi_json_send

logger = logging.getLogger("chillout.request")

SCOPE_KEY = "chillout.observe"
UNMATCHED = "<unmatched>"
SOCKETIO_ROUTE = "/socket.io/"
CLIENT_CLOSED_REQUEST = 499
"""The status logged and counted for a request whose client went away before any response
(nginx's convention): not a server error, though no response was sent."""


class RequestTracker:
    """In-flight HTTP requests of this process, and whether it is draining for shutdown."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.draining = False
        self._idle: asyncio.Event | None = None

    def started(self) -> None:
        self.in_flight += 1
        metrics.http_requests_in_flight.inc()

    def finished(self) -> None:
        self.in_flight -= 1
        metrics.http_requests_in_flight.dec()
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no tracked request is in flight; False when `timeout` ran out first."""
        self._idle = asyncio.Event()
        if self.in_flight == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


tracker = RequestTracker()


class ObservedApp:
    """`startup`, when given, is awaited by every request or websocket until it has run once
    (the process's start under servers without lifespan events: `lifecycle.startup`)."""

    def __init__(self, app, *, startup=None):
        self.app = app
        self.startup = startup
        self._started = startup is None

    async def __call__(self, scope, receive, send):
        if not self._started and scope["type"] in ("http", "websocket"):
            await self.startup()
            self._started = True
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # A long-poll waits for the next packet by design: it is neither latency nor work
        # that shutdown should wait for.
        long_poll = scope["path"].startswith(SOCKETIO_ROUTE) and scope["method"] == "GET"
        if tracker.draining and not long_poll:
            return await _shutting_down(send)

        holder = {"route": SOCKETIO_ROUTE if scope["path"].startswith(SOCKETIO_ROUTE) else None}
        scope = {**scope, SCOPE_KEY: holder}
        status = None
        client_gone = False
        started = time.perf_counter()

        async def observed_receive():
            nonlocal client_gone
            message = await receive()
            client_gone = client_gone or message["type"] == "http.disconnect"
            return message

        async def observed_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if not long_poll:
            tracker.started()
        try:
            await self.app(scope, observed_receive, observed_send)
        finally:
            if not long_poll:
                tracker.finished()
            if status is None:
                status = CLIENT_CLOSED_REQUEST if client_gone else 500
            seconds = time.perf_counter() - started
            route = holder["route"] or (UNMATCHED if status != 413 else "<body-limit>")
            method = scope["method"]
            metrics.http_request_observe(method=method, route=route, status=status, seconds=seconds)
            logger.info(
                "%s %s %s %.1fms",
                method,
                route,
                status,
                seconds * 1000,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 1)},
            )


class RouteMiddleware:
    """Django middleware: record the matched URL pattern for `ObservedApp`."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        holder = getattr(request, "scope", {}).get(SCOPE_KEY)
        match = request.resolver_match
        if holder is not None and match is not None:
            holder["route"] = "/" + match.route
        return response


async def _shutting_down(send) -> None:
    await asgi_json_send(
        send, status=503, data={"error": "server shutting down"}, headers=[(b"connection", b"close"), (b"retry-after", b"1")]
    )
