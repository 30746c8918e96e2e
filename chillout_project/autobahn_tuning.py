"""Under Daphne: autobahn's debug-line arguments formatted only when the line is logged.

autobahn 26.10.2's websocket protocol builds the arguments of its DEBUG lines before the
call, whether or not anything logs them: per websocket it pretty-prints its ~40 options
(`_connectionMade`: `pformat(configAttrLog)`, ~6 % of Daphne's CPU per Socket.IO connect +
join, py-spy, docs/performance.md), and per frame sent it colours the method name, the peer
and the length (`sendData`: `hltype(...)`, `hlval(...)` twice, through click). Replacing those
three names in `autobahn.websocket.protocol` with `lazy(...)` versions defers the formatting
to the log call, which Daphne's log level (WARNING unless `-v 2`) never makes; the text a
line would carry is unchanged. Every call of the three names in that module is the keyword
argument of a `self.log.<level>(...)` call, except `Timings.__str__`, which gets its own
`pformat` back (`timings_str`).

A private detail of autobahn (module-level imports that it calls): the tuning
`autobahn_debug_lines` of `chillout_project.tunings`, applied only on the versions it was
checked against (else left alone, with the registry's warning and metric);
tests/unit/test_autobahn_tuning.py fails when the shape of those calls changes. Nothing happens at import: the composition root calls
`autobahn_tuning_install()`, which only acts when Daphne has already imported autobahn's
websocket protocol.
"""

from __future__ import annotations

import logging
import pprint
import sys
from collections.abc import Callable

from chillout_project.tunings import reach_active

logger = logging.getLogger(__name__)

MODULE = "autobahn.websocket.protocol"
DEFERRED = ("pformat", "hltype", "hlval")  # names in MODULE called only for DEBUG-line arguments


class LazyText:
    """`str(func(*args, **kwargs))` when formatted into a log message, not before."""

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func: Callable[..., object], args: tuple, kwargs: dict) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs

    def __str__(self) -> str:
        return str(self.func(*self.args, **self.kwargs))

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazy(func: Callable[..., object]) -> Callable[..., LazyText]:
    def deferred(*args, **kwargs) -> LazyText:
        return LazyText(func, args, kwargs)

    deferred.chillout_lazy_of = func
    return deferred


def timings_str(self) -> str:
    """`Timings.__str__` of autobahn 26.10.2, with the real `pformat`."""
    return pprint.pformat(self._timings)


def autobahn_tuning_install() -> bool:
    """Make autobahn's websocket protocol module format its debug arguments lazily; False
    when not applied (not under Daphne, the tuning off, or another shape of the module)."""
    module = sys.modules.get(MODULE)
    if module is None or not reach_active("autobahn_debug_lines"):  # not under Daphne, or off
        return False
    if not all(callable(module.__dict__.get(name)) for name in DEFERRED):
        logger.warning("autobahn's websocket protocol no longer calls %s: its debug lines are not tuned", DEFERRED)
        return False
    for name in DEFERRED:
        current = module.__dict__[name]
        if not hasattr(current, "chillout_lazy_of"):
            setattr(module, name, lazy(current))
    module.Timings.__str__ = timings_str
    return True
