"""SIGTERM under Daphne, during a stream of uploads and downloads, on the embedded database:
every request answered 200 is in the database afterwards, the server exits cleanly, and
the embedded database child it started is gone."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
from tests.factories import media_chunk_count, media_file, png
from tests.waiting import attempts_for, wait_until
from pymongo import MongoClient

from chillout_project.embedded_db import pid_alive, start_or_reuse

WORKERS = 6


@pytest.mark.daphne_only(reason="the graceful SIGTERM (drain, socket clean-up) is built on Daphne's reactor: chillout_project/lifecycle.py")
def test_sigterm_drains_requests_and_stops_the_embedded_database(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    server = server_factory(MONGO_URI="", DATA_DIR=str(data_dir), SHUTDOWN_GRACE_SECONDS="30",
                            PURGE_INTERVAL_SECONDS="0")
    db_pid = json.loads((data_dir / "embedded-db.json").read_text())["pid"]
    assert pid_alive(db_pid)

    acknowledged: list[tuple[str, int]] = []
    downloads_ok = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int):
        blob = png(200, 333 + n, noise=1)  # ~200 KB of real, metadata-free PNG: stored as sent
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                try:
                    response = client.post(f"/api/room/shutdown-{n}/image", files={"image": ("b", blob)})
                    if response.status_code == 200:
                        url = response.json()["url"]
                        with lock:
                            acknowledged.append((url, len(blob)))
                        got = client.get(url)
                        if got.status_code == 200:
                            assert got.content == blob
                            downloads_ok.append(url)
                    else:
                        assert response.status_code == 503 and response.json() == {"error": "server shutting down"}
                except httpx.TransportError:
                    return  # the server stopped listening or closed the connection

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 20:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    returncode = server.process.wait(120)
    stop.set()
    for thread in threads:
        thread.join(60)

    assert returncode == 0, server.log_tail()
    log = server.log_tail(100_000)
    assert "SIGTERM: stopped listening" in log and "in-flight requests finished; stopping" in log
    # The media pool that processed the uploads stops only after them.
    assert log.index("in-flight requests finished; stopping") < log.index("media worker pool stopped")
    assert "Traceback" not in log
    wait_until(lambda: not pid_alive(db_pid), attempts=attempts_for(30), message="the embedded database outlived the server")
    assert downloads_ok

    database = start_or_reuse(data_dir)
    try:
        db = MongoClient(f"{database.uri}/chillout").get_default_database()
        for url, size in acknowledged:
            stored = media_file(db, kind="image", file_id=url.rsplit("/", 1)[1])
            assert stored is not None and stored["length"] == size, url
            assert media_chunk_count(db, kind="image", file_ids=[stored["_id"]]) == 1
    finally:
        database.stop()
