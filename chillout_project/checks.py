"""`manage.py check --deploy`: Chillout's settings that are unsafe in production.

Django's system-check framework already reports its own deploy settings (`security.W…`:
HSTS, secure cookies, a weak `SECRET_KEY`); these are Chillout's. Each names one setting,
why it matters, and what to set instead, with a fixed id (`chillout.W001`…) that
operators can silence with `SILENCED_SYSTEM_CHECKS` when the choice is deliberate. The
function is registered by `chillout_project.apps.ChilloutConfig.ready` (importing this
module registers nothing).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning

DEFAULT_SECRET_KEY = "chillout-insecure-development-key-change-me"


# (id, is the setting unsafe?, what is wrong, what to set instead)
UNSAFE_SETTINGS = (
    ("chillout.W001", lambda: settings.SECRET_KEY == DEFAULT_SECRET_KEY,
     "SECRET_KEY is the development default.",
     "Set SECRET_KEY to a long random value kept out of the repository."),
    ("chillout.W002", lambda: "*" in settings.ALLOWED_HOSTS,
     "ALLOWED_HOSTS allows any Host: a client's Host header is trusted.",
     "Set ALLOWED_HOSTS to the names the server is reached by (e.g. chat.example.com)."),
    ("chillout.W003", lambda: not settings.PUBLIC_URL,
     "PUBLIC_URL is not set: media URLs sent to a whole room are built from a request's Host.",
     "Set PUBLIC_URL to the server's public origin (e.g. https://chat.example.com)."),
    ("chillout.W004", lambda: settings.CORS_ALLOW_ALL_ORIGINS,
     "FRONTEND_URL is '*': any web page may call the API and open sockets from a browser.",
     "Set FRONTEND_URL to the web client's origin(s), comma-separated."),
    ("chillout.W005", lambda: settings.METRICS == "open",
     "METRICS is 'open': anyone can read /metrics.",
     "Use METRICS=token:<secret> (scraper sends Bearer <secret>), or keep it off."),
    ("chillout.W006", lambda: not settings.MONGO_URI,
     "MONGO_URI is not set: the embedded single-process database is used.",
     "Point MONGO_URI at a MongoDB deployment (a replica set for durability and scale-out)."),
    ("chillout.W007", lambda: settings.MONGO_WRITE_CONCERN == "fast",
     "MONGO_WRITE_CONCERN is 'fast': acknowledged messages may be lost if the database crashes.",
     "Use MONGO_WRITE_CONCERN=journaled (the default) or majority."),
)  # fmt: skip


def deploy_settings_check(app_configs=None, **kwargs) -> list[Warning]:
    """The warnings for the current settings (an empty list when production-ready)."""
    return [Warning(text, hint=hint, id=check_id) for check_id, unsafe, text, hint in UNSAFE_SETTINGS if unsafe()]
