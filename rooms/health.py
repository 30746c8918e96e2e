"""Liveness (`/api/health`, no database) and readiness (`/api/ready`, pings the database)."""

import logging

from pymongo.errors import PyMongoError

from chillout_project.http import api_view, json_response
from chillout_project.mongo import async_db
from rooms.wire import iso_timestamp, utc_now

logger = logging.getLogger(__name__)


@api_view("GET")
async def health(request):
    return json_response({"status": "ok", "message": "Server is running", "timestamp": iso_timestamp(utc_now())})


@api_view("GET")
async def ready(request):
    try:
        await async_db().command("ping")
    except PyMongoError as exc:
        logger.warning("readiness check failed: %s", exc)
        return json_response({"status": "unavailable", "database": type(exc).__name__}, status=503)
    return json_response({"status": "ok", "database": "ok"})
