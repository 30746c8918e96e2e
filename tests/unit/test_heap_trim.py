"""MALLOC_TRIM_SECONDS: glibc's malloc_trim gives the free pages below live objects back to
the OS, which free() alone leaves resident; without glibc there is nothing to call."""

import os

from chillout_project import metrics
from chillout_project.heap_trim import heap_trim, malloc_trim_find

BUFFER_BYTES = 100_000  # below glibc's mmap threshold: from the heap, not a mapping of its own
BUFFERS = 400
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def holes_below_live_buffers() -> list[bytes]:
    """Nine of every ten buffers freed, the tenth kept: ~36 MB free inside the heap, none at its top."""
    buffers = [b"x" * BUFFER_BYTES for _ in range(BUFFERS)]
    return buffers[9::10]


def trims_observed() -> float:
    return sum(bucket.get() for bucket in metrics.malloc_trim_seconds._buckets)


def test_glibc_has_malloc_trim_and_a_missing_library_gives_none():
    assert callable(malloc_trim_find())
    assert malloc_trim_find(library="no-such-library.so") is None


def test_a_trim_gives_back_the_free_pages_that_free_left_resident():
    trim = malloc_trim_find()
    trim(0)
    kept = holes_below_live_buffers()
    before = resident_bytes()
    calls = trims_observed()
    heap_trim(trim=trim)
    released = before - resident_bytes()
    assert released > BUFFER_BYTES * BUFFERS // 2, f"only {released} bytes given back"
    assert trims_observed() == calls + 1
    assert len(kept) == BUFFERS // 10
