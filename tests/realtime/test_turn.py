"""TURN credentials (issue 21) against a real coturn: GET /api/turn, the join_call ack,
coturn's verdict on issued, forged, foreign-secret, expired and rotated credentials, the
recipe's peer denials, the rate limit, and a secret that never leaves the server.

Every coturn is Debian's `turnserver` from deploy/coturn/turnserver.conf (tests/turn_relay.py);
every server a real process with TURN settings of the test. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import subprocess
import sys

import httpx
import pytest

from tests.conftest import PROJECT_ROOT, server_env
from tests.realtime.conftest import SocketClient
from tests.turn_relay import allocate, coturn_factory, refusal, verdict  # noqa: F401  (the fixture)
from tests.waiting import async_wait_until, attempts_for

UNAUTHORIZED = (401, "Unauthorized")
FORBIDDEN_IP = (403, "Forbidden IP")
USERNAME = re.compile(r"^(\d+):([A-Za-z0-9_-]{12})$")
WAIT = 10.0
EXPIRY_GUARD_SECONDS = 30.0  # an expired credential still accepted after this fails the test
RESEND = 0.5  # a lost UDP datagram is sent again after this


def sign(secret: str, username: str) -> str:
    """coturn's check, written out: base64(HMAC-SHA1(secret, username))."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def turn_get(url: str) -> dict:
    response = httpx.get(f"{url}/api/turn", timeout=10.0)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture(scope="module")
def relay(coturn_factory):  # noqa: F811
    return coturn_factory(secrets=["current-secret-0123456789"])


@pytest.fixture(scope="module")
def turn_server(server_factory, relay):
    return server_factory(
        TURN_SECRET=relay.secrets[0],
        TURN_URLS=f"{relay.url('udp')},{relay.url('tcp')}",
        STUN_URLS=f"stun:127.0.0.1:{relay.port}",
    )


@pytest.fixture(scope="module")
def short_ttl_server(server_factory, relay):
    return server_factory(TURN_SECRET=relay.secrets[0], TURN_URLS=relay.url(), TURN_TTL_SECONDS="1")


def expiry_of(answer: dict) -> int:
    return int(USERNAME.match(answer["iceServers"][0]["username"]).group(1))


async def test_issued_credentials_allocate_on_coturn_over_udp_and_tcp(turn_server, short_ttl_server, relay):
    # Bracketed by the issue times of a one-second server, asked just before and just after:
    # the expiry is the issue time plus the ttl, read on the servers' clock, not the test's.
    before = expiry_of(turn_get(short_ttl_server.url)) - 1
    answer = turn_get(turn_server.url)
    after = expiry_of(turn_get(short_ttl_server.url)) - 1
    assert list(answer) == ["iceServers", "ttl"] and answer["ttl"] == 86400
    turn_entry, stun_entry = answer["iceServers"]
    assert list(turn_entry) == ["urls", "username", "credential"]
    assert turn_entry["urls"] == [relay.url("udp"), relay.url("tcp")]
    assert stun_entry == {"urls": [f"stun:127.0.0.1:{relay.port}"]}
    assert before + 86400 <= expiry_of(answer) <= after + 86400
    assert turn_entry["credential"] == sign(relay.secrets[0], turn_entry["username"])
    for url in turn_entry["urls"]:
        allocation, _ = await allocate(url, turn_entry["username"], turn_entry["credential"])
        assert allocation.get_extra_info("sockname")[0] == "127.0.0.1"
        allocation.close()


async def test_every_issue_is_another_username(turn_server):
    first, second = turn_get(turn_server.url), turn_get(turn_server.url)
    assert first["iceServers"][0]["username"] != second["iceServers"][0]["username"]


async def test_data_flows_between_two_allocations_through_the_relay(turn_server):
    entry = turn_get(turn_server.url)["iceServers"][0]
    alice, alice_got = await allocate(entry["urls"][0], entry["username"], entry["credential"])
    bob, bob_got = await allocate(entry["urls"][0], entry["username"], entry["credential"])
    # TURN relays to an allocation only from the peers it has a permission for: Bob's send
    # to Alice's relayed address makes one. UDP: Alice sends again until Bob has it.
    bob.sendto(b"permission", alice.get_extra_info("sockname"))
    for _ in range(int(WAIT / RESEND)):
        alice.sendto(b"hello through coturn", bob.get_extra_info("sockname"))
        try:
            data, sender = await asyncio.wait_for(bob_got.data.get(), RESEND)
            break
        except TimeoutError:
            continue
    else:
        raise AssertionError("nothing relayed to Bob")
    assert data == b"hello through coturn" and sender == alice.get_extra_info("sockname")
    alice.close()
    bob.close()


