"""The ASGI application: Socket.IO beside Django, under Daphne (or any ASGI server).

`/socket.io/` (HTTP long-polling and websocket scopes) goes to python-socketio; everything
else to Django. No Channels origin validator sits in front: it would reject the native
clients that send no Origin header; python-socketio checks CORS itself from FRONTEND_URL.

The database is connected (the embedded one started) here, at import, so the server does
not accept requests before it can reach MongoDB.

Around everything: `LifespanApp` (lifespan events, for servers that send them) and
`ObservedApp` (request log, HTTP metrics, in-flight count; starts the background tasks
on the first request or socket). `graceful_shutdown_install()` makes SIGTERM under Daphne
drain in-flight requests before stopping (chillout_project/lifecycle.py).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chillout_project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from chillout_project import mongo  # noqa: E402
from chillout_project.body_limit import BodyLimitMiddleware  # noqa: E402
from chillout_project.lifecycle import LifespanApp, background, graceful_shutdown_install  # noqa: E402
from chillout_project.observe import ObservedApp  # noqa: E402
from realtime.server import sio_app  # noqa: E402

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

application = LifespanApp(ObservedApp(router, on_first_scope=background.start))
graceful_shutdown_install()
