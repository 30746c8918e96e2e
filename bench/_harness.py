"""Shared bench plumbing: a throwaway embedded database, a server process, /proc readings.

Benchmarks print numbers; they are not tests and assert nothing about speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bson import ObjectId

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from chillout_project.embedded_db import free_port, ping, start_or_reuse  # noqa: E402


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Samples a process's RSS every 5 ms in a thread; `.peak` is the highest seen."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_rss_mb(self.pid))
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


APPLICATION = "chillout_project.asgi:application"
# name -> server_process keyword arguments; `original` gets its `cwd` from --original-dir.
SERVERS = {
    "daphne": {},  # the harness default: daphne -v 0
    "uvicorn": {"command": [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
        "--no-access-log", "--ws-per-message-deflate", "false", APPLICATION,
    ]},
    # One worker (the default), no access log (its default); websockets and lifespan are on by default.
    "granian": {"worker_child": True, "command": [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}",
        "--log-level", "warning", APPLICATION,
    ]},
    "original": {"command": ["node", "dist/server.js"], "PORT": "{port}"},
}  # fmt: skip


@contextlib.contextmanager
def embedded_database():
    with tempfile.TemporaryDirectory(prefix="chillout-bench-") as data_dir:
        database = start_or_reuse(Path(data_dir))
        try:
            yield database
        finally:
            database.stop()


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid`, from /proc (Linux 3.5+)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


@contextlib.contextmanager
def server_process(
    mongo_uri: str, *, command: list[str] | None = None, cwd: Path | None = None, worker_child: bool = False,
    port: int | None = None, stop_signal: int = signal.SIGTERM, **env_overrides,
):
    """A server on a free port (or `port`: a restart where its clients reconnect); yields
    (url, pid) once `/api/health` answers 200.

    `{port}` in `command` and in the env values is replaced by the port. `worker_child`: the
    command is a supervisor whose one child serves (granian), and the pid yielded is that
    child's, the process whose CPU and RSS are the server's (and the one to kill -9).
    """
    port = port or free_port()
    env = {
        **os.environ,
        "MONGO_URI": mongo_uri,
        "DJANGO_SETTINGS_MODULE": "chillout_project.settings",
        "LOG_LEVEL": "WARNING",
        "PURGE_INTERVAL_SECONDS": "0",  # a purge pass scanning for orphans would share the CPUs
    }
    env.update({k: str(v).replace("{port}", str(port)) for k, v in env_overrides.items()})
    command = command or [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", "{port}", "chillout_project.asgi:application"]
    command = [part.replace("{port}", str(port)) for part in command]
    # BENCH_SERVER_LOG=<dir>: keep each server's output there (server-<port>.log).
    log_dir = os.environ.get("BENCH_SERVER_LOG")
    output = open(Path(log_dir) / f"server-{port}.log", "ab") if log_dir else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=cwd or ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"server did not start: {command}")
            time.sleep(0.1)
        pid = process.pid
        if worker_child:
            (pid,) = child_pids(process.pid)
        yield url, pid
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
        process.wait(60)


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def median_figures(runs: list[dict]) -> dict:
    """The median of every numeric figure across runs of one scenario, nested dicts and
    per-pid lists included (element by element); non-numeric fields are kept when all runs
    agree. Runs with an `error` are left out by the caller."""
    merged: dict = {}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        if all(isinstance(v, bool) or v is None for v in values):
            if all(v == values[0] for v in values):
                merged[key] = values[0]
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            merged[key] = round(statistics.median(values), 3)
        elif all(isinstance(v, dict) for v in values):
            merged[key] = median_figures(values)
        elif all(isinstance(v, list) and len(v) == len(values[0]) for v in values):
            columns = [median_figures([{"v": v[i]} for v in values]).get("v") for i in range(len(values[0]))]
            merged[key] = columns
        elif all(v == values[0] for v in values):
            merged[key] = values[0]
    return merged


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@contextlib.contextmanager
def embedded_database_on(data_dir: Path, port: int):
    """The embedded database on `data_dir` at a fixed `port`, so that a server keeps its
    `MONGO_URI` across a SIGKILL and restart of it (a fault of `soak.py`); yields its pid."""
    command = [sys.executable, "-m", "chillout_project.embedded_db", "--storage-path", str(data_dir / "db"),
               "--port", str(port), "--parent-pid", str(os.getpid())]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ping(port, timeout=0.5):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("embedded database did not start")
            time.sleep(0.1)
        yield process.pid
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(30)


@contextlib.contextmanager
def redis_server(port: int | None = None):
    """A throwaway redis-server (Debian package `redis-server`) on a free port (or `port`, to
    restart one in place); yields (url, pid)."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="chillout-redis-") as workdir:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.1)
            yield f"redis://127.0.0.1:{port}/0", process.pid
        finally:
            process.terminate()
            process.wait(30)


def history_docs(room_id: str, count: int, *, spacing: float, now: float | None = None) -> list[dict]:
    """`count` text messages of a room as stored, one every `spacing` seconds ending `now`.

    Their `_id`s carry their own time, as a real room's do (range-bounded reads rely on it).
    """
    now = time.time() if now is None else now
    docs = []
    for i in range(count):
        at = now - (count - i) * spacing
        oid = ObjectId(struct.pack(">I", int(at)) + os.urandom(5) + struct.pack(">I", i)[1:])
        created = datetime.fromtimestamp(int(at * 1000) / 1000, tz=UTC)
        docs.append({"_id": oid, "roomId": room_id, "username": f"user{i % 7}", "message": f"message {i} " + "x" * 80,
                     "type": "text", "url": None, "createdAt": created})  # fmt: skip
    return docs