async def test_forged_credential_is_refused(turn_server, relay):
    entry = turn_get(turn_server.url)["iceServers"][0]
    forged = base64.b64encode(bytes(20)).decode()
    assert await refusal(relay.url(), entry["username"], forged) == UNAUTHORIZED
    # Another expiry under the issued password: the HMAC covers the whole username.
    expiry, user_id = entry["username"].split(":")
    assert await refusal(relay.url(), f"{int(expiry) + 3600}:{user_id}", entry["credential"]) == UNAUTHORIZED


async def test_credentials_of_another_secret_are_refused(server_factory, relay):
    other = server_factory(TURN_SECRET="not-the-relays-secret", TURN_URLS=relay.url())
    entry = turn_get(other.url)["iceServers"][0]
    assert await refusal(relay.url(), entry["username"], entry["credential"]) == UNAUTHORIZED


async def test_expired_credentials_are_refused(short_ttl_server, relay):
    answer = turn_get(short_ttl_server.url)
    assert answer["ttl"] == 1
    entry = answer["iceServers"][0]
    allocation, _ = await allocate(relay.url(), entry["username"], entry["credential"])  # valid for now
    allocation.close()
    # coturn compares with a clock of its own that it moves about once a second (measured: an
    # allocation 1.002 s after the expiry second still accepted, one 1.04 s after refused), so
    # it is asked again until it refuses; the bound only turns "never refused" into a failure.
    error = await async_wait_until(
        lambda: verdict(relay.url(), entry["username"], entry["credential"]),
        attempts=attempts_for(EXPIRY_GUARD_SECONDS, pause=RESEND), pause=RESEND,
        message="coturn still accepts the credential long after its expiry",
    )  # fmt: skip
    assert error == UNAUTHORIZED


async def test_rotation_coturn_with_both_secrets_accepts_old_and_new(server_factory, coturn_factory):  # noqa: F811
    """The rotation of docs/operations.md: coturn holds the new and the old secret (two
    `static-auth-secret` lines, no database), Chillout signs with the first of TURN_SECRET.
    Credentials handed out before the switch stay good until they expire; once coturn drops
    the old secret they are refused."""
    new, old = "rotation-new-secret-abcdef", "rotation-old-secret-ghijkl"
    during = coturn_factory(secrets=[new, old])
    before_switch = server_factory(TURN_SECRET=old, TURN_URLS=during.url())
    after_switch = server_factory(TURN_SECRET=f"{new},{old}", TURN_URLS=during.url())
    old_entry = turn_get(before_switch.url)["iceServers"][0]
    new_entry = turn_get(after_switch.url)["iceServers"][0]
    assert new_entry["credential"] == sign(new, new_entry["username"])  # the first secret signs
    for entry in (old_entry, new_entry):
        allocation, _ = await allocate(during.url(), entry["username"], entry["credential"])
        allocation.close()
    finished = coturn_factory(secrets=[new])
    assert await refusal(finished.url(), old_entry["username"], old_entry["credential"]) == UNAUTHORIZED
    allocation, _ = await allocate(finished.url(), new_entry["username"], new_entry["credential"])
    allocation.close()


async def test_recipe_relay_cannot_reach_loopback(server_factory, coturn_factory):  # noqa: F811
    """The recipe as it is (denied-peer-ip for private and loopback ranges, no
    allow-loopback-peers): an allocation works; relaying to this host, a private network or
    the cloud metadata address is refused (coturn's 403 "Forbidden IP")."""
    strict = coturn_factory(secrets=["strict-secret-0123456789"], loopback_peers=False)
    issuer = server_factory(TURN_SECRET=strict.secrets[0], TURN_URLS=strict.url())
    entry = turn_get(issuer.url)["iceServers"][0]
    allocation, got = await allocate(strict.url(), entry["username"], entry["credential"])
    internal = [("127.0.0.1", issuer.port), ("10.0.0.1", 80), ("192.168.1.1", 80), ("169.254.169.254", 80)]
    for peer in internal:
        allocation.sendto(b"into the internal network", peer)
    errors = [await asyncio.wait_for(got.errors.get(), WAIT) for _ in internal]
    assert [error.response.attributes["ERROR-CODE"] for error in errors] == [FORBIDDEN_IP] * len(internal)
    allocation.close()


