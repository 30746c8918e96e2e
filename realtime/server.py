"""The python-socketio `AsyncServer` and its ASGI app.

The handlers live in `realtime.events`, imported at the bottom so that whoever imports
`sio` (the ASGI application) gets a server with every handler registered.
"""

import socketio
from django.conf import settings

from realtime.delivery import DirectEmitManager, engineio_poll_install, orjson_module


def cors_origins():
    return "*" if settings.CORS_ALLOW_ALL_ORIGINS else list(settings.CORS_ALLOWED_ORIGINS)


engineio_poll_install()

sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=DirectEmitManager(),
    json=orjson_module,
    cors_allowed_origins=cors_origins(),
    max_http_buffer_size=settings.MAX_PACKET_BYTES,
    ping_interval=25,
    ping_timeout=20,
)

sio_app = socketio.ASGIApp(sio, socketio_path="socket.io")

from realtime import events  # noqa: E402, F401  (registers the handlers on `sio`)
