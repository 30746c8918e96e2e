"""Importing any module starts nothing: no thread, no asyncio task, no child process, no socket.

Every module of the four packages (management commands included) is imported in a FRESH
interpreter, after `django.setup()` (itself part of what is checked), with the settings of a
plain start: no `MONGO_URI` (the embedded database would be started by a careless import)
and a `REDIS_URL` (a Redis client would be created). The child reports what it sees before
and after; the parent compares. The baseline is taken after importing `daphne.apps`, whose
reactor installation (an event loop's socket pair) is Daphne's, not Chillout's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chillout_project", "rooms", "voice", "realtime")

PROBE = r"""
import asyncio, gc, importlib, json, os, pkgutil, sys, threading

def snapshot():
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    children = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            children += f.read().split()
    return {
        "threads": sorted(t.name for t in threading.enumerate()),
        "os_threads": len(os.listdir("/proc/self/task")),
        "tasks": sum(1 for o in gc.get_objects() if issubclass(type(o), asyncio.Task)),
        "children": children,
        "sockets": sum(1 for link in fds if link.startswith("socket:")),
    }

# Daphne's AppConfig installs Twisted's asyncio reactor (an event loop and its self-pipe
# socket pair) as `manage.py runserver` needs: Daphne's doing, so part of the baseline.
import daphne.apps
before = snapshot()
import django
django.setup()
imported = []
for package in sys.argv[1:]:
    root = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"before": before, "after": snapshot(), "imported": imported}))
"""


def test_importing_every_module_starts_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MONGO_URI"))}
    env.update(
        DJANGO_SETTINGS_MODULE="chillout_project.settings",
        DATA_DIR=str(tmp_path / "data"),
        REDIS_URL="redis://127.0.0.1:9/0",
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *PACKAGES], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "chillout_project.asgi" in report["imported"]
    assert "realtime.composition" in report["imported"]
    assert any(".management.commands." in name for name in report["imported"])
    assert report["after"] == report["before"], done.stderr[-4000:]
