"""`rooms.writes`: grouped inserts and once-per-window actions, on an in-memory collection."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError

from rooms.writes import MAX_BATCH, InsertGroup, RecentKeys, write_retrying


class MemoryCollection:
    """An unordered bulk insert with MongoDB's outcomes: a duplicate `_id` fails only that
    document; so does a duplicate `key` (a second unique index, checked first, as the
    embedded server reports a re-inserted document on it rather than on `_id`)."""

    def __init__(self, *, dead_connections: int = 0):
        self.docs: dict[object, dict] = {}
        self.batches: list[int] = []
        self.dead_connections = dead_connections

    async def insert_many(self, docs: list[dict]) -> None:
        await asyncio.sleep(0)  # a round trip: the loop runs others meanwhile
        self.batches.append(len(docs))
        errors = []
        for index, doc in enumerate(docs):
            keys = {d["key"] for d in self.docs.values() if "key" in d}
            if "key" in doc and doc["key"] in keys:
                errors.append({"index": index, "code": 11000, "errmsg": "dup", "keyPattern": {"key": 1}})
            elif doc["_id"] in self.docs:
                errors.append({"index": index, "code": 11000, "errmsg": "dup", "keyPattern": {"_id": 1}})
            else:
                self.docs[doc["_id"]] = doc
        if self.dead_connections:  # stored, but the answer is lost
            self.dead_connections -= 1
            raise AutoReconnect("connection closed")
        if errors:
            raise BulkWriteError({"writeErrors": errors})


async def test_concurrent_inserts_go_out_as_one_batch():
    collection = MemoryCollection()
    group = InsertGroup(insert_many=collection.insert_many)
    await asyncio.gather(*(group.insert(doc={"_id": n}) for n in range(10)))
    assert collection.batches == [10]
    assert sorted(collection.docs) == list(range(10))


async def test_batches_are_capped():
    collection = MemoryCollection()
    group = InsertGroup(insert_many=collection.insert_many)
    await asyncio.gather(*(group.insert(doc={"_id": n}) for n in range(MAX_BATCH + 3)))
    assert collection.batches == [MAX_BATCH, 3]


async def test_each_caller_hears_its_own_outcome():
    collection = MemoryCollection()
    collection.docs[2] = {"_id": 2}
    group = InsertGroup(insert_many=collection.insert_many)
    outcomes = await asyncio.gather(*(group.insert(doc={"_id": n}) for n in range(4)), return_exceptions=True)
    assert outcomes[:2] == [None, None] and outcomes[3] is None
    assert isinstance(outcomes[2], DuplicateKeyError)
    assert outcomes[2].details["code"] == 11000 and outcomes[2].details["keyPattern"] == {"_id": 1}


async def test_a_duplicate_on_another_index_reaches_its_caller_even_on_a_retry():
    """In the same batch, or already stored: the caller (`message_create_once`) judges it,
    since a retry of its own document may be reported on that index rather than on `_id`."""
    collection = MemoryCollection(dead_connections=1)
    collection.docs["old"] = {"_id": "old", "key": "k0"}
    group = InsertGroup(insert_many=collection.insert_many)
    docs = [{"_id": 1, "key": "k1"}, {"_id": 2, "key": "k1"}, {"_id": 3, "key": "k0"}, {"_id": 4}]
    outcomes = await asyncio.gather(*(group.insert(doc=doc) for doc in docs), return_exceptions=True)
    assert isinstance(outcomes[0], DuplicateKeyError)  # its first attempt landed; the retry sees its key taken
    assert isinstance(outcomes[1], DuplicateKeyError) and isinstance(outcomes[2], DuplicateKeyError)
    assert outcomes[3] is None  # a duplicate `_id` on the retry: its own first attempt
    assert sorted(collection.docs, key=str) == [1, 4, "old"]


async def test_a_retry_after_a_lost_answer_counts_its_own_documents_as_stored():
    collection = MemoryCollection(dead_connections=1)
    group = InsertGroup(insert_many=collection.insert_many)
    await asyncio.gather(*(group.insert(doc={"_id": n}) for n in range(3)))
    assert collection.batches == [3, 3] and sorted(collection.docs) == [0, 1, 2]


async def test_a_connection_dead_twice_fails_every_caller():
    collection = MemoryCollection(dead_connections=2)
    group = InsertGroup(insert_many=collection.insert_many)
    outcomes = await asyncio.gather(*(group.insert(doc={"_id": n}) for n in range(2)), return_exceptions=True)
    assert all(isinstance(o, AutoReconnect) for o in outcomes)


async def test_write_retrying_repeats_once_on_a_dead_connection():
    calls = []

    async def operation():
        calls.append(1)
        if len(calls) < 3:
            raise AutoReconnect("closed")
        return "ok"

    with pytest.raises(AutoReconnect):
        await write_retrying(operation=operation)
    assert await write_retrying(operation=operation) == "ok" and len(calls) == 3


async def test_recent_keys_run_an_action_once_per_window_and_share_it():
    runs = []

    async def action():
        runs.append(1)
        await asyncio.sleep(0)

    keys = RecentKeys(window=lambda: 60.0)
    await asyncio.gather(*(keys.once(key="r", action=action) for _ in range(5)))
    await keys.once(key="r", action=action)
    assert len(runs) == 1
    await keys.once(key="other", action=action)
    keys.forget(key="r")
    await keys.once(key="r", action=action)
    assert len(runs) == 3


async def test_recent_keys_with_a_zero_window_run_every_time():
    runs = []

    async def action():
        runs.append(1)

    keys = RecentKeys(window=lambda: 0.0)
    for _ in range(3):
        await keys.once(key="r", action=action)
    assert len(runs) == 3


async def test_a_failed_action_reaches_every_waiter_and_is_not_remembered():
    async def failing():
        await asyncio.sleep(0)
        raise RuntimeError("down")

    keys = RecentKeys(window=lambda: 60.0)
    outcomes = await asyncio.gather(*(keys.once(key="r", action=failing) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert not keys.fresh(key="r")
