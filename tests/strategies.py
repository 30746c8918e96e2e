"""Hypothesis strategies and settings shared by the fuzz tests (issue 11, point 9).

The values a hostile or broken client can put anywhere a field goes: any JSON value (None,
booleans, huge integers, NaN, strings, nested lists and objects), MongoDB operator objects
where a string belongs (`{"$gt": ""}`), and text made of the characters that break naive
code: NUL, bidirectional and zero-width marks, combining marks, emoji sequences, the last
code points of the planes, and lone surrogates (python-socketio's client sends them as
`\\udXXX` JSON escapes, which the server's JSON module must accept or refuse cleanly).

Every fuzz test runs under `FUZZ_SETTINGS`: derandomized, without an example database, so a
CI run and a local run try the same examples (docs/decisions.md, "Fuzzing"). A deeper run
multiplies the bounded example counts (`CHILLOUT_FUZZ_SCALE=20`); an exploring run draws new
examples each time (`CHILLOUT_FUZZ_RANDOM=1`) and prints a reproduction blob on failure.
"""

from __future__ import annotations

import os

from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_SCALE = max(1, int(os.environ.get("CHILLOUT_FUZZ_SCALE", "1")))
FUZZ_RANDOM = os.environ.get("CHILLOUT_FUZZ_RANDOM", "") == "1"  # exploration: new examples on every run

FUZZ_SETTINGS = settings(
    derandomize=not FUZZ_RANDOM,
    database=None,
    deadline=None,
    print_blob=FUZZ_RANDOM,  # a random failure prints its @reproduce_failure blob
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def fuzz_examples(count: int) -> settings:
    """`FUZZ_SETTINGS` with `count` examples (times `CHILLOUT_FUZZ_SCALE`)."""
    return settings(FUZZ_SETTINGS, max_examples=count * FUZZ_SCALE)


AWKWARD_CHARACTERS = (
    "\x00",  # NUL
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u200b",  # zero-width space
    "\ufeff",  # byte order mark
    "\u0301",  # combining acute accent, with nothing to combine with
    "\ud800",  # lone high surrogate
    "\udfff",  # lone low surrogate
    "\uffff",  # a noncharacter
    "\U0010ffff",  # the last code point
    "\U0001f600",  # emoji
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",  # an emoji ZWJ sequence
    "\u3000",  # ideographic space (whitespace to str.strip)
    "\n",
    "$",
    ".",
    "/",
)

OPERATOR_OBJECTS = (
    {"$gt": ""},
    {"$ne": None},
    {"$regex": ".*"},
    {"$where": "sleep(1000)"},
    {"$in": ["", "alice"]},
    {"$exists": True},
)

awkward_text = st.lists(st.one_of(st.characters(), st.sampled_from(AWKWARD_CHARACTERS)), max_size=40).map("".join)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200),  # beyond 64 bits: orjson refuses them
    st.floats(allow_nan=True, allow_infinity=True),
    awkward_text,
)

json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(awkward_text, st.sampled_from(["$gt", "__proto__", "roomId", "username"])), children,
                      max_size=4),
    max_leaves=12,
)

json_objects = st.dictionaries(awkward_text, json_values, max_size=5)


def near_limit(limit: int) -> st.SearchStrategy[str]:
    """Strings of `limit - 1`, `limit` and `limit + 1` code points of one (possibly wide) character."""
    fill = st.sampled_from(["x", "\U0001f600", "\u200b", "\u00e9"])
    return st.tuples(fill, st.sampled_from([limit - 1, limit, limit + 1])).map(lambda pair: pair[0] * pair[1])


hostile_values = st.one_of(st.sampled_from(OPERATOR_OBJECTS), json_values)


def weighted(*branches: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of `branches`, each drawn with its weight; shrinks towards the first."""
    choices = [strategy for weight, strategy in branches for _ in range(weight)]
    return st.sampled_from(choices).flatmap(lambda strategy: strategy)  # integers() would favour the ends


# --- values for the events' fields: plausible, at the limits, awkward -------------------------

MAX_MEDIA_URL_CHARS = 2048
MAX_SOCKET_ID_CHARS = 64
MAX_RELAY_BYTES = getattr(django_settings, "MAX_RELAY_BYTES", 65536)
ABSOLUTE_URL_TEMPLATES = ("http://evil.example{}", "https://localhost:1{}")  # the host is not trusted, not refused
URL_TEMPLATES = (*ABSOLUTE_URL_TEMPLATES, "ftp://host{}", "//host{}", "{}?x=1", "{}#f", "{}/..", "javascript:{}",
                 " {}", "{}\n")

hex_ids = st.binary(min_size=12, max_size=12).map(lambda raw: raw.hex())

room_ids = st.one_of(
    awkward_text,
    near_limit(django_settings.MAX_ROOM_ID_CHARS),
    st.sampled_from(["a/b", "/socket.io", " ", "lone \ud800 surrogate", "nul\x00room"]),
)
usernames = st.one_of(
    st.sampled_from(["alice", "carol", "", "Anonymous", "System", " system ", "\uff33\uff39\uff33\uff34\uff25\uff2d",
                     "\u0405ystem", "System\u200b", "\udfff", "\u202eecila"]),
    awkward_text,
    near_limit(django_settings.MAX_USERNAME_CHARS),
)
message_texts = st.one_of(
    awkward_text.filter(bool),
    near_limit(django_settings.MAX_MESSAGE_CHARS),
    st.sampled_from(["", " ", "\u3000\n\t", "\x00", "x\x00y", "a\ud800b", "\U0001f600" * 3]),
)
media_paths = st.builds("/api/{}/{}".format, st.sampled_from(["voice", "image", "video"]), hex_ids)
media_urls = st.one_of(
    media_paths,
    st.builds(str.format, st.sampled_from(URL_TEMPLATES), media_paths),
    awkward_text,
    near_limit(MAX_MEDIA_URL_CHARS),
)
message_ids = st.one_of(hex_ids, hex_ids.map(str.upper), awkward_text, near_limit(24))
socket_ids = st.one_of(awkward_text, near_limit(MAX_SOCKET_ID_CHARS))
relay_bodies = st.one_of(
    json_objects,
    st.builds(lambda size: {"type": "offer", "sdp": "v=0\r\n" + "a" * size},
              st.sampled_from([MAX_RELAY_BYTES - 100, MAX_RELAY_BYTES + 1])),
)
