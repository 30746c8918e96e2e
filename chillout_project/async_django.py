"""Django request handling without thread hops: what a small request paid for nothing.

Under ASGI, Django runs every sync piece of a request (sync middleware hooks, sync signal
receivers) through `sync_to_async(thread_sensitive=True)`, and inside the per-request
`ThreadSensitiveContext` of `ASGIHandler` that is a fresh one-thread executor per request:
a thread started, two loop wake-ups per hop, and the thread joined. A small
`GET /api/room/<id>` made four such hops (docs/performance.md, "Per request"):

* `SecurityMiddleware` is a `MiddlewareMixin`: its `process_request` and
  `process_response` each ran in the thread. `AsyncSecurityMiddleware` calls the same two
  hooks on the event loop (they only read the request and set headers; no I/O), so the
  headers and the redirect are Django's own, from the same settings.
* `django.db` connects `reset_queries` and `close_old_connections` to `request_started` /
  `request_finished`; with no relational database (`DATABASES = {}`) they iterate over
  nothing, but `Signal.asend` still ran them in the thread. `db_signals_disconnect()`
  (called by the composition root) disconnects them when `DATABASES` is empty.

* `ASGIHandler` closes each response with `sync_to_async(response.close)`: one hop that
  remained, and the costly part of a hop is the per-request executor's thread (start and
  join), not the hop. `asgi_handler_build()` returns a handler without the per-request
  `ThreadSensitiveContext`, so that hop runs on asgiref's one long-lived sync thread.
  What the context is for (one slow sync view not holding up the others' sync parts) does
  not apply: every Chillout view is async, and what runs in that thread is `close()` of a
  response (no I/O: bodies are bytes or async iterators). Tied to Django's handler shape:
  the tuning `django_asgi_handler` of `chillout_project.tunings` (checked on Django 5.2's
  patch releases, whose handler is also compared with the shape it replaces), with a
  fallback to Django's own handler; `tests/unit/test_async_django.py` fails when the
  shape changes.
"""

from __future__ import annotations

import inspect
import logging

import django
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler
from django.middleware.security import SecurityMiddleware

from chillout_project.tunings import reach_active

logger = logging.getLogger(__name__)


class AsyncSecurityMiddleware(SecurityMiddleware):
    """Django's `SecurityMiddleware`, its hooks called on the event loop."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        super().__init__(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = self.process_request(request)
        if response is None:
            response = await self.get_response(request)
        return self.process_response(request, response)


def db_signals_disconnect() -> None:
    """Without a relational database, the per-request connection housekeeping has nothing to do."""
    if settings.DATABASES:
        return
    from django.db import close_old_connections, reset_queries

    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)


class SharedThreadASGIHandler(ASGIHandler):
    """Django's `ASGIHandler` without the per-request `ThreadSensitiveContext` (see above)."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError("Django can only handle ASGI/HTTP connections, not %s." % scope["type"])
        await self.handle(scope, receive, send)


def handler_shape_known() -> bool:
    """True if Django's `ASGIHandler.__call__` is the one `SharedThreadASGIHandler` replaces."""
    source = inspect.getsource(ASGIHandler.__call__)
    return "ThreadSensitiveContext()" in source and "self.handle(scope, receive, send)" in source


def asgi_handler_build() -> ASGIHandler:
    """What `get_asgi_application()` returns, without the per-request thread when Django's shape is known."""
    django.setup(set_prefix=False)
    if not reach_active("django_asgi_handler"):
        return ASGIHandler()
    if not handler_shape_known():
        logger.warning("Django %s: its ASGI handler changed; using it as it is", django.get_version())
        return ASGIHandler()
    return SharedThreadASGIHandler()
