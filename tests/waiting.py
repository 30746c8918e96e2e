"""Waiting in tests for something that happens by itself (a server up, a slot freed, a log
line written): asked again a bounded number of times, never a fixed sleep and never an
assertion on the clock. The bound only turns a hang into a failure; how long a wait took is
a benchmark's question (bench/), not a test's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
PAUSE = 0.1


def attempts_for(seconds: float, pause: float = PAUSE) -> int:
    """How many asks of `pause` apart a guard of about `seconds` allows."""
    return max(1, int(seconds / pause))


def wait_until(probe: Callable[[], T], *, attempts: int, message: Callable[[], str] | str, pause: float = PAUSE) -> T:
    """`probe()` once it is truthy; the test fails with `message` after `attempts` asks."""
    for _ in range(attempts):
        if value := probe():
            return value
        time.sleep(pause)
    pytest.fail(message() if callable(message) else message)


async def async_wait_until(
    probe: Callable[[], T | Awaitable[T]], *, attempts: int, message: Callable[[], str] | str, pause: float = PAUSE
) -> T:
    """`wait_until` on the event loop; `probe` may be a coroutine function."""
    for _ in range(attempts):
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(pause)
    pytest.fail(message() if callable(message) else message)
