"""`chillout_project.ratelimit.KeyedBuckets`: one bucket per client IP, forgotten once refilled."""

from chillout_project import ratelimit
from chillout_project.ratelimit import KeyedBuckets


def test_each_key_has_its_own_burst(monkeypatch):
    now = [10.0]
    monkeypatch.setattr("chillout_project.ratelimit.time.monotonic", lambda: now[0])
    buckets = KeyedBuckets(rate=1, burst=2)
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.take("b") is True
    now[0] += 1.0
    assert [buckets.take("a"), buckets.take("a")] == [True, False]


def test_zero_rate_or_burst_is_no_limit():
    for buckets in (KeyedBuckets(rate=0, burst=5), KeyedBuckets(rate=5, burst=0)):
        assert all(buckets.take("a") for _ in range(100))
        assert len(buckets) == 0


def test_refilled_buckets_are_forgotten_so_memory_follows_recent_keys(monkeypatch):
    now = [10.0]
    monkeypatch.setattr("chillout_project.ratelimit.time.monotonic", lambda: now[0])
    buckets = KeyedBuckets(rate=1, burst=2)
    for i in range(ratelimit.PRUNE_EVERY - 1):
        buckets.take(f"old-{i}")
    now[0] += 5.0  # every old bucket is full again
    buckets.take("a")  # the key that completes a sweep period
    buckets.take("a")
    assert len(buckets) == 1
    assert buckets.take("a") is False  # the live bucket kept its state
