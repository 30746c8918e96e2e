"""The message write path's two economies: grouped inserts and coalesced room touches.

Grouped inserts (`message_insert`). Every socket's `send_message` runs in its own task; each
doing its own `insert_one` costs one round trip and one database command per message, and
on the embedded server (one Python process) the per-command overhead is most of the cost.
Here the first insert of a quiet moment goes out at once (one loop iteration later, with
whatever else arrived in that iteration); inserts arriving while a batch is in flight wait
for it and then go out together as one `insert_many(ordered=False)`. So nothing waits on a
timer: under light load a batch is one message, under heavy load batches grow to the
arrival rate times one round trip. Each caller still gets its own outcome, and returns only
once its own document is acknowledged.

Coalesced touches (`room_touch_coalesced`). The room document's `lastActivity` only feeds a
TTL of `ROOM_TTL_SECONDS` (30 days). A message write moves it when the process has not
moved it in the last `ROOM_TOUCH_RESOLUTION_SECONDS` (see `touch_resolution`); so the stored
value is never older than that resolution behind the room's newest write, which is far
inside the TTL (the resolution is capped at 1 % of it), so a room written to never expires
and the purge's re-check of `lastActivity` stays sound. A touch in flight is shared by the
writes that arrive meanwhile, so none of them stores its message before the room is
touched. Joins likewise read the room document at most once per resolution
(`rooms.services.room_ensure`).

The trade-off: a room deleted on purpose (`manage.py delete_room`, from another process) is
not re-created by this process's writes for up to the resolution; messages stored meanwhile
have no room, and the purge removes them as it removes any orphan.

Retries. The embedded server closes pooled connections after its idle timeout, and the
driver may hand out a dead one (`AutoReconnect`); writes are not retried by the driver on a
standalone server. An insert is safe to repeat because its `_id` is made by the app: a
`DuplicateKeyError` on the retry means the first attempt landed. A touch is a `$set` of a
time, safe to repeat as it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings
from pymongo.errors import AutoReconnect, BulkWriteError

from chillout_project.mongo import async_db

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
    """Concurrent `insert_one`s into one collection, sent as `insert_many` batches."""

    def __init__(self, *, collection: str):
        self.collection = collection
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
        collection = async_db()[self.collection]
        retried = False
        while True:
            try:
                await collection.insert_many(docs, ordered=False)
                return {}
            except BulkWriteError as exc:
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


_message_inserts = InsertGroup(collection="messages")


async def message_insert(*, doc: dict) -> None:
    """Store one message (grouped with concurrent ones); returns once it is acknowledged."""
    await _message_inserts.insert(doc=doc)


def touch_resolution() -> float:
    """Seconds between two `lastActivity` moves of a room by message writes in one process.

    `ROOM_TOUCH_RESOLUTION_SECONDS`, capped at 1 % of `ROOM_TTL_SECONDS` so that a short TTL
    (tests, demos) keeps touches fine-grained and a room can never expire while written to.
    """
    return min(settings.ROOM_TOUCH_RESOLUTION_SECONDS, settings.ROOM_TTL_SECONDS / 100)


class RecentRooms:
    """Rooms this process did something to within the touch resolution (monotonic times).

    `once` runs the action unless it succeeded for the room within the resolution; callers
    that arrive while it runs wait for that same run (and share its outcome), so a burst of
    writes or joins to one room makes one database call, not one each.
    """

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._running: dict[str, asyncio.Future] = {}

    def fresh(self, *, room_id: str) -> bool:
        return time.monotonic() - self._at.get(room_id, float("-inf")) < touch_resolution()

    def mark(self, *, room_id: str) -> None:
        now = time.monotonic()
        if len(self._at) > 10_000:
            resolution = touch_resolution()
            for stale in [r for r, at in self._at.items() if now - at >= resolution]:
                del self._at[stale]
        self._at[room_id] = now

    def forget(self, *, room_id: str) -> None:
        self._at.pop(room_id, None)

    async def once(self, *, room_id: str, action: Callable[[], Awaitable[object]]) -> None:
        if self.fresh(room_id=room_id):
            return
        running = self._running.get(room_id)
        if running is not None and running.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(running)
            return
        future = asyncio.get_running_loop().create_future()
        self._running[room_id] = future
        try:
            await action()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the waiters re-raise it; nobody else must report it unretrieved
            raise
        else:
            future.set_result(None)
            self.mark(room_id=room_id)
        finally:
            self._running.pop(room_id, None)


touched = RecentRooms()  # lastActivity moved by this process
known = RecentRooms()  # the room document was found, created or touched by this process


async def room_touch_coalesced(*, room_id: str, touch: Callable[[], Awaitable[None]]) -> None:
    """Run `touch` unless this process moved the room's `lastActivity` within the resolution."""
    await touched.once(room_id=room_id, action=touch)
    known.mark(room_id=room_id)


def room_forget(*, room_id: str) -> None:
    """The room's document is gone: the next write moves `lastActivity` (re-creating it)."""
    touched.forget(room_id=room_id)
    known.forget(room_id=room_id)
