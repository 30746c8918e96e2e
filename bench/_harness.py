"""Shared bench plumbing: a throwaway embedded database, a server process, /proc readings.

Benchmarks print numbers; they are not tests and assert nothing about speed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from chillout_project.embedded_db import free_port, start_or_reuse  # noqa: E402


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


@contextlib.contextmanager
def embedded_database():
    with tempfile.TemporaryDirectory(prefix="chillout-bench-") as data_dir:
        database = start_or_reuse(Path(data_dir))
        try:
            yield database
        finally:
            database.stop()


@contextlib.contextmanager
def server_process(mongo_uri: str, *, command: list[str] | None = None, **env_overrides):
    port = free_port()
    env = {
        **os.environ,
        "MONGO_URI": mongo_uri,
        "DJANGO_SETTINGS_MODULE": "chillout_project.settings",
        "LOG_LEVEL": "WARNING",
        "PURGE_INTERVAL_SECONDS": "0",  # a purge pass scanning for orphans would share the CPUs
    }
    env.update({k: str(v) for k, v in env_overrides.items()})
    command = command or [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", "{port}", "chillout_project.asgi:application"]
    command = [part.replace("{port}", str(port)) for part in command]
    # BENCH_SERVER_LOG=<dir>: keep each server's output there (server-<port>.log).
    log_dir = os.environ.get("BENCH_SERVER_LOG")
    output = open(Path(log_dir) / f"server-{port}.log", "ab") if log_dir else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@contextlib.contextmanager
def redis_server():
    """A throwaway redis-server (Debian package `redis-server`) on a free port; yields (url, pid)."""
    port = free_port()
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
