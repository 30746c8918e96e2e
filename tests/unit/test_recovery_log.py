"""`InMemoryRecoveryLog`: sessions and room logs of connection state recovery, no server.

tests/realtime/test_recovery_redis_log.py runs these tests again (imported there) with a
`logs` fixture of the same name giving `RedisRecoveryLog`s on a real redis-server. Time is
a clock the tests move by hand, passed to both implementations.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.recovery import InMemoryRecoveryLog, LoggedEvent, RecoverySession, offset_parse, offset_seq

WINDOW = 120.0


class ManualClock:
    """Seconds since the epoch, moved only by `advance`."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def logs(clock):
    """`logs(n, max_events=...)`: n handles on one log, as n processes would have (in memory:
    the same object n times)."""

    def make(n: int = 1, *, max_events: int = 100) -> list:
        log = InMemoryRecoveryLog(window_seconds=WINDOW, max_events=max_events, clock=clock)
        return [log] * n

    return make


async def append(log, room: str, *texts: str, skip: tuple[str, ...] = ()) -> list[str]:
    return [await log.event_append(room_id=room, event="receive_message", args=[{"message": t}], skip_sids=skip)
            for t in texts]  # fmt: skip


def texts(events: list[LoggedEvent]) -> list[str]:
    return [event.args[0]["message"] for event in events]


async def test_events_after_an_offset_come_back_in_order_with_their_offsets(logs):
    a, b = logs(2)
    offsets = await append(a, "r", "one", "two")
    offsets += await append(b, "r", "three")
    assert [offset_seq(o) for o in offsets] == [1, 2, 3]
    missed = await b.events_since(room_id="r", offset=offsets[0])
    assert texts(missed) == ["two", "three"]
    assert [event.offset for event in missed] == offsets[1:]
    assert missed[0].event == "receive_message"
    assert missed[0].wire_args() == [{"message": "two"}, offsets[1]]
    assert await a.events_since(room_id="r", offset=offsets[-1]) == []


async def test_arguments_and_skipped_sids_survive_the_log(logs):
    (log,) = logs(1)
    first = await log.event_append(room_id="r", event="online_users", args=[["ann", "bén"]])
    await log.event_append(room_id="r", event="two", args=[{"a": [1, None, True]}, "x"], skip_sids=["s1"])
    (event,) = await log.events_since(room_id="r", offset=first)
    assert (event.event, event.args, event.skip_sids) == ("two", [{"a": [1, None, True]}, "x"], ("s1",))


async def test_rooms_have_their_own_logs_and_offsets(logs):
    (log,) = logs(1)
    (in_a,) = await append(log, "a", "for a")
    (in_b,) = await append(log, "b", "for b")
    await append(log, "a", "a again")
    assert offset_seq(in_a) == offset_seq(in_b) == 1
    assert await log.events_since(room_id="b", offset=in_a) is None
    assert texts(await log.events_since(room_id="a", offset=in_a)) == ["a again"]
    assert await log.events_since(room_id="nowhere", offset=in_a) is None


@pytest.mark.parametrize(
    "bad",
    [None, 7, "", "x", "1-1", "zzzzzzzz:1-1", "0000000:1-1", "00000000:1-1x", {"pid": "x"}, "00000000:-1-1"],
)
async def test_a_malformed_or_foreign_offset_is_unknown_not_an_error(logs, bad):
    (log,) = logs(1)
    await append(log, "r", "one")
    assert await log.events_since(room_id="r", offset=bad) is None


async def test_an_offset_beyond_the_end_or_with_a_later_time_is_unknown(logs):
    (log,) = logs(1)
    first, _ = await append(log, "r", "one", "two")
    parsed = offset_parse(first)
    assert await log.events_since(room_id="r", offset=f"{parsed.epoch}:{parsed.ms}-3") is None
    assert await log.events_since(room_id="r", offset=f"{parsed.epoch}:{parsed.ms + 10_000}-1") is None


async def test_the_log_keeps_at_most_max_events(logs):
    (log,) = logs(1, max_events=5)
    offsets = await append(log, "r", *[f"m{i}" for i in range(1, 9)])
    assert texts(await log.events_since(room_id="r", offset=offsets[2])) == ["m4", "m5", "m6", "m7", "m8"]
    assert await log.events_since(room_id="r", offset=offsets[1]) is None  # m3 is gone
    assert await log.events_since(room_id="r", offset=offsets[7]) == []


async def test_events_older_than_the_window_are_gone(logs, clock):
    (log,) = logs(1)
    (e1,) = await append(log, "r", "e1")
    clock.advance(5)
    (e2,) = await append(log, "r", "e2")
    clock.advance(5)
    await append(log, "r", "e3")
    clock.advance(WINDOW - 4)  # e1 and e2 are older than the window, e3 is not
    assert texts(await log.events_since(room_id="r", offset=e2)) == ["e3"]
    assert await log.events_since(room_id="r", offset=e1) is None


async def test_a_quiet_room_still_reaches_back_while_a_session_of_it_lives(logs, clock):
    """The offset's own event may be older than the window: what counts is that nothing
    after it was lost."""
    (log,) = logs(1)
    (quiet,) = await append(log, "r", "long ago")
    clock.advance(WINDOW - 1)
    await log.session_save(pid="p", session=RecoverySession(sid="s", room_id="r", username="ann"))
    clock.advance(WINDOW - 2)
    assert await log.events_since(room_id="r", offset=quiet) == []
    (later,) = await append(log, "r", "while away")
    assert offset_seq(later) == 2
    assert texts(await log.events_since(room_id="r", offset=quiet)) == ["while away"]


