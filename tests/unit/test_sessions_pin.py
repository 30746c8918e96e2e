"""`realtime.sessions` wraps handlers python-socketio registers on its engine.io server, and
`realtime.backpressure` replaces engine.io internals: both are pinned to the versions they
were checked against, and this fails loudly when an upgrade changes what they rely on."""

from importlib import metadata

import engineio
import socketio

from realtime.backpressure import ENGINEIO_VERSION_TESTED
from realtime.sessions import SOCKETIO_VERSION_TESTED


def test_the_pinned_versions_are_installed():
    assert metadata.version("python-socketio") == SOCKETIO_VERSION_TESTED
    assert metadata.version("python-engineio") == ENGINEIO_VERSION_TESTED


def test_python_socketio_registers_the_engineio_handlers_that_are_wrapped():
    sio = socketio.AsyncServer(async_mode="asgi")
    assert {"connect", "message", "disconnect"} <= set(sio.eio.handlers)
    assert callable(sio.manager.sid_from_eio_sid) and callable(sio.manager.eio_sid_from_sid)


def test_a_closed_session_keeps_its_place_in_engineio_until_its_next_request():
    # realtime.sessions.engineio_close forgets it at once because of this (a POST to it: 500)
    assert "if s.closed:\n            del self.sockets[sid]\n            raise KeyError" in open(
        engineio.base_server.__file__
    ).read()
