"""`RedisRecoveryLog` on a real redis-server (no Chillout server).

The in-memory log's behavioural tests run here again (imported below) with the `logs`
fixture of this module: several `RedisRecoveryLog` instances on one fresh prefix, as
several processes; then what only a shared log has: appends and takes racing from two
processes, and a process that is gone.
"""

import asyncio
import uuid

import pytest
from hypothesis import given, settings


from realtime.recovery import RecoverySession, offset_seq
from realtime.recovery_redis import RedisRecoveryLog
from tests.scale.conftest import redis_url  # noqa: F401  (the session's redis-server)
from tests.unit.test_recovery_log import (  # noqa: F401  (collected here too, with this module's `logs`)
    MODEL_STEPS,
    WINDOW,
    ManualClock,
    clock,
    test_a_forgotten_log_starts_again_and_old_offsets_are_unknown,
    test_a_malformed_or_foreign_offset_is_unknown_not_an_error,
    test_a_quiet_room_still_reaches_back_while_a_session_of_it_lives,
    test_a_session_expires_after_the_window,
    test_a_session_is_taken_once,
    test_a_session_without_a_room_and_a_replaced_one,
    test_an_offset_beyond_the_end_or_with_a_later_time_is_unknown,
    test_arguments_and_skipped_sids_survive_the_log,
    test_events_after_an_offset_come_back_in_order_with_their_offsets,
    test_events_older_than_the_window_are_gone,
    test_rooms_have_their_own_logs_and_offsets,
    test_the_log_keeps_at_most_max_events,
    model_check,
    texts,
)


@pytest.fixture
async def logs(redis_url, clock):  # noqa: F811
    """`logs(n, max_events=...)`: n RedisRecoveryLogs on one fresh prefix, as n processes."""
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    made: list[RedisRecoveryLog] = []

    def make(n: int = 1, *, max_events: int = 100) -> list[RedisRecoveryLog]:
        made.extend(
            RedisRecoveryLog(url=redis_url, prefix=prefix, window_seconds=WINDOW, max_events=max_events, clock=clock)
            for _ in range(n)
        )
        return made[-n:]

    yield make
    for log in made:
        await log.close()


async def test_concurrent_appends_from_two_processes_get_consecutive_offsets(logs):
    a, b = logs(2, max_events=500)
    first = await a.event_append(room_id="busy", event="e", args=["start"])
    offsets = await asyncio.gather(
        *((a if i % 2 else b).event_append(room_id="busy", event="e", args=[f"m{i}"]) for i in range(200))
    )
    assert sorted(offset_seq(o) for o in offsets) == list(range(2, 202))
    missed = await b.events_since(room_id="busy", offset=first)
    assert [offset_seq(e.offset) for e in missed] == list(range(2, 202))
    by_offset = dict(zip(offsets, (f"m{i}" for i in range(200)), strict=True))
    assert texts_of(missed) == [by_offset[e.offset] for e in missed]


def texts_of(events) -> list[str]:
    return [event.args[0] for event in events]


async def test_a_session_taken_by_two_processes_at_once_goes_to_one(logs):
    processes = logs(4)
    for round_ in range(20):
        await processes[0].session_save(pid=f"p{round_}", session=RecoverySession(sid=f"s{round_}", room_id="r"))
        taken = await asyncio.gather(*(log.session_take(pid=f"p{round_}") for log in processes))
        assert [t for t in taken if t is not None] == [RecoverySession(sid=f"s{round_}", room_id="r")]


async def test_what_a_closed_process_saved_is_restored_by_another(logs):
    first, second = logs(2)
    (offset,) = [await first.event_append(room_id="r", event="online_users", args=[["ann"]])]
    await first.session_save(pid="p", session=RecoverySession(sid="s", room_id="r", username="ann"))
    await first.event_append(room_id="r", event="receive_message", args=[{"message": "while away"}])
    await first.close()
    assert await second.session_take(pid="p") == RecoverySession(sid="s", room_id="r", username="ann")
    assert [e.args for e in await second.events_since(room_id="r", offset=offset)] == [[{"message": "while away"}]]


async def test_keys_expire_so_redis_holds_only_the_window(logs):
    (log,) = logs(1, max_events=3)
    for i in range(10):
        await log.event_append(room_id="r", event="e", args=[i])
    await log.session_save(pid="p", session=RecoverySession(sid="s", room_id="r"))
    assert await log.redis.xlen(log.key("rl", "r")) == 3
    window_ms = WINDOW * 1000
    for key in (log.key("rl", "r"), log.key("rm", "r"), log.key("rs", "p")):
        assert 0 < await log.redis.pttl(key) <= window_ms + 1


@settings(max_examples=60, deadline=None)
@given(steps=MODEL_STEPS)
async def test_the_redis_log_answers_as_the_model(redis_url, steps):  # noqa: F811
    clock = ManualClock()
    log = RedisRecoveryLog(
        url=redis_url, prefix=f"model-{uuid.uuid4().hex[:8]}:", window_seconds=WINDOW, max_events=5, clock=clock
    )
    try:
        await model_check(log, clock, steps)
    finally:
        await log.close()
