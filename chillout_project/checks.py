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


def deploy_settings_check(app_configs=None, **kwargs) -> list[Warning]:
    """The warnings for the current settings (an empty list when production-ready)."""
    found = []
    if settings.SECRET_KEY == DEFAULT_SECRET_KEY:
        found.append(Warning(
            "SECRET_KEY is the development default.",
            hint="Set SECRET_KEY to a long random value kept out of the repository.",
            id="chillout.W001",
        ))  # fmt: skip
    if "*" in settings.ALLOWED_HOSTS:
        found.append(Warning(
            "ALLOWED_HOSTS allows any Host: a client's Host header is trusted.",
            hint="Set ALLOWED_HOSTS to the names the server is reached by (e.g. chat.example.com).",
            id="chillout.W002",
        ))  # fmt: skip
    if not settings.PUBLIC_URL:
        found.append(Warning(
            "PUBLIC_URL is not set: media URLs sent to a whole room are built from a request's Host.",
            hint="Set PUBLIC_URL to the server's public origin (e.g. https://chat.example.com).",
            id="chillout.W003",
        ))  # fmt: skip
    if settings.CORS_ALLOW_ALL_ORIGINS:
        found.append(Warning(
            "FRONTEND_URL is '*': any web page may call the API and open sockets from a browser.",
            hint="Set FRONTEND_URL to the web client's origin(s), comma-separated.",
            id="chillout.W004",
        ))  # fmt: skip
    if settings.METRICS == "open":
        found.append(Warning(
            "METRICS is 'open': anyone can read /metrics.",
            hint="Use METRICS=token:<secret> (scraper sends Bearer <secret>), or keep it off.",
            id="chillout.W005",
        ))  # fmt: skip
    if not settings.MONGO_URI:
        found.append(Warning(
            "MONGO_URI is not set: the embedded single-process database is used.",
            hint="Point MONGO_URI at a MongoDB deployment (a replica set for durability and scale-out).",
            id="chillout.W006",
        ))  # fmt: skip
    if getattr(settings, "MONGO_WRITE_CONCERN", "journaled") == "fast":
        found.append(Warning(
            "MONGO_WRITE_CONCERN is 'fast': acknowledged messages may be lost if the database crashes.",
            hint="Use MONGO_WRITE_CONCERN=journaled (the default) or majority.",
            id="chillout.W007",
        ))  # fmt: skip
    return found
