"""GC_THRESHOLDS: parsed strictly; applied by freezing the startup objects, then the thresholds.
GC_FULL_SECONDS: the timed collection frees the cycles the tuned thresholds leave in the oldest generation."""

import gc
import weakref

import pytest

from chillout_project import metrics
from chillout_project.gc_tuning import gc_collect_full, gc_thresholds_parse, gc_tune


@pytest.mark.parametrize("value, parsed", [("50000,50,100", (50000, 50, 100)), (" 700, 10 ,10 ", (700, 10, 10)),
                                           ("default", None), ("", None), ("DEFAULT", None)])  # fmt: skip
def test_thresholds_parse(value, parsed):
    assert gc_thresholds_parse(value) == parsed


@pytest.mark.parametrize("value", ["50000", "1,2,3,4", "0,10,10", "-1,10,10", "a,b,c", "1.5,10,10", "off"])
def test_anything_else_is_refused_with_the_setting_named(value):
    with pytest.raises(ValueError, match="^GC_THRESHOLDS must be three positive integers"):
        gc_thresholds_parse(value)


@pytest.fixture
def collector_restored():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_freezes_what_is_alive_and_sets_the_thresholds(collector_restored):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    gc_tune((50000, 50, 100))
    assert gc.get_threshold() == (50000, 50, 100)
    assert gc.get_freeze_count() > 1000  # this process's modules, classes, functions...


def test_default_leaves_the_collector_alone(collector_restored):
    before = gc.get_threshold()
    gc_tune(None)
    assert gc.get_threshold() == before


class Node:
    """A reference cycle, as a dead socket's protocol and transport are."""

    def __init__(self) -> None:
        self.me = self


def test_the_full_collection_frees_a_dead_cycle_the_tuned_thresholds_keep(collector_restored):
    gc.unfreeze()
    gc_tune((50000, 50, 100))  # as at start-up; the socket comes later
    cycle = Node()
    gc.collect()  # it survives: now in the oldest generation, as a socket alive for seconds is
    alive = weakref.ref(cycle)
    del cycle
    for _ in range(5):
        gc.collect(1)  # the younger generations' collections do not reach it
    assert alive() is not None
    pauses, found = collections_observed(), metrics.gc_full_found._value.get()

    assert gc_collect_full() >= 1
    assert alive() is None
    assert collections_observed() == pauses + 1
    assert metrics.gc_full_found._value.get() >= found + 1


def collections_observed() -> float:
    return sum(bucket.get() for bucket in metrics.gc_full_seconds._buckets)
