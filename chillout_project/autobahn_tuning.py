"""Under Daphne: autobahn's per-connection debug dump formatted only when it is logged.

autobahn 26.10.2's `WebSocketProtocol._connectionMade` copies its ~40 options onto every
new websocket and logs them at DEBUG with `pformat(...)` evaluated before the call, so
every websocket that opens pretty-prints that list whether or not anything logs it: ~8 %
of Daphne's CPU per Socket.IO connect + join (py-spy, docs/performance.md). Replacing the
module's `pformat` name with `LazyPformat` defers the formatting to the log call, which
Daphne's log level (WARNING unless `-v 2`) never makes. The names it formats and the text
it would log are unchanged.

A private detail of autobahn (a module-level import that it calls): applied only to the
exact version it was checked against (`AUTOBAHN_VERSION_TESTED`), else left alone with a
warning; tests/unit/test_autobahn_tuning.py fails when the installed version changes.
Nothing happens at import: the composition root calls `autobahn_tuning_install()`, which
only acts when Daphne has already imported autobahn's websocket protocol.
"""

from __future__ import annotations

import logging
import pprint
import sys
from importlib import metadata

logger = logging.getLogger(__name__)

AUTOBAHN_VERSION_TESTED = "26.10.2"
MODULE = "autobahn.websocket.protocol"


class LazyPformat:
    """`pprint.pformat(value)` when formatted into a log message, not before."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return pprint.pformat(self.value)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def autobahn_tuning_install() -> bool:
    """Make autobahn's websocket protocol module format lazily; False when not applied."""
    module = sys.modules.get(MODULE)
    if module is None:  # not under Daphne (or Daphne not started yet): nothing to do
        return False
    version = metadata.version("autobahn")
    if version != AUTOBAHN_VERSION_TESTED or module.__dict__.get("pformat") not in (pprint.pformat, LazyPformat):
        logger.warning("autobahn %s not tuned (checked against %s)", version, AUTOBAHN_VERSION_TESTED)
        return False
    module.pformat = LazyPformat
    return True
