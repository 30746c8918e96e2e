"""Helpers for the operations tests: a database of the test's own, running `manage.py` as a
real subprocess. Sample data (rooms, messages, media) comes from `tests.factories`."""

from __future__ import annotations

import subprocess
import sys
import uuid

from tests.conftest import PROJECT_ROOT, server_env


def separate_db_uri(mongo_uri: str) -> str:
    """A fresh database on the session's server, so a test's TTL index and counts are its own."""
    return f"{mongo_uri.rsplit('/', 1)[0]}/ops_{uuid.uuid4().hex[:10]}"


def manage(*args: str, mongo_uri: str, stdin: str | None = None, timeout: float = 180, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=server_env(MONGO_URI=mongo_uri, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
