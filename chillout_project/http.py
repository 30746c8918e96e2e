"""JSON answers for the REST API: success, errors, and the project-wide error handlers.

`api_view` is the one decorator every REST view wears: it answers a wrong method with 405
JSON (and `Allow`), turns a `ChilloutError` into `{"error": text}` with its status, and a
database that cannot be reached into 503. Anything else propagates to `handler500`, which
logs it and answers a generic JSON 500: never an HTML page, never a stack trace.
"""

import functools
import logging
from collections.abc import Callable

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError, WriteConcernError

from chillout_project.errors import ChilloutError

logger = logging.getLogger(__name__)

# A write the database could not make durable in time (`MONGO_WRITE_CONCERN=majority` without a
# reachable majority: wtimeout) is answered like a database that is down: it was not acknowledged.
DATABASE_DOWN = (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect, WriteConcernError)


def json_response(data, status: int = 200, headers: dict | None = None) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json", headers=headers)


def error_response(text: str, status: int, headers: dict | None = None) -> HttpResponse:
    return json_response({"error": text}, status=status, headers=headers)


def api_view(*methods: str):
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    def decorate(view):
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in allowed:
                return error_response(
                    f"method {request.method} not allowed", 405, headers={"Allow": ", ".join(sorted(allowed))}
                )
            try:
                return await view(request, *args, **kwargs)
            except ChilloutError as exc:
                return error_response(exc.message, exc.status)
            except DATABASE_DOWN as exc:
                logger.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
                return error_response("database unavailable", 503)

        return wrapper

    return decorate


async def asgi_json_send(send, *, status: int, data, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """A whole JSON response sent straight on an ASGI `send`, for the layers in front of Django."""
    body = orjson.dumps(data)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def media_origin(*, scheme: str, host: Callable[[], str], fallback_host: str) -> str:
    """The origin that absolute media URLs start with, for REST and Socket.IO alike.

    `PUBLIC_URL` when set; else `scheme://host`, with the Host the client sent if
    `ALLOWED_HOSTS` allows it (as Django checks it for REST requests), else `fallback_host`
    (the server's own address). The result ends up in URLs broadcast to a whole room, so
    production should set `PUBLIC_URL`. `host` is called only without `PUBLIC_URL` (for REST
    it is `request.get_host`, which refuses a Host not allowed).
    """
    if settings.PUBLIC_URL:
        return settings.PUBLIC_URL
    given = host()
    if not host_allowed(given):
        given = fallback_host
    return f"{scheme}://{given}"


def host_allowed(host: str | None) -> bool:
    """Whether a `Host` header value (name and optional port) is in `ALLOWED_HOSTS`, as Django
    checks it for every REST request (`HttpRequest.get_host`). Socket.IO handshakes are
    checked with this too (`realtime.sessions`), and media URLs are built only from an
    allowed Host."""
    if not host:
        return False
    return _host_allowed(host, tuple(settings.ALLOWED_HOSTS))


@functools.lru_cache(maxsize=256)
def _host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Asked at every Socket.IO handshake, with the few Host values a deployment sees:
    remembered (bounded: a client choosing its Host only evicts entries)."""
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


def media_base(request: HttpRequest) -> str:
    """`media_origin` of a REST request."""
    return media_origin(scheme=request.scheme, host=request.get_host, fallback_host="")


def request_client_ip(request: HttpRequest) -> str:
    """The client's address for per-IP limits: the ASGI scope's client (Django's `REMOTE_ADDR`),
    which Daphne and uvicorn take from `X-Forwarded-For` only when started with
    `--proxy-headers` (behind a trusted proxy)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def handler400(request, exception=None):
    return error_response("bad request", 400)


def handler403(request, exception=None):
    return error_response("forbidden", 403)


def handler404(request, exception=None):
    return error_response("not found", 404)


def handler500(request):
    return error_response("internal server error", 500)
