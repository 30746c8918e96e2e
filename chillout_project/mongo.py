"""The one way Chillout reaches MongoDB, embedded or real.

`connect()` resolves the URI (`MONGO_URI`, or the embedded server started or reused under
`DATA_DIR`), registers the mongoengine connection used by documents and management
commands, and creates the indexes each app registered (`index_setup_register`, called from
the apps' `AppConfig.ready()`: this module imports no app). Request and socket hot paths use `async_db()`, PyMongo's
native async driver, so nothing blocks the event loop (see docs/decisions.md for the
measurement against the sync driver in a thread pool).

Concurrency caveat: an `AsyncMongoClient` belongs to the event loop it first ran on. The
server has one loop for its lifetime; a management command that uses the async services
runs them in one `asyncio.run()`, and `reset_async_client()` exists for code (tests,
commands) that must start over on a new loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import mongoengine
from django.conf import settings
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from chillout_project import embedded_db, metrics
from chillout_project.write_concern import write_concern_client_options, write_concern_from_setting

logger = logging.getLogger(__name__)

_lock = threading.RLock()  # re-entered: index creation uses the connection being set up
_uri: str | None = None
_db_name: str | None = None
_async_client: AsyncMongoClient | None = None
_index_setups: dict[str, Callable[[], list[str]]] = {}
_connection_listener = metrics.MongoConnectionListener()  # one for every client: the gauge is their sum


def client_options() -> dict:
    """Driver options shared by the sync and the async client.

    The write concern (`MONGO_WRITE_CONCERN`, journaled by default) is set on the clients,
    so every handle made from them (collections, GridFS, mongoengine documents) inherits it
    and no write can forget it: an insert returns only once it is durable, which is what
    lets callers ack and broadcast right after. It overrides `journal` in `MONGO_URI`;
    `journaled` keeps a `w` given there.
    """
    concern = write_concern_from_setting(settings.MONGO_WRITE_CONCERN, wtimeout_ms=settings.MONGO_TIMEOUT_MS)
    return {
        "serverSelectionTimeoutMS": settings.MONGO_TIMEOUT_MS,
        "connectTimeoutMS": settings.MONGO_TIMEOUT_MS,
        "maxIdleTimeMS": settings.MONGO_MAX_IDLE_MS,
        "maxPoolSize": settings.MONGO_POOL_SIZE,
        "tz_aware": True,
        "event_listeners": [_connection_listener],
        **write_concern_client_options(concern),
    }


def database_name(uri: str) -> str:
    path = urlsplit(uri).path.lstrip("/")
    return path or settings.MONGO_DB_NAME


def resolve_uri() -> str:
    """`MONGO_URI` when set; otherwise start (or reuse) the embedded server."""
    if settings.MONGO_URI:
        return settings.MONGO_URI
    server = embedded_db.start_or_reuse(
        settings.DATA_DIR,
        ttl_sweep_seconds=settings.EMBEDDED_DB_TTL_SWEEP_SECONDS,
        startup_timeout=settings.EMBEDDED_DB_STARTUP_TIMEOUT,
    )
    return f"{server.uri}/{settings.MONGO_DB_NAME}"


def connect(*, ensure_indexes: bool = True) -> str:
    """Connect once per process; returns the URI in use. Safe to call repeatedly."""
    global _uri, _db_name
    with _lock:
        if _uri is None:
            uri = resolve_uri()
            _db_name = database_name(uri)
            mongoengine.connect(db=_db_name, host=uri, alias="default", **client_options())
            _uri = uri
            if ensure_indexes:
                indexes_ensure_logged()
    return _uri


def indexes_ensure_logged() -> None:
    """Create indexes at start-up; a database that is down must not stop the server."""
    from pymongo.errors import PyMongoError

    try:
        indexes_ensure()
    except PyMongoError as exc:
        logger.warning("could not create indexes at start-up (will answer 503 until the database is back): %s", exc)


def index_setup_register(*, name: str, setup: Callable[[], list[str]]) -> None:
    """Register an app's index set-up (sync; returns the index names); run in registration order."""
    _index_setups[name] = setup


def indexes_ensure() -> list[str]:
    """Create every index the registered apps need; returns their names."""
    return [index for setup in _index_setups.values() for index in setup()]


def sync_client() -> MongoClient:
    connect()
    return mongoengine.get_connection()


def sync_db():
    connect()
    return mongoengine.get_db()


def async_db() -> AsyncDatabase:
    global _async_client
    if _async_client is None:
        uri = connect()
        _async_client = AsyncMongoClient(uri, **client_options())
    return _async_client[_db_name]


def reset_async_client() -> None:
    """Forget the async client (it is bound to the loop it first ran on)."""
    global _async_client
    _async_client = None
