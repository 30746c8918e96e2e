"""`/metrics` access modes and contents, and the one-line-per-request log (plain and JSON)."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from tests.factories import WAV
from tests.waiting import attempts_for, wait_until
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def open_server(server_factory):
    return server_factory(METRICS="open", LOG_FORMAT="json")


def test_metrics_are_off_by_default(http):
    response = http.get("/metrics")
    assert response.status_code == 404 and response.json() == {"error": "not found"}


def test_metrics_token_mode(server_factory):
    server = server_factory(METRICS="token:s3cret")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "error" in wrong.json()
    good = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer s3cret"})
    assert good.status_code == 200 and "chillout_http_requests_total" in good.text


def test_http_requests_are_counted_by_route_pattern(open_server, room_id):
    with httpx.Client(base_url=open_server.url, timeout=30) as client:
        for _ in range(3):
            assert client.get(f"/api/room/{room_id}").status_code == 200
        assert client.get("/api/room/x" * 200).status_code in (400, 404)
        upload = client.post(f"/api/room/{room_id}/voice", files={"voice": ("blob", WAV, "audio/wav")})
        assert upload.status_code == 200
        metrics = samples(client.get("/metrics").text)

    room_route = (("method", "GET"), ("route", "/api/room/<path:room_id>"), ("status", "200"))
    assert metrics[("chillout_http_requests_total", room_route)] >= 3
    assert not any(room_id in str(key) for key in metrics)  # raw paths never become labels
    hist = (("method", "GET"), ("route", "/api/room/<path:room_id>"))
    assert metrics[("chillout_http_request_duration_seconds_count", hist)] >= 3
    assert metrics[("chillout_upload_bytes_sum", (("kind", "voice"),))] >= len(WAV)
    for name in ("chillout_sockets_connected", "chillout_rooms_online", "chillout_purge_runs_total",
                 "chillout_socket_events_total", "chillout_socket_rate_limited_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in httpx.get(f"{open_server.url}/metrics").text


def test_process_gauges_report_tasks_loop_lag_and_database_connections(open_server, room_id):
    """The figures a soak samples (bench/soak.py): the loop monitor's first tick sets the task
    count; the room GET opens at least one pooled database connection."""
    with httpx.Client(base_url=open_server.url, timeout=30) as client:
        assert client.get(f"/api/room/{room_id}").status_code == 200
        for _ in range(100):
            metrics = samples(client.get("/metrics").text)
            if metrics[("chillout_asyncio_tasks", ())] > 0:
                break
            time.sleep(0.1)
    assert metrics[("chillout_asyncio_tasks", ())] > 0
    assert metrics[("chillout_event_loop_lag_seconds", ())] >= 0
    assert metrics[("chillout_python_allocated_blocks", ())] > 10_000  # a Django process holds far more
    assert metrics[("chillout_mongo_connections", ())] >= 1


def test_one_json_log_line_per_request_without_bodies(open_server, room_id):
    secret = "do-not-log-this-body"
    route = '"route": "/api/room/<path:room_id>"'
    earlier = open_server.log_tail(200_000).count(route)
    httpx.post(f"{open_server.url}/api/room/{room_id}/image", files={"image": ("x", secret.encode() * 100)})
    httpx.get(f"{open_server.url}/api/room/{room_id}?limit=5")
    log = open_server.log_wait(route, count=earlier + 1)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "chillout.request"]
    upload = [line for line in requests if line["route"] == "/api/room/<str:room_id>/image"][-1]
    assert upload["status"] == 415 and upload["method"] == "POST" and upload["duration_ms"] >= 0
    assert {"time", "level", "message"} <= upload.keys()
    get = [line for line in requests if line["route"] == "/api/room/<path:room_id>"][-1]
    assert get["status"] == 200
    assert secret not in open_server.log_tail(200_000)
    assert not [line for line in requests if room_id in json.dumps(line)]  # Daphne's own access log has paths


def test_plain_log_line(server, http, room_id):
    http.get("/api/health")
    assert "chillout.request GET /api/health 200 " in server.log_wait("chillout.request GET /api/health 200 ")


def test_the_started_process_freezes_its_startup_objects_and_tunes_the_collector(open_server):
    assert httpx.get(f"{open_server.url}/api/health", timeout=10).status_code == 200  # started by now
    log = open_server.log_wait("garbage collector: ")
    assert "startup objects frozen, thresholds (50000, 50, 100)" in log


@pytest.mark.parametrize("setting, metric", [("GC_FULL_SECONDS", "chillout_gc_full_seconds_count"),
                                             ("MALLOC_TRIM_SECONDS", "chillout_malloc_trim_seconds_count")])  # fmt: skip
def test_a_timed_upkeep_runs_in_the_started_process_and_is_observed(server_factory, setting, metric):
    """GC_FULL_SECONDS (a collection of every generation) and MALLOC_TRIM_SECONDS (free heap
    pages back to the OS): each loop runs in the started process and times each round."""
    server = server_factory(METRICS="open", **{setting: "0.2"})

    def rounds() -> float:
        return samples(httpx.get(f"{server.url}/metrics", timeout=10).text).get((metric, ()), 0)

    assert wait_until(rounds, attempts=attempts_for(30), message=f"no {metric} within 30 s") >= 1
