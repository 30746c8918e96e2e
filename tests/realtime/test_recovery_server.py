"""Connection state recovery (`realtime.recovery_server`) driven by the real socket.io-client 4.8.

A minimal app (`tests/realtime/recovery_app.py`) runs on `RecoveringServer` under uvicorn;
`tests/node/recovery_flow.mjs` closes alice's transport as a network blip does and lets
socket.io-client reconnect by itself with its `{pid, offset}`. One process in memory, then
two processes on a real redis-server, the first one SIGKILLed once alice has left it.
Chillout's own wiring (presence, calls) is tested where it is wired.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from chillout_project.embedded_db import free_port
from realtime.recovery import offset_parse
from tests.scale.conftest import redis_url  # noqa: F401  (the session's redis-server)
from tests.waiting import attempts_for, wait_until

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"


def app_start(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = tempfile.TemporaryFile()  # not a pipe: nobody reads it while the app runs
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.realtime.recovery_app", str(port), *args],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the recovery app exited: {log.read().decode(errors='replace')[-3000:]}")
        try:
            httpx.get(f"{url}/socket.io/?EIO=4&transport=polling", timeout=1.0)
            return True
        except httpx.HTTPError:
            return False

    try:
        wait_until(answering, attempts=attempts_for(30), message="the recovery app did not start")
    except BaseException:
        process.kill()
        raise
    return process, url


@pytest.fixture
def apps():
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, str]:
        process, url = app_start(*args)
        started.append(process)
        return process, url

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()  # uvicorn waits for open long-polls to end: not for long
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def flow_run(*args: str) -> dict:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "run `npm ci --prefix tests/node` first"
    result = subprocess.run(
        [node, str(NODE_DIR / "recovery_flow.mjs"), *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"node failed ({result.returncode}): {result.stdout}\n{result.stderr}"
    return json.loads(lines[-1])


def offsets_increase(log: list[list]) -> list[int]:
    numbers = [offset_parse(entry[-1]).n for entry in log if entry[0] in ("msg", "joined")]
    assert numbers == sorted(set(numbers)), f"offsets out of order or repeated: {log}"
    return numbers


def recovery_checks(out: dict) -> None:
    assert out["firstRecovered"] is False and out["pid"]
    assert out["reason"] == "forced close"
    assert out["recovered"] is True and out["sameSid"] is True
    after = out["after"]
    # What alice missed, in order, once, each with its offset; then her own return to the
    # room (held while she was replayed to); then live traffic. `private` (to one socket)
    # carries no offset and is never replayed; the event that skipped her is not replayed.
    assert [(e[0], e[1].get("text"), e[1].get("restored")) for e in after] == [
        ("msg", "m2", None),
        ("msg", "m3", None),
        ("joined", None, True),
        ("msg", "m4", None),
    ]
    assert all(offset_parse(e[-1]) is not None and len(e) == 3 for e in after)
    offsets_increase(out["before"] + after)
    bob_private = [e for e in out["bobLog"] if e[0] == "private"]
    assert bob_private and all(len(e) == 2 for e in bob_private)
    assert ["msg", {"text": "not for alice"}] == out["bobLog"][[e[1].get("text") for e in out["bobLog"]].index("not for alice")][:2]
    assert out["unknownRecovered"] is False and out["unknownNewSid"] is True
    assert out["goodbyeRecovered"] is False and out["goodbyeSamePid"] is False


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_blip_recovers_the_same_socket_with_what_it_missed(apps, transport):
    _, url = apps("memory")
    out = flow_run(url, url, "-", "r", transport)
    recovery_checks(out)


def test_a_socket_that_cannot_be_put_back_is_an_ordinary_connection(apps):
    """The restore fails: CONNECT answers with a new pid (recovered false) and the old sid;
    nothing missed is replayed; the socket's next join brings it back into the room."""
    _, url = apps("memory")
    out = flow_run(url, url, "-", "broken")
    assert out["recovered"] is False and out["sameSid"] is True
    assert [(e[0], e[1].get("text")) for e in out["after"]] == [("joined", None), ("msg", "m4")]


def test_recovery_on_another_process_after_the_first_was_killed(apps, redis_url):  # noqa: F811
    prefix = f"rec-{uuid.uuid4().hex[:8]}:"
    first, url_a = apps(redis_url, prefix)
    second, url_b = apps(redis_url, prefix)
    out = flow_run(url_a, url_b, str(first.pid))
    assert first.wait(10) == -9
    assert out["servedBy"] == second.pid
    recovery_checks(out)


def test_concurrent_broadcasts_from_three_processes_arrive_in_offset_order_everywhere(apps, redis_url):  # noqa: F811
    prefix = f"ord-{uuid.uuid4().hex[:8]}:"
    urls = [apps(redis_url, prefix)[1] for _ in range(3)]
    node = shutil.which("node")
    result = subprocess.run([node, str(NODE_DIR / "recovery_order.mjs"), "40", *urls],
                            cwd=NODE_DIR, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    expected = sorted(f"p{p}-{i}" for p in range(3) for i in range(40))
    first = out["listeners"][0]
    for got in out["listeners"]:
        assert sorted(text for text, _ in got) == expected
        numbers = [offset_parse(offset).n for _, offset in got]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        assert got == first  # one order for everybody
