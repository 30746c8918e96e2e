"""Generic write helpers the services call: grouped inserts, once-per-window actions, retries.

Nothing here knows rooms or calls back into a service: `rooms.services` owns the instances
(which collection is grouped, what is coalesced and for how long) and passes its own
database operation to them.

Grouped inserts (`InsertGroup`). Every socket's `send_message` runs in its own task; each
doing its own `insert_one` costs one round trip and one database command per message, and
on the embedded server (one Python process) the per-command overhead is most of the cost.
Here the first insert of a quiet moment goes out at once (one loop iteration later, with
whatever else arrived in that iteration); inserts arriving while a batch is in flight wait
for it and then go out together as one `insert_many(ordered=False)`. So nothing waits on a
timer: under light load a batch is one message, under heavy load batches grow to the
arrival rate times one round trip. Each caller still gets its own outcome, and returns only
once its own document is acknowledged, i.e. durable under the client's write concern
(`MONGO_WRITE_CONCERN`, journaled by default): one `insert_many` is one journal flush for the
whole group, so grouping also amortises durability. A group whose write concern failed
(e.g. `wtimeout` under `majority`) fails for every caller in it, even if its documents landed.

Once per window (`RecentKeys`). `once(key, action)` runs the action unless it succeeded for
that key within the window; callers arriving while it runs share that run and its outcome,
so a burst of writes or joins to one room makes one database call, not one each.

Retries (`write_retrying`, and inside `InsertGroup`). The embedded server closes pooled
connections after its idle timeout, and the driver may hand out a dead one
(`AutoReconnect`); writes are not retried by the driver on a standalone server. An insert is
safe to repeat when its `_id` is made by the app: a `DuplicateKeyError` on the retry means
the first attempt landed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.errors import AutoReconnect, BulkWriteError, WriteConcernError

T = TypeVar("T")

DUPLICATE_KEY = 11000
MAX_BATCH = 500


async def write_retrying(*, operation: Callable[[], Awaitable[T]]) -> T:
    """Run an idempotent write; once more if the connection it used turned out dead."""
    try:
        return await operation()
    except AutoReconnect:
        return await operation()


class InsertGroup:
    """Concurrent single inserts into one collection, sent as `insert_many` batches."""

    def __init__(self, *, insert_many: Callable[[list[dict]], Awaitable[object]]):
        """`insert_many(docs)`: the unordered bulk insert of one collection (raises PyMongo's errors)."""
        self._insert = insert_many
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    async def insert(self, *, doc: dict) -> None:
        """Return once `doc` is stored; raise what its own insert raised."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a command's asyncio.run): nothing carries over
            self._loop, self._pending, self._drainer = loop, [], None
        future = loop.create_future()
        self._pending.append((doc, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the inserts of this loop iteration join the first batch
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._drainer = None

    async def _write(self, batch: list[tuple[dict, asyncio.Future]]) -> None:
        failures = await self._insert_many([doc for doc, _ in batch])
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue  # its caller was cancelled; the document may still have been stored
            error = failures.get(index) if isinstance(failures, dict) else failures
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def _insert_many(self, docs: list[dict]) -> dict[int, BaseException] | BaseException:
        """Per-document errors by index (empty: all stored), or one error for all of them."""
        retried = False
        while True:
            try:
                await self._insert(docs)
                return {}
            except BulkWriteError as exc:
                if exc.details.get("writeConcernErrors"):  # stored, perhaps, but not durable: nobody is acked
                    return WriteConcernError(str(exc.details["writeConcernErrors"][0].get("errmsg", "write concern")))
                failures = {}
                for error in exc.details.get("writeErrors", []):
                    if retried and error.get("code") == DUPLICATE_KEY:
                        continue  # stored by the attempt whose answer was lost
                    failures[error["index"]] = BulkWriteError({"writeErrors": [error]})
                return failures
            except AutoReconnect as exc:
                if retried:
                    return exc
                retried = True
            except Exception as exc:  # every caller must hear of it, whatever it is
                return exc


class RecentKeys:
    """Keys an action succeeded for within `window()` seconds (monotonic times); see the module docstring."""

    def __init__(self, *, window: Callable[[], float]) -> None:
        self._window = window
        self._at: dict[str, float] = {}
        self._running: dict[str, asyncio.Future] = {}

    def fresh(self, *, key: str) -> bool:
        return time.monotonic() - self._at.get(key, float("-inf")) < self._window()

    def mark(self, *, key: str) -> None:
        now = time.monotonic()
        if len(self._at) > 10_000:
            resolution = self._window()
            for stale in [r for r, at in self._at.items() if now - at >= resolution]:
                del self._at[stale]
        self._at[key] = now

    def forget(self, *, key: str) -> None:
        self._at.pop(key, None)

    async def once(self, *, key: str, action: Callable[[], Awaitable[object]]) -> None:
        if self.fresh(key=key):
            return
        running = self._running.get(key)
        if running is not None and running.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(running)
            return
        future = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            await action()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the waiters re-raise it; nobody else must report it unretrieved
            raise
        else:
            future.set_result(None)
            self.mark(key=key)
        finally:
            self._running.pop(key, None)
