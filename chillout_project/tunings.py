"""Every reach into a library's internals, in one table: what it relies on, and its switch.

Why. Some of the measured gains (docs/tunings.md) and some contract behaviour the libraries
do not offer (connection state recovery, per-IP handshake admission, the outbound bound)
rest on private details of python-socketio, python-engineio, Daphne, autobahn, Twisted,
uvicorn, websockets, redis-py, hiredis and Django. Such a detail may change in any release.
So each reach is named here (`REACHES`) with the versions it was checked against, and asks
`reach_active(name)` when it is built (never at import):

* on a checked version it is used;
* on any other version (a library moved outside the lock) it is **not**: the library's own
  behaviour is used instead (slower, or without the extension), one WARNING names the reach
  and the versions, and `chillout_library_tuning{name, kind, active="0"}` says so on
  /metrics. No server refuses to start because a library moved.

Two kinds:

* `tuning` — only speed: the library's own path is correct, just slower. `LIBRARY_TUNINGS`
  selects them: `on` (all, the default), `off` (none), `a,b` (only these), `-a,-b` (all but
  these). Every contract test passes with `LIBRARY_TUNINGS=off` (`make test` runs the
  realtime and recovery tiers that way).
* `extension` — contract behaviour built on a private hook. Not switched by
  `LIBRARY_TUNINGS` (turning it off would break the contract); its feature setting is its
  switch (`RECOVERY`, `MAX_CONNECTIONS_PER_IP`, `MAX_OUTBOUND_BYTES`, ...), and on an
  unchecked version it falls back like a tuning.

A checked version is exact, or a series (`5.2.*`) where the reach also compares the
library's code with the shape it replaces (Django's handler: its security releases should
not wait for us). The lock (requirements/*.txt) holds checked versions:
tests/unit/test_tunings.py fails when a re-lock moves one, naming what to re-check.
`python -m chillout_project.tunings [LOCK]` prints the table against the installed versions
(or a lock's), as `make upgrade` does. What each reach buys is measured in docs/tunings.md.

The selection is `settings.LIBRARY_TUNINGS`; in a process without Django settings (a bare
python-socketio app, tests/realtime/delivery_app.py) the `LIBRARY_TUNINGS` environment
variable, parsed the same way.

Concurrency: decided once per process, on first ask, from the event loop or at start-up
(no await in between, so two first asks cannot both decide).
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

TUNING = "tuning"
EXTENSION = "extension"

DAPHNE = {"daphne": ("4.2.3",)}
AUTOBAHN = {"autobahn": ("26.10.2", "26.11.1")}  # 26.11.1: stricter header parsing only (re-checked)
TWISTED = {"twisted": ("26.10.0",)}
UVICORN = {"uvicorn": ("0.54.0",), "websockets": ("17.4",)}
SOCKETIO = {"python-socketio": ("5.18.1",)}
ENGINEIO = {"python-engineio": ("4.15.1",)}
REDIS = {"redis": ("8.1.0",)}


@dataclass(frozen=True, slots=True)
class Reach:
    name: str
    kind: str
    checked: dict[str, tuple[str, ...]]  # distribution -> the versions it was checked against
    where: str
    relies_on: str  # what to re-check on a new version


REACHES: dict[str, Reach] = {
    reach.name: reach
    for reach in (
        Reach("daphne_form_parse", TUNING, DAPHNE | TWISTED, "chillout_project.daphne_forms",
              "Daphne builds requests from its module global WebRequest and never reads request.args"),
        Reach("django_asgi_handler", TUNING, {"django": ("5.2.*",)}, "chillout_project.async_django",
              "ASGIHandler.__call__ only wraps self.handle in a ThreadSensitiveContext"),
        Reach("direct_write", TUNING, DAPHNE | AUTOBAHN | TWISTED | UVICORN | ENGINEIO | SOCKETIO,
              "realtime.wire, realtime.delivery",
              "the autobahn/Twisted and websockets-sansio connection state wire.py reads; engine.io's queue "
              "and writer; python-socketio's _send_eio_packet"),
        Reach("room_index", TUNING, SOCKETIO, "realtime.room_index",
              "AsyncManager changes membership only through basic_enter_room/basic_leave_room"),
        Reach("redis_pipe", TUNING, REDIS | {"hiredis": ("3.5.0",)}, "realtime.redis_pipe",
              "send_packed_command writes before its first await; hiredis.pack_command packs as redis-py"),
        Reach("engineio_poll", EXTENSION, ENGINEIO, "realtime.delivery",
              "AsyncSocket.poll's contract (timeout -> QueueEmpty, None ends); caps a polling response"),
        Reach("outbound_bound", EXTENSION, ENGINEIO, "realtime.backpressure",
              "AsyncSocket.send/handle_get_request/handle_post_request and the ASGI websocket class"),
        Reach("daphne_transport", EXTENSION, DAPHNE, "realtime.guards",
              "Daphne passes send = partial(server.handle_reply, protocol)"),
        Reach("uvicorn_transport", EXTENSION, UVICORN, "realtime.guards",
              "uvicorn's websocket send is the protocol's bound method, with .transport"),
        Reach("session_admission", EXTENSION, SOCKETIO | ENGINEIO, "realtime.sessions",
              "python-socketio registers connect/disconnect on sio.eio; a connect return value refuses"),
        Reach("recovery", EXTENSION, SOCKETIO, "realtime.recovery_server",
              "the private AsyncServer/AsyncManager methods recovery_server overrides"),
    )
}


def distribution_version(distribution: str) -> str | None:
    """The installed version of `distribution` (None if absent), read once per process:
    reading a distribution's metadata costs ~0.3 ms (files, an e-mail header parse)."""
    return _installed(distribution.lower())


