"""Shared fixtures: a real embedded MongoDB-wire server and real server processes.

Nothing is mocked. The session starts one throwaway embedded database (TTL sweep every
second) and one server process on a free port pointed at it; tests talk to that server over
real sockets and check the database directly with PyMongo. Tests that need other settings
or a restart start their own server with `server_factory`.

The server is Daphne (the production server) unless `CHILLOUT_TEST_SERVER=uvicorn`: then
every server is the same ASGI application under uvicorn (`--ws-per-message-deflate false`,
the documented alternative); `make test` runs the suite under both. Tests of behaviour
that is Daphne's own are marked `daphne_only` and skipped under uvicorn.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from chillout_project.embedded_db import free_port, start_or_reuse
from tests.waiting import attempts_for, wait_until

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT = 90.0
TEST_SERVER = os.environ.get("CHILLOUT_TEST_SERVER", "daphne")
if TEST_SERVER not in ("daphne", "uvicorn"):
    raise RuntimeError(f"CHILLOUT_TEST_SERVER must be daphne or uvicorn, not {TEST_SERVER!r}")


def server_command(port: int, *, extra: tuple[str, ...] = ()) -> list[str]:
    """The command that serves the ASGI application on 127.0.0.1:port under TEST_SERVER.

    `extra` are options both servers know by the same name (`--proxy-headers`)."""
    if TEST_SERVER == "uvicorn":
        return [sys.executable, "-m", "uvicorn", *extra, "--host", "127.0.0.1", "--port", str(port),
                "--ws-per-message-deflate", "false", "chillout_project.asgi:application"]
    return [sys.executable, "-m", "daphne", *extra, "-b", "127.0.0.1", "-p", str(port),
            "chillout_project.asgi:application"]


def pytest_collection_modifyitems(config, items):
    if TEST_SERVER == "daphne":
        return
    for item in items:
        marker = item.get_closest_marker("daphne_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"Daphne only: {marker.kwargs.get('reason', '')}"))


@dataclass
class ServerProcess:
    """A Chillout server in its own process (`server_command`, unless given), on 127.0.0.1:port."""

    env: dict
    log_path: Path
    command: list[str] = field(default_factory=list)
    daphne_args: tuple[str, ...] = ()  # extra options of the server command, e.g. --proxy-headers
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> ServerProcess:
        self.port = self.port or free_port()
        command = self.command or server_command(self.port, extra=self.daphne_args)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                return httpx.get(f"{self.url}/api/health", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, attempts=attempts_for(timeout), message=lambda: f"server not healthy within {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_wait(self, text: str, *, count: int = 1, size: int = 200_000, timeout: float = 30.0) -> str:
        """The log's tail once it contains `text` `count` times (the server writes a request's
        line after its response has gone out): polled, never a fixed sleep."""
        def logged() -> str | None:
            log = self.log_tail(size)
            return log if log.count(text) >= count else None

        return wait_until(logged, attempts=attempts_for(timeout, 0.05), pause=0.05,
                          message=lambda: f"{text!r} not logged within {timeout} s:\n{self.log_tail(size)[-3000:]}")  # fmt: skip

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


def server_env(**overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chillout_project.settings",
            "PYTHONUNBUFFERED": "1",
            "FRONTEND_URL": "http://localhost:3000",
            "LOG_LEVEL": "INFO",
            # Every test uploads (and asks for TURN credentials) from 127.0.0.1: the per-IP limits
            # are off unless a test sets them.
            "UPLOAD_RATE": "0",
            "TURN_RATE": "0",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture(scope="session")
def embedded_db(tmp_path_factory):
    """A throwaway embedded database for the whole session (TTL sweep every second)."""
    database = start_or_reuse(tmp_path_factory.mktemp("embedded-db"), ttl_sweep_seconds=1.0)
    yield database
    database.stop()


@pytest.fixture
def private_db_dir(tmp_path):
    """`private_db_dir()`: an embedded database of this test only, on one data directory (the
    session's is shared and must not be killed); call again after a SIGKILL to restart it on
    the same data. Every one started is stopped at the end."""
    started = []

    def start():
        database = start_or_reuse(tmp_path / "db", ttl_sweep_seconds=60.0)
        started.append(database)
        return database

    yield start
    for database in started:
        database.stop()


@pytest.fixture(scope="session")
def mongo_uri(embedded_db) -> str:
    return f"{embedded_db.uri}/chillout_test"


@pytest.fixture(scope="session")
def mongo(mongo_uri):
    """PyMongo handle on the test database, to check what the server really stored."""
    client = MongoClient(mongo_uri, tz_aware=True)
    yield client.get_default_database()
    client.close()


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory, mongo_uri):
    """Start extra servers: `server_factory(SEND_RATE="1", ...)`; all stopped at session end."""
    started: list[ServerProcess] = []
    logs = tmp_path_factory.mktemp("server-logs")

    def start(*, command: list[str] | None = None, daphne_args: tuple[str, ...] = (), **overrides) -> ServerProcess:
        overrides.setdefault("MONGO_URI", mongo_uri)
        server = ServerProcess(
            env=server_env(**overrides),
            log_path=logs / f"server-{len(started)}.log",
            command=command or [],
            daphne_args=daphne_args,
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(server_factory) -> ServerProcess:
    """The shared Chillout server (Daphne, or uvicorn: see TEST_SERVER), on the session's embedded database."""
    return server_factory()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


@pytest.fixture
def room_id() -> str:
    """A fresh room id per test, so tests never see each other's messages."""
    return f"room-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def upload(http):
    """POST a file the way the web client does: multipart, field `voice`/`image`, plus `username`."""

    def post(room: str, kind: str, data: bytes, *, username: str = "alice", filename: str = "blob", field=None):
        return http.post(
            f"/api/room/{room}/{kind}",
            files={field or kind: (filename, data, "application/octet-stream")},
            data={"username": username},
        )

    return post


@pytest.fixture
def library_moved(monkeypatch):
    """`library_moved(name)`: in this test, the reach `name` of chillout_project.tunings was
    checked on no installed version (as after an upgrade outside the lock). Decisions are
    forgotten before and after, so the next ask decides again."""
    from dataclasses import replace

    from chillout_project import tunings

    def move(name: str) -> None:
        reach = tunings.REACHES[name]
        moved = {dist: ("0.0.0",) for dist in reach.checked}
        monkeypatch.setitem(tunings.REACHES, name, replace(reach, checked=moved))
        tunings.reaches_reset()

    tunings.reaches_reset()
    yield move
    tunings.reaches_reset()
