"""Refusing to run on library versions a reach into their internals was not checked against.

`distribution_version` reads an installed version once per process. A module that relies
on a library's private behaviour keeps a table of the versions it was
checked against and calls `versions_require` when it is built (not at import): an upgrade
then fails at start with what to re-check, instead of misbehaving later.
"""

from __future__ import annotations

import functools
from importlib import metadata


@functools.cache
def distribution_version(distribution: str) -> str | None:
    """The installed version of `distribution` (None if absent), read once per process:
    reading a distribution's metadata costs ~0.3 ms (files, an e-mail header parse), and
    some checks are asked for every websocket that opens (`realtime.guards`, `realtime.wire`)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions_require(supported: dict[str, tuple[str, ...]], *, user: str, recheck: str) -> None:
    """Raise RuntimeError unless each distribution in `supported` is installed at one of its
    versions; `user` names the module relying on them, `recheck` what to verify on a new one."""
    for distribution, checked in supported.items():
        installed = distribution_version(distribution)
        if installed not in checked:
            raise RuntimeError(
                f"{user} relies on {distribution} {checked}, not the installed {installed}: "
                f"check {recheck}, then add the version"
            )