@functools.cache
def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def selection_parse(value: str) -> frozenset[str]:
    """The tunings `LIBRARY_TUNINGS` selects: `on`, `off`, `a,b` or `-a,-b`; ValueError for
    an unknown name or a mix of both forms."""
    tunings = {name for name, reach in REACHES.items() if reach.kind == TUNING}
    value = value.strip().lower()
    if value in ("on", "all", ""):
        return frozenset(tunings)
    if value in ("off", "none"):
        return frozenset()
    names = [name.strip() for name in value.split(",") if name.strip()]
    excluded = [name[1:] for name in names if name.startswith("-")]
    if excluded and len(excluded) != len(names):
        raise ValueError("LIBRARY_TUNINGS: either names to keep or -names to drop, not both")
    unknown = sorted(set(excluded or names) - tunings)
    if unknown:
        raise ValueError(f"LIBRARY_TUNINGS: unknown tuning(s) {', '.join(unknown)}; known: {', '.join(sorted(tunings))}")
    return frozenset(tunings - set(excluded)) if excluded else frozenset(names)


def versions_unchecked(reach: Reach, versions: dict[str, str | None]) -> dict[str, str | None]:
    """{distribution: installed} for each one of `reach` not at a checked version."""
    return {dist: versions.get(dist) for dist, checked in reach.checked.items() if not version_checked(versions.get(dist), checked)}


def version_checked(installed: str | None, checked: tuple[str, ...]) -> bool:
    """Whether `installed` is one of `checked` (exact versions, or series like `5.2.*`)."""
    return installed is not None and any(fnmatch.fnmatchcase(installed, pattern) for pattern in checked)


_decided: dict[str, bool] = {}


def reach_active(name: str) -> bool:
    """Whether the reach `name` is used in this process (decided once; see the module doc)."""
    active = _decided.get(name)
    if active is None:
        active = _decided[name] = _decide(REACHES[name])
    return active


def _selected() -> frozenset[str]:
    from django.conf import settings

    if settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
        return settings.LIBRARY_TUNINGS
    return selection_parse(os.environ.get("LIBRARY_TUNINGS", "on"))


def _decide(reach: Reach) -> bool:
    from chillout_project import metrics

    if reach.kind == TUNING and reach.name not in _selected():
        metrics.library_tuning_set(name=reach.name, kind=reach.kind, active=False)
        return False
    unchecked = versions_unchecked(reach, {dist: distribution_version(dist) for dist in reach.checked})
    if unchecked:
        logger.warning(
            "library %s %s is off: checked on %s, installed %s; using the library's own behaviour (re-check: %s)",
            reach.kind, reach.name, _versions_text(reach.checked), _versions_text(unchecked), reach.relies_on,
        )  # fmt: skip
    metrics.library_tuning_set(name=reach.name, kind=reach.kind, active=not unchecked)
    return not unchecked


def reaches_decide() -> dict[str, bool]:
    """Decide every reach now (the composition root does, so /metrics and the log show all)."""
    return {name: reach_active(name) for name in REACHES}


def reaches_reset() -> None:
    """Forget the decisions (tests that change the settings or the checked tables)."""
    _decided.clear()


def _versions_text(versions: dict) -> str:
    return ", ".join(f"{dist} {'/'.join(v) if isinstance(v, tuple) else v}" for dist, v in versions.items())


LOCKED = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)", re.MULTILINE)


def lock_versions(path: Path) -> dict[str, str]:
    """{distribution (lower case): version} pinned in a requirements lock."""
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in LOCKED.findall(path.read_text())}


def report(versions: dict[str, str | None]) -> list[str]:
    """One line per reach: whether `versions` (a lock's or the installed) are the checked ones."""
    lines = []
    for reach in REACHES.values():
        unchecked = versions_unchecked(reach, versions)
        state = "ok" if not unchecked else f"RE-CHECK ({_versions_text(unchecked)}; checked {_versions_text(reach.checked)})"
        lines.append(f"{reach.kind:9} {reach.name:22} {state}")
    return lines


def main(argv: list[str]) -> int:
    """`python -m chillout_project.tunings [LOCK]`: exit 1 when a reach needs re-checking."""
    if argv:
        versions: dict[str, str | None] = dict(lock_versions(Path(argv[0])))
    else:
        versions = {dist: distribution_version(dist) for reach in REACHES.values() for dist in reach.checked}
    lines = report(versions)
    print("\n".join(lines))
    return 1 if any("RE-CHECK" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
