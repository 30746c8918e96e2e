"""`realtime.delivery._WriterDeadline`: the websocket writer's wait timeout as one timer per
socket. Same outcomes as `asyncio.timeout` around each wait: a wait that lasts the whole
timeout ends in TimeoutError; waits that each end in time never do, however long they add
up to; a cancellation from outside stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from realtime.delivery import _WriterDeadline

TIMEOUT = 0.2


async def test_a_wait_that_lasts_the_timeout_ends_in_timeout_error():
    deadline, queue = _WriterDeadline(), asyncio.Queue()
    with pytest.raises(TimeoutError):
        await deadline.get(queue, TIMEOUT)
    assert asyncio.current_task().cancelling() == 0  # the task may wait again


async def test_waits_that_each_end_in_time_never_time_out():
    deadline, queue = _WriterDeadline(), asyncio.Queue()
    loop = asyncio.get_running_loop()
    for i in range(8):  # 8 × TIMEOUT / 2: twice the timeout in all
        loop.call_later(TIMEOUT / 2, queue.put_nowait, i)
        assert await deadline.get(queue, TIMEOUT) == i
    with pytest.raises(TimeoutError):  # and the timer still works for the next long wait
        await deadline.get(queue, TIMEOUT)


async def test_a_packet_already_arriving_wins_over_a_timer_that_fired_before():
    deadline, queue = _WriterDeadline(), asyncio.Queue()
    assert await asyncio.wait_for(_put_then_get(deadline, queue), 5) == "x"


async def _put_then_get(deadline: _WriterDeadline, queue: asyncio.Queue):
    asyncio.get_running_loop().call_soon(queue.put_nowait, "x")
    return await deadline.get(queue, TIMEOUT)


async def test_a_cancellation_from_outside_stays_a_cancellation():
    deadline, queue = _WriterDeadline(), asyncio.Queue()
    waiting = asyncio.create_task(deadline.get(queue, 60))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
