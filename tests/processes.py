"""Helpers for the tests that start Debian's daemons as real processes on loopback
(redis-server and nginx in tests/scale, coturn in tests/turn_relay.py).

A daemon that is not installed fails the test with the apt-get line that installs it
(`make test` runs it): never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.waiting import attempts_for, wait_until

START_TIMEOUT = 30.0
PACKAGES = {"redis-server": "redis-server", "nginx": "nginx", "turnserver": "coturn"}


def binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        pytest.fail(f"{name} not found: apt-get install -y {PACKAGES.get(name, name)}")
    return path


def ready_wait(check, *, what: str, process: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    """Until `check()` is truthy (its exceptions count as not yet); fails at once if the process exits."""

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_tail(log)}")
        try:
            return bool(check())
        except Exception:
            return False

    wait_until(ready, attempts=attempts_for(timeout), message=lambda: f"{what} not ready within {timeout} s:\n{log_tail(log)}")


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def process_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
