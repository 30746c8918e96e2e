"""The cyclic garbage collector tuned for a long-lived server holding many sockets.

Why. CPython's collector runs a young collection every 700 net container allocations and an
older one every 10 of those; each walks every object of its generations. A server holding
thousands of sockets has hundreds of thousands of long-lived container objects (engine.io
sessions, queues, tasks, protocol objects), so during a connect storm the collections that
reach the older generations walk all of them again and again: ~30 % of Daphne's CPU per
connect + join (docs/performance.md, "Garbage collection"). Almost nothing here is freed by
the cyclic collector rather than by reference counting, so collecting less often frees
the same memory later, not more memory.

What. Once the process has started (`lifecycle.startup`: Django, the database clients and
the application built), `gc_tune` moves every object alive then into the permanent
generation (`gc.freeze()`: never walked again; as Instagram does for its servers) and sets
the thresholds from `GC_THRESHOLDS` (default 50,000 / 50 / 100: a young collection per
50,000 net allocations). `GC_THRESHOLDS=default` leaves CPython's collector as it is.
"""

from __future__ import annotations

import gc
import logging

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
