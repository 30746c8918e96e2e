"""The core's pure helpers: one media origin for REST and sockets, one ASGI JSON response,
and the lifecycle's registry (registration starts nothing; `startup()` runs once)."""

import asyncio

import orjson
from django.test import RequestFactory

from chillout_project import lifecycle
from chillout_project.http import asgi_json_send, media_base, media_origin


def test_media_origin_public_url_never_reads_the_host(settings):
    settings.PUBLIC_URL = "https://chat.example"

    def host():
        raise AssertionError("the Host must not be read when PUBLIC_URL is set")

    assert media_origin(scheme="http", host=host, fallback_host="x") == "https://chat.example"


def test_media_origin_checks_the_host(settings):
    settings.PUBLIC_URL, settings.ALLOWED_HOSTS = "", ["ok.example", ".sub.example"]
    assert media_origin(scheme="http", host=lambda: "ok.example:81", fallback_host="f") == "http://ok.example:81"
    assert media_origin(scheme="https", host=lambda: "a.sub.example", fallback_host="f") == "https://a.sub.example"
    assert media_origin(scheme="http", host=lambda: "evil.example", fallback_host="f:1") == "http://f:1"


def test_rest_media_base_is_the_same_origin(settings):
    settings.PUBLIC_URL, settings.ALLOWED_HOSTS = "", ["testserver"]
    assert media_base(RequestFactory().get("/")) == "http://testserver"
    settings.PUBLIC_URL = "https://p.example"
    assert media_base(RequestFactory().get("/", HTTP_HOST="not-allowed.example")) == "https://p.example"


async def test_asgi_json_send():
    sent = []

    async def send(message):
        sent.append(message)

    await asgi_json_send(send, status=413, data={"error": "too big"}, headers=[(b"retry-after", b"1")])
    body = orjson.dumps({"error": "too big"})
    assert sent == [
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        },
        {"type": "http.response.body", "body": body},
    ]


async def test_turn_take_defaults_to_every_turn_then_asks_the_taker(monkeypatch):
    monkeypatch.setattr(lifecycle, "_turn_taker", [])
    assert await lifecycle.turn_take(name="purge", seconds=1) is True
    asked = []

    async def taker(*, name, seconds):
        asked.append((name, seconds))
        return False

    lifecycle.turn_taker_set(taker)
    assert await lifecycle.turn_take(name="purge", seconds=5) is False
    assert asked == [("purge", 5)]


async def test_startup_runs_hooks_once_then_loops(monkeypatch):
    monkeypatch.setattr(lifecycle, "_startup_hooks", [])
    monkeypatch.setattr(lifecycle, "_startup", [])
    monkeypatch.setattr(lifecycle, "_loops", {})
    monkeypatch.setattr(lifecycle, "background", lifecycle.BackgroundTasks())
    calls = []
    hook = lambda: calls.append("hook")  # noqa: E731
    lifecycle.startup_hook_add(hook)
    lifecycle.startup_hook_add(hook)  # registered once
    looping = asyncio.Event()

    async def loop():
        looping.set()
        await asyncio.Event().wait()

    lifecycle.background_loop_add(name="unit-loop", loop=loop)
    assert calls == [] and lifecycle.background.tasks == []  # registering starts nothing
    await asyncio.gather(lifecycle.startup(), lifecycle.startup())
    await looping.wait()
    assert calls == ["hook"]
    assert [task.get_name() for task in lifecycle.background.tasks] == ["unit-loop"]
    await lifecycle.background.stop()
    assert lifecycle.background.tasks == []
