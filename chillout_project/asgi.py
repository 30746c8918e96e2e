"""The ASGI application: Socket.IO beside Django, under Daphne (or any ASGI server).

`/socket.io/` (HTTP long-polling and websocket scopes) goes to python-socketio; everything
else to Django. No Channels origin validator sits in front: it would reject the native
clients that send no Origin header; python-socketio checks CORS itself from FRONTEND_URL.

The database is connected (the embedded one started) here, at import, so the server does
not accept requests before it can reach MongoDB.

Around everything: `LifespanApp` (lifespan events, for servers that send them) and
`ObservedApp` (request log, HTTP metrics, in-flight count; starts the background tasks
on the first request or socket). `graceful_shutdown_install()` makes SIGTERM under Daphne
drain in-flight requests before stopping (chillout_project/lifecycle.py); the media worker
pool (`voice.processing`) is stopped after that drain.
"""

import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chillout_project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from chillout_project import mongo  # noqa: E402
from chillout_project.body_limit import BodyLimitMiddleware  # noqa: E402
from chillout_project.lifecycle import (  # noqa: E402
    LifespanApp,
    background,
    graceful_shutdown_install,
    shutdown_hook_add,
)
from chillout_project.observe import ObservedApp  # noqa: E402
from realtime.server import sio_app  # noqa: E402
from voice.processing import media_pool_shutdown  # noqa: E402

mongo.connect()

router = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                re_path(r"^socket\.io/", sio_app),
                re_path(r"", BodyLimitMiddleware(django_asgi_app)),
            ]
        ),
        "websocket": URLRouter([re_path(r"^socket\.io/", sio_app)]),
    }
)



async def media_pool_stop() -> None:
    """Stop the media worker threads (waits for running jobs) without blocking the loop."""
    await asyncio.to_thread(media_pool_shutdown)


application = LifespanApp(ObservedApp(router, on_first_scope=background.start))
shutdown_hook_add(media_pool_stop, after_drain=True)
graceful_shutdown_install()
