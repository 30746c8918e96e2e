"""`realtime.ice_servers`: coturn's time-limited credentials (use-auth-secret), as properties.

Whatever the secrets, URLs, time and TTL: the username is `<expiry>:<user id>` with
expiry = int(now) + ttl, the credential is base64(HMAC-SHA1(first secret, username)) (what
coturn recomputes; checked here with the standard library, not with the code under test),
no other secret signs, and no secret appears in the answer. Without a secret: no TURN
entry and ttl 0. tests/realtime/test_turn.py puts the same credentials before a real coturn.
"""

import base64
import hashlib
import hmac
import re

import orjson
from hypothesis import given
from hypothesis import strategies as st

from realtime.ice_servers import ice_servers_build, turn_credential_create

# "!" is in no username, base64 credential or URL: a secret found in the answer is a leak, not chance.
secret_text = st.text(st.characters(codec="utf-8", exclude_characters=","), min_size=7, max_size=63).map("!".__add__)
secret_lists = st.lists(secret_text, min_size=1, max_size=3, unique=True)
user_ids = st.from_regex(r"\A[A-Za-z0-9_-]{12}\Z")
times = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)  # up to 2100
ttls = st.integers(min_value=1, max_value=10 * 365 * 86_400)
turn_urls = st.lists(st.sampled_from(["turn:a.example:3478?transport=udp", "turn:a.example:3478?transport=tcp",
                                      "turns:a.example:5349?transport=tcp"]), min_size=1, max_size=3)  # fmt: skip
stun_urls = st.lists(st.sampled_from(["stun:a.example:3478", "stun:b.example:19302"]), max_size=2)


def hmac_sha1_b64(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


@given(secrets_=secret_lists, urls=turn_urls, stun=stun_urls, now=times, ttl=ttls, user_id=user_ids)
def test_turn_entry_is_coturns_time_limited_credential(secrets_, urls, stun, now, ttl, user_id):
    answer = ice_servers_build(secrets_=tuple(secrets_), turn_urls=urls, stun_urls=stun, ttl=ttl, now=now,
                               user_id=user_id)  # fmt: skip
    assert list(answer) == ["iceServers", "ttl"] and answer["ttl"] == ttl
    turn_entry, *rest = answer["iceServers"]
    assert rest == ([{"urls": stun}] if stun else [])
    assert list(turn_entry) == ["urls", "username", "credential"] and turn_entry["urls"] == urls
    expiry, issued_id = re.fullmatch(r"(\d+):(.+)", turn_entry["username"]).groups()
    assert int(expiry) == int(now) + ttl and issued_id == user_id
    assert turn_entry["credential"] == hmac_sha1_b64(secrets_[0], turn_entry["username"])
    assert all(turn_entry["credential"] != hmac_sha1_b64(other, turn_entry["username"]) for other in secrets_[1:])
    text = orjson.dumps(answer).decode()
    assert not any(orjson.dumps(secret).decode()[1:-1] in text for secret in secrets_)


@given(stun=stun_urls, now=times, ttl=ttls, user_id=user_ids)
def test_without_a_secret_stun_only_and_ttl_zero(stun, now, ttl, user_id):
    answer = ice_servers_build(secrets_=(), turn_urls=[], stun_urls=stun, ttl=ttl, now=now, user_id=user_id)
    assert answer == {"iceServers": [{"urls": stun}] if stun else [], "ttl": 0}


@given(secret=secret_text, expires_at=st.integers(min_value=0, max_value=2**40), user_id=user_ids)
def test_credential_is_deterministic_in_its_inputs(secret, expires_at, user_id):
    issued = turn_credential_create(secret=secret, expires_at=expires_at, user_id=user_id)
    assert issued == turn_credential_create(secret=secret, expires_at=expires_at, user_id=user_id)
    assert issued.username == f"{expires_at}:{user_id}" and issued.expires_at == expires_at
    assert len(base64.b64decode(issued.credential, validate=True)) == 20  # an SHA-1 digest
