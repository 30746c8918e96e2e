"""Contract §1: with MONGO_URI unset the server runs its own embedded database."""

import contextlib
import os
import signal

import httpx
import pytest

from chillout_project.embedded_db import pid_alive
from tests.waiting import attempts_for, wait_until


def embedded_pid(data_dir) -> int:
    import json

    return json.loads((data_dir / "embedded-db.json").read_text())["pid"]


def wait_gone(pid: int, *, message: str, timeout: float = 30.0) -> None:
    def gone() -> bool:
        if not pid_alive(pid):
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False

    wait_until(gone, attempts=attempts_for(timeout), message=f"{message} (pid {pid} alive after {timeout} s)")


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_embedded_database_keeps_data_across_restarts(server_factory, data_dir, room_id):
    first = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    room = httpx.get(f"{first.url}/api/room/{room_id}", timeout=30).json()
    db_pid = embedded_pid(data_dir)
    assert (data_dir / "db").is_dir()
    assert first.stop() is not None
    wait_gone(db_pid, message="the server must stop the embedded database it started")

    second = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    again = httpx.get(f"{second.url}/api/room/{room_id}", timeout=30).json()
    assert again["_id"] == room["_id"]
    assert embedded_pid(data_dir) != db_pid
    second.stop()


def test_a_second_process_reuses_the_running_embedded_database(server_factory, data_dir, room_id):
    owner = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    db_pid = embedded_pid(data_dir)
    guest = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    assert embedded_pid(data_dir) == db_pid
    created = httpx.get(f"{owner.url}/api/room/{room_id}", timeout=30).json()
    seen = httpx.get(f"{guest.url}/api/room/{room_id}", timeout=30).json()
    assert seen["_id"] == created["_id"]
    guest.stop()
    assert pid_alive(db_pid), "a process that reused the database must not stop it"
    owner.stop()
    wait_gone(db_pid, message="the embedded database must stop")


def test_a_killed_server_does_not_leave_the_database_running(server_factory, data_dir):
    server = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    db_pid = embedded_pid(data_dir)
    server.stop(sig=signal.SIGKILL)
    wait_gone(db_pid, message="the embedded database watches its parent and exits with it")
