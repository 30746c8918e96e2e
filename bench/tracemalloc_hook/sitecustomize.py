"""Loaded by a server that `bench/soak.py --tracemalloc` starts (this directory first on its
PYTHONPATH): traces allocations from the start, and writes a snapshot to
`$CHILLOUT_TRACEMALLOC_DIR/snapshot-<pid>-<n>.pickle` each time the process gets SIGUSR2.

Bench-only diagnosis: tracing slows the server down several times, so a soak run with it
finds where memory grows; its speed figures are not the server's.
"""

import itertools
import os
import signal
import tracemalloc
from pathlib import Path

FRAMES = int(os.environ.get("CHILLOUT_TRACEMALLOC_FRAMES", "1"))  # 1: grouped by line, the cheapest

directory = os.environ.get("CHILLOUT_TRACEMALLOC_DIR")
if directory:
    tracemalloc.start(FRAMES)
    numbers = itertools.count(1)

    def write_snapshot(*_) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        snapshot.dump(str(Path(directory) / f"snapshot-{os.getpid()}-{next(numbers)}.pickle"))

    signal.signal(signal.SIGUSR2, write_snapshot)