async def test_without_turn_secret_stun_only_or_nothing_with_200(server, server_factory):
    assert turn_get(server.url) == {"iceServers": [], "ttl": 0}
    stun_only = server_factory(STUN_URLS="stun:stun.example.com:3478,stun:stun.example.com:19302")
    assert turn_get(stun_only.url) == {
        "iceServers": [{"urls": ["stun:stun.example.com:3478", "stun:stun.example.com:19302"]}],
        "ttl": 0,
    }


async def test_join_call_ack_carries_the_ice_servers(turn_server, relay, room_id):
    client = await SocketClient(turn_server.url).connect()
    try:
        await client.join(room_id, "alice")
        ack = await client.call("join_call", {"roomId": room_id, "username": "alice"})
        assert list(ack) == ["ok", "iceServers"] and ack["ok"] is True
        turn_entry, stun_entry = ack["iceServers"]
        assert list(turn_entry) == ["urls", "username", "credential"]
        assert turn_entry["urls"] == [relay.url("udp"), relay.url("tcp")]
        assert stun_entry == {"urls": [f"stun:127.0.0.1:{relay.port}"]}
        allocation, _ = await allocate(relay.url(), turn_entry["username"], turn_entry["credential"])
        allocation.close()
        again = await client.call("join_call", {"roomId": room_id, "username": "alice"})  # already in: no notice
        assert list(again) == ["ok", "iceServers"] and again["iceServers"][0]["username"] != turn_entry["username"]
        refused = await client.call("join_call", {"roomId": room_id, "username": "mallory"})
        assert refused == {"ok": False, "error": refused["error"]} and "iceServers" not in refused
    finally:
        await client.disconnect()


def metric(text: str, name: str) -> float:
    (value,) = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")]
    return value


async def test_rate_limit_per_ip_429_json_and_counted(server_factory, relay):
    limited = server_factory(TURN_SECRET=relay.secrets[0], TURN_URLS=relay.url(), TURN_RATE="0.001",
                             TURN_BURST="3", METRICS="open")  # fmt: skip
    with httpx.Client(base_url=limited.url, timeout=10.0) as http:
        assert [http.get("/api/turn").status_code for _ in range(3)] == [200, 200, 200]
        refused = http.get("/api/turn")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert refused.json() == {"error": "rate limited"}
        text = http.get("/metrics").text
    assert metric(text, 'chillout_turn_credentials_issued_total{via="rest"}') == 3.0
    assert metric(text, 'chillout_turn_requests_refused_total{reason="rate_limited"}') == 1.0


async def test_secret_never_in_answers_errors_logs_or_metrics(server_factory, relay, room_id):
    secret = "SeCrEt-never-leaks-7f3a9c"
    leaky = server_factory(TURN_SECRET=f"{secret},{secret}-old", TURN_URLS=relay.url(), TURN_BURST="2",
                           TURN_RATE="0.001", METRICS="open", LOG_LEVEL="DEBUG")  # fmt: skip
    seen: list[str] = []
    with httpx.Client(base_url=leaky.url, timeout=10.0) as http:
        for method, path in [("GET", "/api/turn"), ("GET", "/api/turn"), ("GET", "/api/turn"),
                             ("POST", "/api/turn"), ("GET", "/api/turn/x"), ("GET", "/metrics")]:  # fmt: skip
            response = http.request(method, path)
            seen.append(f"{response.status_code} {response.headers} {response.text}")
    assert [line.split(" ", 1)[0] for line in seen] == ["200", "200", "429", "405", "404", "200"]
    client = await SocketClient(leaky.url).connect()
    try:
        await client.join(room_id, "alice")
        seen.append(repr(await client.call("join_call", {"roomId": room_id, "username": "alice"})))
        seen.append(repr(await client.call("join_call", {"roomId": room_id, "username": "bob"})))
    finally:
        await client.disconnect()
    leaky.log_wait("join_call refused")
    seen.append(leaky.log_tail(1_000_000))
    for text in seen:
        assert secret not in text and secret.lower() not in text.lower()


def test_turn_settings_errors_name_the_setting_not_the_secret():
    secret = "SeCrEt-of-a-broken-config-1234"
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
        env=server_env(TURN_SECRET=secret),
    )  # fmt: skip
    assert checked.returncode == 1
    assert "TURN_SECRET and TURN_URLS go together: set both or neither" in checked.stderr
    assert secret not in checked.stdout + checked.stderr
