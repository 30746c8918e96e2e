"""Contract §1: with MONGO_URI unset the server runs its own embedded database."""

import os
import signal
import time

import httpx
import pytest

from chillout_project.embedded_db import pid_alive


def embedded_pid(data_dir) -> int:
    import json

    return json.loads((data_dir / "embedded-db.json").read_text())["pid"]


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_embedded_database_keeps_data_across_restarts(server_factory, data_dir, room_id):
    first = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    room = httpx.get(f"{first.url}/api/room/{room_id}", timeout=30).json()
    db_pid = embedded_pid(data_dir)
    assert (data_dir / "db").is_dir()
    assert first.stop() is not None
    assert wait_gone(db_pid), "the server must stop the embedded database it started"

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
    assert wait_gone(db_pid)


def test_a_killed_server_does_not_leave_the_database_running(server_factory, data_dir):
    server = server_factory(MONGO_URI="", DATA_DIR=str(data_dir))
    db_pid = embedded_pid(data_dir)
    server.stop(sig=signal.SIGKILL)
    assert wait_gone(db_pid), "the embedded database watches its parent and exits with it"
