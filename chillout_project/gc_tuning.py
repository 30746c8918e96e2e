"""The cyclic garbage collector tuned for a long-lived server holding many sockets.

Why. CPython's collector runs a young collection every 700 net container allocations and an
older one every 10 of those; each walks every object of its generations. A server holding
thousands of sockets has hundreds of thousands of long-lived container objects (engine.io
sessions, queues, tasks, protocol objects), so during a connect storm the collections that
reach the older generations walk all of them again and again: ~30 % of Daphne's CPU per
connect + join (docs/performance.md, "Garbage collection"). Most objects here are freed by
reference counting; those in cycles are freed later, by the timed full collection below.

What. Once the process has started (`lifecycle.startup`: Django, the database clients and
the application built), `gc_tune` moves every object alive then into the permanent
generation (`gc.freeze()`: never walked again; as Instagram does for its servers) and sets
the thresholds from `GC_THRESHOLDS` (default 50,000 / 50 / 100: a young collection per
50,000 net allocations). `GC_THRESHOLDS=default` leaves CPython's collector as it is.

The oldest generation, on a clock. With those thresholds CPython would collect the oldest
generation only after 100 middle ones (250 million net allocations): in effect never. But
a socket's objects live long enough to reach it (tens of seconds: the young collections
see them alive) and die in reference cycles (Daphne's and autobahn's protocol with its
transport and deferreds, asyncio's queues and futures, engine.io's per-request classes),
which only a collection of their generation frees. Without one, a soak grew ~1 MB a
minute and a churn of connects ~8 KB per connection, all of it garbage that `gc.collect()`
frees (docs/soak.md). So `gc_full_loop` collects every generation every `GC_FULL_SECONDS`
(60): one pause per interval (its duration is `chillout_gc_full_seconds`), not one per
few thousand allocations. It runs only with tuned thresholds; CPython's own collect the
oldest generation by themselves.

Concurrency: the collection runs on the event loop (it holds the GIL whatever thread ran
it), so the loop pauses for its duration; finalizers it triggers run there too.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from chillout_project import metrics

logger = logging.getLogger(__name__)

Thresholds = tuple[int, int, int]


def gc_thresholds_parse(value: str) -> Thresholds | None:
    """`"50000,50,100"` → (50000, 50, 100); `"default"` or empty → None (CPython's own).
    Raises ValueError for anything else."""
    text = value.strip().lower()
    if text in ("", "default"):
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise ValueError(f"GC_THRESHOLDS must be three positive integers like 50000,50,100, or 'default'; not {value!r}")
    first, second, third = (int(part) for part in parts)
    return first, second, third


def gc_tune(thresholds: Thresholds | None) -> None:
    """Freeze what is alive now and set the collector's thresholds (nothing when None)."""
    if thresholds is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    logger.info("garbage collector: %d startup objects frozen, thresholds %s", gc.get_freeze_count(), thresholds)


async def gc_full_loop(*, interval: float) -> None:
    """Background loop: collect every generation each `interval` seconds (see the module doc)."""
    while True:
        await asyncio.sleep(interval)
        gc_collect_full()


def gc_collect_full() -> int:
    """One collection of every generation, timed into `chillout_gc_full_seconds`; returns
    the number of unreachable objects it found."""
    started = time.perf_counter()
    found = gc.collect()
    metrics.gc_full_observe(seconds=time.perf_counter() - started, found=found)
    return found
