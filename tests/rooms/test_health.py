"""Contract §3: liveness and readiness."""

import re

import httpx
import pytest

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_health_answers_the_original_shape(http):
    response = http.get("/api/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["status", "message", "timestamp"]
    assert body["status"] == "ok" and body["message"] == "Server is running"
    assert ISO_MS.match(body["timestamp"])


def test_ready_when_the_database_answers(http):
    response = http.get("/api/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture
def server_on_dead_database(server_factory):
    from chillout_project.embedded_db import free_port

    return server_factory(MONGO_URI=f"mongodb://127.0.0.1:{free_port()}/chillout", MONGO_TIMEOUT_MS="500")


def test_a_database_that_is_down_gives_503_json_not_a_hang(server_on_dead_database):
    with httpx.Client(base_url=server_on_dead_database.url, timeout=30) as client:
        health = client.get("/api/health")
        ready = client.get("/api/ready")
        room = client.get("/api/room/anything")
    assert health.status_code == 200  # liveness never depends on the database
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable" and ready.json()["database"]
    assert room.status_code == 503
    assert room.json() == {"error": "database unavailable"}
