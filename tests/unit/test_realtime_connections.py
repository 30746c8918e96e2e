"""The pure parts of realtime's connection bookkeeping: the per-process registry, the client
address and media origin of a handshake, the membership check, the token buckets."""

import pytest

from chillout_project.errors import Forbidden, RateLimited
from realtime import connections
from realtime.actions import check_member, implicit_username
from realtime.ratelimit import TokenBucket, bucket_create, bucket_take
from realtime.state import Binding


def test_registry_register_get_drop():
    connection = connections.connection_register(sid="unit-1", ip="10.0.0.1", media_base="http://h")
    try:
        assert connections.connection_get(sid="unit-1") is connection
        assert "unit-1" in connections.connection_sids()
        assert (connection.ip, connection.media_base) == ("10.0.0.1", "http://h")
    finally:
        connections.connection_drop(sid="unit-1")
    assert connections.connection_get(sid="unit-1") is None
    assert "unit-1" not in connections.connection_sids()
    connections.connection_drop(sid="unit-1")  # twice is harmless


def test_connections_get_their_own_lock_and_buckets(settings):
    settings.SEND_RATE, settings.SEND_BURST, settings.RELAY_RATE, settings.RELAY_BURST = 2, 3, 0, 5
    a = connections.Connection(sid="a", ip=None, media_base="")
    b = connections.Connection(sid="b", ip=None, media_base="")
    write_a = connections.connection_bucket(a, connections.WRITE_LIMIT)
    assert a.lock is not b.lock and write_a is not connections.connection_bucket(b, connections.WRITE_LIMIT)
    assert (write_a.rate, write_a.burst) == (2, 3)
    assert connections.connection_bucket(a, connections.WRITE_LIMIT) is write_a  # made once
    assert connections.connection_bucket(a, connections.RELAY_LIMIT) is None  # rate 0: that limit is off


def test_a_quiet_connection_holds_no_bucket_and_no_instance_dict(settings):
    """Memory per idle socket: buckets are made at the first event of their kind."""
    settings.SEND_RATE, settings.SEND_BURST = 2, 3
    connection = connections.Connection(sid="a", ip=None, media_base="")
    assert (connection.write_bucket, connection.relay_bucket, connection.join_bucket, connection.typing_bucket) == (
        None, None, None, None
    )
    assert not hasattr(connection, "__dict__") and not hasattr(connection.backlog, "__dict__")


def test_a_lazy_bucket_limits_like_one_made_at_the_connect(settings):
    settings.JOIN_RATE, settings.JOIN_BURST = 0.001, 2
    connection = connections.Connection(sid="a", ip=None, media_base="")
    connections.connection_bucket_take(connection, connections.JOIN_LIMIT)
    connections.connection_bucket_take(connection, connections.JOIN_LIMIT)
    with pytest.raises(RateLimited, match="^rate limited$"):
        connections.connection_bucket_take(connection, connections.JOIN_LIMIT)


def test_client_ip_from_the_asgi_scope():
    assert connections.client_ip({"asgi.scope": {"client": ("192.0.2.7", 5555)}}) == "192.0.2.7"
    assert connections.client_ip({"asgi.scope": {"client": None}}) is None
    assert connections.client_ip({}) is None


def handshake(host: str | None, *, scheme="http", server=("10.1.1.1", 8000)) -> dict:
    environ = {"asgi.scope": {"scheme": scheme, "server": server}}
    if host is not None:
        environ["HTTP_HOST"] = host
    return environ


def test_media_base_public_url_wins(settings):
    settings.PUBLIC_URL = "https://chat.example"
    assert connections.socket_media_base(handshake("evil.example")) == "https://chat.example"


def test_media_base_from_an_allowed_host(settings):
    settings.PUBLIC_URL, settings.ALLOWED_HOSTS = "", ["chat.example"]
    assert connections.socket_media_base(handshake("chat.example:8443", scheme="wss")) == "https://chat.example:8443"


@pytest.mark.parametrize("host", ["evil.example", "", None])
def test_media_base_falls_back_to_the_server_address(settings, host):
    settings.PUBLIC_URL, settings.ALLOWED_HOSTS = "", ["chat.example"]
    assert connections.socket_media_base(handshake(host)) == "http://10.1.1.1:8000"
    assert connections.socket_media_base(handshake(host, server=None)) == "http://localhost"


ALICE_IN_R = Binding(room_id="r", username="alice")


def test_check_member_in_its_room():
    assert check_member(binding=ALICE_IN_R, room_id="r", claimed=None) is ALICE_IN_R
    assert check_member(binding=ALICE_IN_R, room_id="r", claimed="alice") is ALICE_IN_R


def test_check_member_refuses_another_name_in_its_own_room():
    with pytest.raises(Forbidden, match="^username does not match"):
        check_member(binding=ALICE_IN_R, room_id="r", claimed="bob")


def test_check_member_elsewhere_or_nowhere_is_none():
    assert check_member(binding=ALICE_IN_R, room_id="other", claimed="bob") is None
    assert check_member(binding=None, room_id="r", claimed=None) is None


def test_implicit_join_name():
    assert implicit_username(binding=ALICE_IN_R, claimed="bob") == "bob"
    assert implicit_username(binding=ALICE_IN_R, claimed=None) == "alice"
    assert implicit_username(binding=None, claimed=None) == "Anonymous"


def test_bucket_spends_its_burst_then_refuses(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("chillout_project.ratelimit.time.monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back at 2/s
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_bucket_create_off_and_take():
    assert bucket_create(rate=0, burst=5) is None
    assert bucket_create(rate=5, burst=0) is None
    bucket_take(None)  # no limit: never raises
    bucket = bucket_create(rate=0.001, burst=1)
    bucket_take(bucket)
    with pytest.raises(RateLimited, match="^rate limited$"):
        bucket_take(bucket)