async def test_a_forgotten_log_starts_again_and_old_offsets_are_unknown(logs, clock):
    (log,) = logs(1)
    (old,) = await append(log, "r", "old")
    clock.advance(WINDOW + 1)
    assert await log.events_since(room_id="r", offset=old) is None
    (new,) = await append(log, "r", "new")
    assert offset_seq(new) == 1 and offset_parse(new).epoch != offset_parse(old).epoch
    assert await log.events_since(room_id="r", offset=old) is None
    assert await log.events_since(room_id="r", offset=new) == []


async def test_a_session_is_taken_once(logs):
    a, b = logs(2)
    session = RecoverySession(sid="sid-1", room_id="r", username="ann")
    await a.session_save(pid="pid-1", session=session)
    assert await b.session_take(pid="pid-1") == session
    assert await a.session_take(pid="pid-1") is None
    assert await a.session_take(pid="unknown") is None
    assert await a.session_take(pid=None) is None


async def test_a_session_without_a_room_and_a_replaced_one(logs):
    (log,) = logs(1)
    await log.session_save(pid="p", session=RecoverySession(sid="s"))
    await log.session_save(pid="p", session=RecoverySession(sid="s", room_id="r", username="bob"))
    assert await log.session_take(pid="p") == RecoverySession(sid="s", room_id="r", username="bob")
    await log.session_save(pid="q", session=RecoverySession(sid="t"))
    assert await log.session_take(pid="q") == RecoverySession(sid="t", room_id=None, username=None)


async def test_a_session_expires_after_the_window(logs, clock):
    (log,) = logs(1)
    await log.session_save(pid="p", session=RecoverySession(sid="s", room_id="r", username="ann"))
    clock.advance(WINDOW - 1)
    await log.session_save(pid="q", session=RecoverySession(sid="t", room_id="r", username="bob"))
    clock.advance(2)
    assert await log.session_take(pid="p") is None
    assert await log.session_take(pid="q") == RecoverySession(sid="t", room_id="r", username="bob")


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        InMemoryRecoveryLog(window_seconds=0, max_events=10)
    with pytest.raises(ValueError):
        InMemoryRecoveryLog(window_seconds=10, max_events=0)


async def test_memory_is_swept_of_expired_rooms_and_sessions(clock):
    log = InMemoryRecoveryLog(window_seconds=WINDOW, max_events=10, clock=clock)
    for i in range(50):
        await log.event_append(room_id=f"room-{i}", event="e", args=[i])
        await log.session_save(pid=f"p{i}", session=RecoverySession(sid=f"s{i}"))
    clock.advance(WINDOW + 1)
    await log.event_append(room_id="alive", event="e", args=[])
    assert list(log._rooms) == ["alive"] and log._sessions == {}


class LogModel:
    """What a recovery log must answer, computed the slow way from every append ever made."""

    def __init__(self, *, max_events: int) -> None:
        self.max_events = max_events
        self.appended: list[tuple[float, str, int]] = []  # (time, offset, value) of the current life
        self.head_until = -1.0

    def alive(self, now: float) -> bool:
        return self.head_until >= now

    def append(self, now: float, offset: str, value: int) -> None:
        if not self.alive(now):
            self.appended = []
        self.appended.append((now, offset, value))
        self.head_until = max(self.head_until, now + WINDOW)

    def since(self, now: float, index: int) -> list[int] | None:
        """Values after the `index`th append of the current life, or None."""
        if not self.alive(now) or index >= len(self.appended):
            return None
        kept = [a for a in self.appended[-self.max_events :] if int(a[0] * 1000) >= int((now - WINDOW) * 1000)]
        after = self.appended[index + 1 :]
        if not after:
            return []
        if after[0] not in kept:  # kept is a suffix: everything after the offset is in it
            return None
        return [value for _, _, value in after]


MODEL_STEPS = st.lists(
    st.tuples(st.sampled_from(["append", "advance", "read", "save"]), st.integers(0, 200)), max_size=60
)


@settings(max_examples=150, deadline=None)
@given(steps=MODEL_STEPS)
async def test_the_log_answers_as_its_model(steps):
    clock = ManualClock()
    await model_check(InMemoryRecoveryLog(window_seconds=WINDOW, max_events=5, clock=clock), clock, steps)


async def model_check(log, clock: ManualClock, steps: list[tuple[str, int]]) -> None:
    """Random appends, reads, session saves and passing time (a log with max_events=5):
    every read answers what `LogModel` says."""
    model = LogModel(max_events=5)
    offsets: list[str] = []  # of the current life, in append order
    for kind, number in steps:
        if kind == "append":
            if not model.alive(clock.now):
                offsets = []
            offset = await log.event_append(room_id="r", event="e", args=[number])
            model.append(clock.now, offset, number)
            offsets.append(offset)
            assert offset_seq(offset) == len(offsets)
        elif kind == "advance":
            clock.advance(number * 1.5)
        elif kind == "save":
            await log.session_save(pid="p", session=RecoverySession(sid="s", room_id="r"))
            if model.alive(clock.now):
                model.head_until = max(model.head_until, clock.now + WINDOW)
        elif offsets:
            index = number % len(offsets)
            got = await log.events_since(room_id="r", offset=offsets[index])
            expected = model.since(clock.now, index)
            assert (None if got is None else [e.args[0] for e in got]) == expected
