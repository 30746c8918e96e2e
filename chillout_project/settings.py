"""All of Chillout's settings, in one place.

Every value comes from the process environment (or a `.env` file in the working
directory, read first) through django-environ. The README has the table of every
variable; keep the two in step.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from chillout_project import tunings
from chillout_project.gc_tuning import gc_thresholds_parse
from chillout_project.write_concern import write_concern_from_setting

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(Path.cwd() / ".env", overwrite=False)

# --- Django core -------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="chillout-insecure-development-key-change-me")  # checks.DEFAULT_SECRET_KEY
# Django's convention: local names only unless production says which names it serves.
# REST requests with another Host get 400, Socket.IO handshakes are refused, and media
# URLs are never built from a Host outside this list (chillout_project.http).
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[".localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "daphne",  # makes `manage.py runserver` serve the ASGI application under Daphne
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "corsheaders",
    "chillout_project.apps.ChilloutConfig",  # `manage.py check --deploy` (chillout_project/checks.py)
    "rooms",
    "voice",
    "realtime",
]

MIDDLEWARE = [
    "chillout_project.observe.RouteMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "chillout_project.async_django.AsyncSecurityMiddleware",  # Django's, without the thread hops
]

ROOT_URLCONF = "chillout_project.urls"
ASGI_APPLICATION = "chillout_project.asgi.application"

# Chillout keeps no relational data: MongoDB (through pymongo and mongoengine) holds everything.
DATABASES: dict = {}

TEMPLATES: list = []
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SECURE_CONTENT_TYPE_NOSNIFF = True
# Large upload bodies spill to disk above this size instead of being held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- Process -----------------------------------------------------------------------

PORT = env.int("PORT", default=5000)
DATA_DIR = Path(env.str("DATA_DIR", default="./var")).resolve()
PUBLIC_URL = env.str("PUBLIC_URL", default="").rstrip("/")

# --- Database ----------------------------------------------------------------------

MONGO_URI = env.str("MONGO_URI", default="")
MONGO_DB_NAME = env.str("MONGO_DB_NAME", default="chillout")
MONGO_TIMEOUT_MS = env.int("MONGO_TIMEOUT_MS", default=5000)
# The embedded server closes connections idle for 300 s; stay well below that.
MONGO_MAX_IDLE_MS = env.int("MONGO_MAX_IDLE_MS", default=120_000)
MONGO_POOL_SIZE = env.int("MONGO_POOL_SIZE", default=100)
# When a write counts as done (acked, answered 200, broadcast): `journaled` (default, j:true),
# `majority` (replica sets: w:majority, j:true, wtimeout MONGO_TIMEOUT_MS) or `fast` (w:1 without
# the journal: a database crash loses the last moments). See chillout_project/write_concern.py.
MONGO_WRITE_CONCERN = env.str("MONGO_WRITE_CONCERN", default="journaled")
try:
    write_concern_from_setting(MONGO_WRITE_CONCERN)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
EMBEDDED_DB_STARTUP_TIMEOUT = env.float("EMBEDDED_DB_STARTUP_TIMEOUT", default=60.0)
EMBEDDED_DB_TTL_SWEEP_SECONDS = env.float("EMBEDDED_DB_TTL_SWEEP_SECONDS", default=60.0)

ROOM_TTL_SECONDS = env.int("ROOM_TTL_SECONDS", default=2_592_000)
# Message writes move a room's lastActivity at most once per this many seconds per process
# (capped at 1 % of ROOM_TTL_SECONDS): see rooms/writes.py. 0 moves it on every message.
ROOM_TOUCH_RESOLUTION_SECONDS = env.float("ROOM_TOUCH_RESOLUTION_SECONDS", default=60.0)
# online_users at most once per room per this many ms per process (realtime/presence.py); 0 = every change.
PRESENCE_COALESCE_MS = env.float("PRESENCE_COALESCE_MS", default=50.0)

# --- History cache (rooms/history.py) ----------------------------------------------

# Rooms whose recent history a process keeps (least recently read out first); 0 = off.
HISTORY_CACHE_ROOMS = env.int("HISTORY_CACHE_ROOMS", default=64)
# Newest messages kept per room; a room with more serves its full history from the database.
HISTORY_CACHE_MESSAGES = env.int("HISTORY_CACHE_MESSAGES", default=2000)
# Every read re-fetches the messages made in this window before the previous read: the
# longest an insert may take to be acknowledged after its _id is made (plus clock skew).
# A read costs about the messages the room received in this window.
HISTORY_CACHE_LAG_SECONDS = env.float("HISTORY_CACHE_LAG_SECONDS", default=10.0)
# Bytes of message JSON the whole cache holds at most (a room's entry keeps its newest
# messages that fit; least recently read rooms go first). 0 = no byte bound.
HISTORY_CACHE_BYTES = env.int("HISTORY_CACHE_BYTES", default=64 * 1024 * 1024)
# Messages per database batch when a full history is streamed (GET without `limit`, a room
# the cache does not hold whole): bounds that read's memory whatever the room's size.
HISTORY_STREAM_BATCH = env.int("HISTORY_STREAM_BATCH", default=500)
if HISTORY_STREAM_BATCH < 1:
    raise ImproperlyConfigured("HISTORY_STREAM_BATCH must be positive")
# An entry is read whole again after this long (a backstop for the lag assumption).
HISTORY_CACHE_MAX_AGE_SECONDS = env.float("HISTORY_CACHE_MAX_AGE_SECONDS", default=120.0)
# Recently stored media kept in memory per process for the downloads that follow an upload
# (voice/recent_files.py): files up to MEDIA_CACHE_FILE_BYTES, MEDIA_CACHE_BYTES in all; 0 = off.
MEDIA_CACHE_BYTES = env.int("MEDIA_CACHE_BYTES", default=64 * 1024 * 1024)
MEDIA_CACHE_FILE_BYTES = env.int("MEDIA_CACHE_FILE_BYTES", default=4 * 1024 * 1024)

# --- Expiry purge (rooms/purge.py) -------------------------------------------------

# Seconds between purge passes inside the server; 0 turns the periodic pass off.
PURGE_INTERVAL_SECONDS = env.float("PURGE_INTERVAL_SECONDS", default=3600.0)
# Messages and files younger than this are never taken for orphans: a write that creates
# a room and stores into it is not atomic, and must not be caught between its two steps.
PURGE_GRACE_SECONDS = env.float("PURGE_GRACE_SECONDS", default=60.0)
# An upload that no message names (claims) within this many seconds is deleted by the purge.
UPLOAD_ATTACH_SECONDS = env.float("UPLOAD_ATTACH_SECONDS", default=3600.0)
# How long the cross-process purge lease holds before another process may take it over.
PURGE_LEASE_SECONDS = env.float("PURGE_LEASE_SECONDS", default=900.0)

# --- Shutdown (chillout_project/shutdown.py) ---------------------------------------

# On SIGTERM: seconds to let in-flight HTTP requests finish before the server stops.
SHUTDOWN_GRACE_SECONDS = env.float("SHUTDOWN_GRACE_SECONDS", default=30.0)
# The cyclic garbage collector's thresholds once the process has started, after freezing the
# startup objects (chillout_project/gc_tuning.py); "default" = CPython's own (700,10,10).
try:
    GC_THRESHOLDS = gc_thresholds_parse(env.str("GC_THRESHOLDS", default="50000,50,100"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# With tuned thresholds: seconds between collections of every generation (the oldest one
# would otherwise hold the sockets' dead reference cycles); 0 = never.
GC_FULL_SECONDS = env.float("GC_FULL_SECONDS", default=60.0)
if GC_FULL_SECONDS < 0:
    raise ImproperlyConfigured("GC_FULL_SECONDS must be >= 0")
# Seconds between glibc `malloc_trim(0)` calls that give the heap's free pages back to the
# OS (chillout_project/heap_trim.py); 0 = never.
MALLOC_TRIM_SECONDS = env.float("MALLOC_TRIM_SECONDS", default=60.0)
if MALLOC_TRIM_SECONDS < 0:
    raise ImproperlyConfigured("MALLOC_TRIM_SECONDS must be >= 0")

# --- CORS (REST and Socket.IO) -----------------------------------------------------

FRONTEND_URL = env.list("FRONTEND_URL", default=["http://localhost:3000"])
CORS_ALLOW_ALL_ORIGINS = "*" in FRONTEND_URL
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else FRONTEND_URL

# --- Limits (contract §6) ----------------------------------------------------------

MAX_VOICE_BYTES = env.int("MAX_VOICE_BYTES", default=10 * 1024 * 1024)
MAX_IMAGE_BYTES = env.int("MAX_IMAGE_BYTES", default=10 * 1024 * 1024)
# Multipart framing and the username field on top of the largest file.
MAX_REQUEST_OVERHEAD_BYTES = env.int("MAX_REQUEST_OVERHEAD_BYTES", default=64 * 1024)
MAX_MESSAGE_CHARS = env.int("MAX_MESSAGE_CHARS", default=5000)
MAX_PACKET_BYTES = env.int("MAX_PACKET_BYTES", default=1_000_000)
SEND_RATE = env.float("SEND_RATE", default=10.0)
SEND_BURST = env.int("SEND_BURST", default=20)
RELAY_RATE = env.float("RELAY_RATE", default=50.0)
RELAY_BURST = env.int("RELAY_BURST", default=200)
# Engine.io sessions per client IP, connected or not, counted from the handshake (polling
# and websocket) until the session ends: the handshake past this many is refused
# (realtime/sessions.py; across processes with REDIS_URL).
MAX_CONNECTIONS_PER_IP = env.int("MAX_CONNECTIONS_PER_IP", default=200)
# An engine.io session that has not completed a Socket.IO CONNECT by then is closed (0 = never).
CONNECT_TIMEOUT_SECONDS = env.float("CONNECT_TIMEOUT_SECONDS", default=10.0)
JOIN_RATE = env.float("JOIN_RATE", default=5.0)  # join_room / leave_room per socket
JOIN_BURST = env.int("JOIN_BURST", default=20)
# Events of one socket waiting or running; the first one beyond disconnects it. Also the
# most packets one polling POST may carry (engine.io's Payload.max_decode_packets).
MAX_PENDING_EVENTS = env.int("MAX_PENDING_EVENTS", default=64)
# Most packets one long-polling GET's response carries; the rest waits for the next GET.
# python-engineio clients drop a whole response of more than 16 (their max_decode_packets).
POLLING_RESPONSE_PACKETS = env.int("POLLING_RESPONSE_PACKETS", default=16)
if POLLING_RESPONSE_PACKETS < 1:
    raise ImproperlyConfigured("POLLING_RESPONSE_PACKETS must be at least 1")
# Data queued for one socket and not yet taken by its transport; beyond: slow consumer, cut.
MAX_OUTBOUND_BYTES = env.int("MAX_OUTBOUND_BYTES", default=1024 * 1024)
MAX_RELAY_BYTES = env.int("MAX_RELAY_BYTES", default=64 * 1024)  # offer/answer/candidate body, as JSON
# The tunings (reaches into libraries' internals for speed, chillout_project/tunings.py) in use:
# on (all), off (none: every library's own path), name1,name2 (only these), -name1 (all but).
try:
    LIBRARY_TUNINGS = tunings.selection_parse(env.str("LIBRARY_TUNINGS", default="on"))
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
if min(MAX_PENDING_EVENTS, MAX_OUTBOUND_BYTES, MAX_RELAY_BYTES, CONNECT_TIMEOUT_SECONDS) < 0:
    raise ImproperlyConfigured("MAX_PENDING_EVENTS, MAX_OUTBOUND_BYTES, MAX_RELAY_BYTES and CONNECT_TIMEOUT_SECONDS must not be negative")
# Uploads (voice and image together) per client IP: token bucket, per process; 0 = off.
UPLOAD_RATE = env.float("UPLOAD_RATE", default=2.0)
UPLOAD_BURST = env.int("UPLOAD_BURST", default=10)
MAX_ROOM_ID_CHARS = 128
MAX_USERNAME_CHARS = 64
HISTORY_PAGE_MAX = 1000
HISTORY_PAGE_DEFAULT = 50  # `before` without `limit`
# Media processing (voice/processing/): caps checked before full decode, `?w=` widths, pool size.
MAX_IMAGE_PIXELS = env.int("MAX_IMAGE_PIXELS", default=40_000_000)
MAX_VOICE_SECONDS = env.float("MAX_VOICE_SECONDS", default=600.0)
THUMBNAIL_WIDTHS = env.list("THUMBNAIL_WIDTHS", cast=int, default=[160, 320, 640])
MEDIA_WORKERS = env.int("MEDIA_WORKERS", default=2)
if MEDIA_WORKERS < 1 or MAX_IMAGE_PIXELS < 1 or MAX_VOICE_SECONDS <= 0:
    raise ImproperlyConfigured("MEDIA_WORKERS, MAX_IMAGE_PIXELS and MAX_VOICE_SECONDS must be positive")
if not THUMBNAIL_WIDTHS or min(THUMBNAIL_WIDTHS) < 1:
    raise ImproperlyConfigured("THUMBNAIL_WIDTHS must be a non-empty list of positive widths")

# --- Connection state recovery, typing, edits (issue 12) ----------------------------

# A socket that lost its transport and reconnects within this many seconds gets its sid,
# room and presence back and every room broadcast it missed (Socket.IO v4 recovery).
# 0 turns recovery off: no pid, no offsets, no log (the cost is one log append per room
# broadcast: see bench/README.md).
RECOVERY_WINDOW_SECONDS = env.float("RECOVERY_WINDOW_SECONDS", default=120.0)
# At most this many broadcasts are kept per room (a client that missed more reconnects
# as a new connection).
RECOVERY_MAX_EVENTS = env.int("RECOVERY_MAX_EVENTS", default=1000)
if RECOVERY_WINDOW_SECONDS < 0 or RECOVERY_MAX_EVENTS < 1:
    raise ImproperlyConfigured("RECOVERY_WINDOW_SECONDS must be >= 0 and RECOVERY_MAX_EVENTS positive")
RECOVERY = RECOVERY_WINDOW_SECONDS > 0 and env.str("RECOVERY", default="on").lower() != "off"
# `typing` events per socket (their own token bucket; 0 = off) and how long a "typing"
# indicator lasts without a new `typing: true` before the others are told it stopped.
TYPING_RATE = env.float("TYPING_RATE", default=5.0)
TYPING_BURST = env.int("TYPING_BURST", default=10)
TYPING_TIMEOUT_SECONDS = env.float("TYPING_TIMEOUT_SECONDS", default=6.0)
if TYPING_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("TYPING_TIMEOUT_SECONDS must be positive")

# --- ICE servers for calls (realtime/ice_servers.py) ------------------------------

# coturn's `use-auth-secret` (the "REST API for TURN services" draft): GET /api/turn and the
# join_call ack hand out TURN credentials valid TURN_TTL_SECONDS, signed with the first of
# TURN_SECRET's comma-separated secrets (the others are the ones being rotated out; coturn
# holds them all as `static-auth-secret` lines). Unset: no TURN entry, only STUN_URLS.
TURN_SECRETS = tuple(secret for secret in env.list("TURN_SECRET", default=[]) if secret)
TURN_URLS = env.list("TURN_URLS", default=[])
STUN_URLS = env.list("STUN_URLS", default=[])
# A day, as coturn's and Synapse's examples: a call outlives its join, and a browser reuses
# the credentials of its RTCPeerConnection for the whole call (ICE restarts included).
TURN_TTL_SECONDS = env.int("TURN_TTL_SECONDS", default=86_400)
# GET /api/turn per client IP (token bucket, per process, as uploads); 0 = off.
TURN_RATE = env.float("TURN_RATE", default=1.0)
TURN_BURST = env.int("TURN_BURST", default=10)
if bool(TURN_SECRETS) != bool(TURN_URLS):
    raise ImproperlyConfigured("TURN_SECRET and TURN_URLS go together: set both or neither")
if any(not url.startswith(("turn:", "turns:")) for url in TURN_URLS):
    raise ImproperlyConfigured("every TURN_URLS entry starts with turn: or turns:")
if any(not url.startswith(("stun:", "stuns:")) for url in STUN_URLS):
    raise ImproperlyConfigured("every STUN_URLS entry starts with stun: or stuns:")
if TURN_TTL_SECONDS < 1 or TURN_RATE < 0 or TURN_BURST < 0:
    raise ImproperlyConfigured("TURN_TTL_SECONDS must be positive, TURN_RATE and TURN_BURST not negative")

# --- Scale-out ---------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
# Every Redis key and the Socket.IO pub/sub channel start with this, so that several
# deployments (or test runs) can share one Redis without seeing each other.
REDIS_PREFIX = env.str("REDIS_PREFIX", default="chillout:")
# Connections each Redis client of a process may open (realtime/redis_pool.py); a command
# that finds them all busy waits up to REDIS_POOL_TIMEOUT_SECONDS for one.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=16)
REDIS_POOL_TIMEOUT_SECONDS = env.float("REDIS_POOL_TIMEOUT_SECONDS", default=10.0)
if REDIS_MAX_CONNECTIONS < 2 or REDIS_POOL_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("REDIS_MAX_CONNECTIONS must be >= 2 (a subscription holds one) and REDIS_POOL_TIMEOUT_SECONDS positive")
# A process whose heartbeat is this old is taken for dead: the others remove its sockets
# (presence, call rosters, per-IP counts) with the effects of a disconnect. It refreshes
# its heartbeat every third of this, and the others look for dead ones as often.
DEAD_PROCESS_SECONDS = env.float("DEAD_PROCESS_SECONDS", default=30.0)
if DEAD_PROCESS_SECONDS <= 0:
    raise ImproperlyConfigured("DEAD_PROCESS_SECONDS must be positive")

# --- Logging -----------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# `plain` (human-readable lines) or `json` (one JSON object per line, python-json-logger).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO-8601 in UTC
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
    },
}

# --- Metrics (chillout_project/metrics.py) -----------------------------------------

# `off` (GET /metrics answers 404), `open`, or `token:<secret>` (Bearer <secret> required).
METRICS = env.str("METRICS", default="off")
if METRICS not in ("off", "open") and not (METRICS.startswith("token:") and len(METRICS) > len("token:")):
    raise ImproperlyConfigured("METRICS must be 'off', 'open' or 'token:<secret>'")
