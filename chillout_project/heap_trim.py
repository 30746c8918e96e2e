"""The C allocator's free memory given back to the operating system, on a clock.

Why. glibc's malloc returns memory to the kernel only from the top of each heap and when a
whole mmapped chunk is freed. This server's heaps mix long-lived small objects with
short-lived large buffers (uploads, the media cache's entries, images decoded in the media
workers' threads and their arenas, orjson's and the sockets' buffers); a freed buffer below
a live object leaves free pages that stay resident. In the 30-minute soak RSS grew about
1 MB a minute while Python's own objects stayed nearly flat, and `malloc_trim(0)` called on
that server at minute six gave back 10.7 MB at once (docs/soak.md).

What. Every `MALLOC_TRIM_SECONDS` (60), `heap_trim_loop` calls glibc's `malloc_trim(0)`
(malloc_trim(3)): it walks every arena and returns each whole free page to the kernel
(madvise), whatever its place in the heap. A page given back and used again costs one page
fault. Each call's duration is `chillout_malloc_trim_seconds`.

Without glibc (musl, macOS) there is no `malloc_trim`: `malloc_trim_find` returns None, the
process says so in one INFO line and runs no loop; nothing else changes.

Concurrency: the call runs in a worker thread (ctypes releases the GIL for a foreign call),
so the event loop keeps running; a malloc in another thread waits while its arena is trimmed.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable

from chillout_project import metrics

MallocTrim = Callable[[int], int]


def malloc_trim_find(*, library: str | None = None) -> MallocTrim | None:
    """glibc's `malloc_trim` from `library` (None: the C library this process runs on), or
    None where it has none."""
    try:
        function = ctypes.CDLL(library).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def heap_trim(*, trim: MallocTrim) -> float:
    """One `malloc_trim(0)`, timed into `chillout_malloc_trim_seconds`; returns its seconds."""
    started = time.perf_counter()
    trim(0)
    seconds = time.perf_counter() - started
    metrics.malloc_trim_seconds.observe(seconds)
    return seconds


async def heap_trim_loop(*, interval: float, trim: MallocTrim) -> None:
    """Background loop: give the free heap pages back every `interval` seconds (module doc)."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(heap_trim, trim=trim)
