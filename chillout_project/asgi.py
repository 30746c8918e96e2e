"""The composition root: the whole ASGI application is built here, in `build_application()`.

`/socket.io/` (HTTP long-polling and websocket scopes) goes to python-socketio; everything
else to Django. No Channels origin validator sits in front: it would reject the native
clients that send no Origin header; python-socketio checks CORS itself from FRONTEND_URL.

Building starts nothing: no database connection, no child process, no Redis connection, no
task. It wires the apps together and registers with `chillout_project.lifecycle` what runs
later: the database connection (the embedded server started if `MONGO_URI` is unset) as a
startup hook, which `lifecycle.startup()` runs before the first request or websocket is
served (or at `lifespan.startup`); the apps' background loops and shutdown hooks (`rooms`
registers the purge in its `ready()`, `realtime` its own in `realtime_build()`).

Around everything: `LifespanApp` (lifespan events, for servers that send them) and
`ObservedApp` (request log, HTTP metrics, in-flight count; awaits the start on the first
request or socket). `graceful_shutdown_install()` makes SIGTERM under Daphne drain
in-flight requests before stopping (it only asks Daphne's reactor to call it once running);
`daphne_forms_install()` spares Twisted the parse of every upload body
into form arguments Daphne never reads. Every such reach into a library is decided by
`chillout_project.tunings` (`LIBRARY_TUNINGS`, the checked versions); `reaches_decide()`
at the end logs and exports the decision of those nobody asked yet.
"""

import os


def build_application():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chillout_project.settings")
    from chillout_project.async_django import asgi_handler_build, db_signals_disconnect

    django_asgi_app = asgi_handler_build()
    db_signals_disconnect()

    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import re_path

    from chillout_project import mongo
    from chillout_project.body_limit import BodyLimitMiddleware
    from chillout_project.daphne_forms import daphne_forms_install
    from chillout_project.lifecycle import LifespanApp, graceful_shutdown_install, startup, startup_hook_add
    from chillout_project.observe import ObservedApp
    from chillout_project.tunings import reaches_decide
    from realtime.composition import realtime_build

    sio_app = realtime_build()
    startup_hook_add(mongo.connect)
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
    graceful_shutdown_install()
    daphne_forms_install()
    reaches_decide()
    return LifespanApp(ObservedApp(SocketIOFirst(sio_app, router), startup=startup))


class SocketIOFirst:
    """`/socket.io/` (polling and websocket) straight to python-socketio, the rest to `router`.

    The same routing as `router`'s first entries, without Channels' per-scope regex match
    and scope copy on every Socket.IO request, and without one more coroutine frame held
    for each websocket's whole life (memory per idle socket).
    """

    def __init__(self, sio_app, router):
        self.sio_app = sio_app
        self.router = router

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and scope["path"].startswith("/socket.io/"):
            return await self.sio_app(scope, receive, send)
        return await self.router(scope, receive, send)


application = build_application()
