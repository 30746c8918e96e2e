"""The embedded MongoDB-wire server used when `MONGO_URI` is unset.

Why a child process: secantusdb's server is pure Python and would share the GIL with
Daphne if run in-process (measured ~45 % slower under async load), so it runs as a
separate process started from this same module (`python -m chillout_project.embedded_db`).

Why "start or reuse": WiredTiger locks its directory, so only one server may own a
`DATA_DIR`. A state file next to the data records the running server's pid and port; a
second Chillout process (a management command while the server runs) connects to that
server instead of starting another. Starting is serialised with an flock.

Lifetime: the process that started the server stops it at exit (atexit), and the child
watches its parent's pid, so even a `kill -9` of the parent cannot leave an orphan holding
the directory lock.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

STATE_FILE = "embedded-db.json"
LOCK_FILE = "embedded-db.lock"
STORAGE_DIR = "db"


@dataclass
class EmbeddedDatabase:
    """A running embedded server; `owned` says whether this process must stop it."""

    uri: str
    pid: int
    owned: bool
    process: subprocess.Popen | None = None

    def stop(self, timeout: float = 30.0) -> None:
        if not self.owned or self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ping(port: int, timeout: float = 1.0) -> bool:
    """True when a MongoDB-wire server answers `ping` on 127.0.0.1:port."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client = MongoClient(
        host="127.0.0.1",
        port=port,
        serverSelectionTimeoutMS=int(timeout * 1000),
        connectTimeoutMS=int(timeout * 1000),
        directConnection=True,
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_or_reuse(
    data_dir: Path,
    *,
    ttl_sweep_seconds: float = 60.0,
    startup_timeout: float = 60.0,
    idle_timeout_seconds: float = 300.0,
) -> EmbeddedDatabase:
    """Return a server for `data_dir`: the one already running there, or a new child."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = _running_server(data_dir)
        if running is not None:
            logger.info("embedded database reused at %s (pid %s)", running.uri, running.pid)
            return running
        database = _spawn(
            data_dir,
            ttl_sweep_seconds=ttl_sweep_seconds,
            startup_timeout=startup_timeout,
            idle_timeout_seconds=idle_timeout_seconds,
        )
        (data_dir / STATE_FILE).write_text(json.dumps({"pid": database.pid, "uri": database.uri}))
    atexit.register(database.stop)
    logger.info("embedded database started at %s (pid %s)", database.uri, database.pid)
    return database


def _running_server(data_dir: Path) -> EmbeddedDatabase | None:
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        pid, uri = int(state["pid"]), str(state["uri"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    port = int(uri.rsplit(":", 1)[1].split("/", 1)[0])
    if pid_alive(pid) and ping(port):
        return EmbeddedDatabase(uri=uri, pid=pid, owned=False)
    return None


def _spawn(
    data_dir: Path, *, ttl_sweep_seconds: float, startup_timeout: float, idle_timeout_seconds: float
) -> EmbeddedDatabase:
    port = free_port()
    log = open(data_dir / "embedded-db.log", "ab")
    command = [
        sys.executable,
        "-m",
        "chillout_project.embedded_db",
        "--storage-path",
        str(data_dir / STORAGE_DIR),
        "--port",
        str(port),
        "--parent-pid",
        str(os.getpid()),
        "--ttl-sweep-seconds",
        str(ttl_sweep_seconds),
        "--idle-timeout-seconds",
        str(idle_timeout_seconds),
    ]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=str(Path(__file__).resolve().parent.parent),
        start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
    )
    log.close()
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (data_dir / "embedded-db.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"embedded database exited with {process.returncode}:\n{tail}")
        if ping(port, timeout=0.5):
            return EmbeddedDatabase(uri=f"mongodb://127.0.0.1:{port}", pid=process.pid, owned=True, process=process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"embedded database did not answer within {startup_timeout:.0f} s")


def serve(args: argparse.Namespace) -> None:
    """Child-process entry point: run the server until SIGTERM or the parent's death."""
    from secantus import SecantusDBServer

    Path(args.storage_path).mkdir(parents=True, exist_ok=True)
    server = SecantusDBServer(
        host="127.0.0.1",
        port=args.port,
        storage_path=args.storage_path,
        replica_set_name=None,
        ttl_sweep_seconds=args.ttl_sweep_seconds,
        client_idle_timeout_s=args.idle_timeout_seconds,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    try:
        while not stop.wait(1.0):
            if args.parent_pid and not pid_alive(args.parent_pid):
                break
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded MongoDB-wire server (secantusdb).")
    parser.add_argument("--storage-path", required=True, help="WiredTiger directory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this process is gone")
    parser.add_argument("--ttl-sweep-seconds", type=float, default=60.0)
    parser.add_argument("--idle-timeout-seconds", type=float, default=300.0)
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
