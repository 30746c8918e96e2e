"""Hypothesis strategies and settings shared by the fuzz tests (issue 11, point 9).

The values a hostile or broken client can put anywhere a field goes: any JSON value (None,
booleans, huge integers, NaN, strings, nested lists and objects), MongoDB operator objects
where a string belongs (`{"$gt": ""}`), and text made of the characters that break naive
code: NUL, bidirectional and zero-width marks, combining marks, emoji sequences, the last
code points of the planes, and lone surrogates (python-socketio's client sends them as
`\\udXXX` JSON escapes, which the server's JSON module must accept or refuse cleanly).

Every fuzz test runs under `FUZZ_SETTINGS`: derandomized, without an example database, so a
CI run and a local run try the same examples (docs/decisions.md, "Fuzzing"). A deeper run
multiplies the bounded example counts: `CHILLOUT_FUZZ_SCALE=20 pytest tests/...`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_SCALE = max(1, int(os.environ.get("CHILLOUT_FUZZ_SCALE", "1")))

FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
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
    return st.integers(min_value=0, max_value=len(choices) - 1).flatmap(lambda index: choices[index])
