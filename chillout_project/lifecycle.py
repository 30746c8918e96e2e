"""The server process's lifetime: background tasks at start, a graceful stop on SIGTERM.

Registration, not start. Nothing here runs at import. The apps register what they need
at composition time (`rooms` its periodic purge in `RoomsConfig.ready()`; `realtime` its
shutdown hook and, with `REDIS_URL`, the heartbeat and reaper when asgi.py builds it):
`startup_hook_add`, `background_loop_add`, `shutdown_hook_add`, `turn_taker_set`. The core
never imports an app.

Start. Daphne sends no ASGI lifespan events, so `startup()` (the startup hooks, e.g. the
database connection, in a worker thread; then the background loops; then the garbage
collector's tuning, `chillout_project.gc_tuning`) runs on the first HTTP
request or websocket connection (`ObservedApp` awaits it before passing the request on), on
the server's own event loop. Servers that do send lifespan events (uvicorn) run it at
`lifespan.startup` instead (`LifespanApp`). Concurrent first requests wait for the same
start; one whose client went away does not cancel it.

Stop. What Daphne does on its own on SIGTERM (read in daphne/server.py and Twisted's
base.py): Twisted's handler calls `reactor.stop()`; Daphne's "before shutdown" trigger
`kill_all_applications` then *cancels* every running application instance at once,
in-flight uploads included, and only afterwards are the listening ports closed. A request
whose write was half done is cut, and nothing waits for anything.

`graceful_shutdown_install()` (called from asgi.py, effective only under Daphne) replaces
Twisted's SIGTERM handler once the reactor runs, with this sequence:

1. stop listening (the listening ports are closed, new connections are refused), and
   answer any new request on a kept-alive connection 503 (`observe.tracker.draining`);
2. stop the background tasks; run the registered shutdown hooks (`shutdown_hook_add`,
   e.g. for Socket.IO to tell its clients), each bounded by the grace period;
3. wait until the in-flight HTTP requests have finished, at most `SHUTDOWN_GRACE_SECONDS`;
   then run the hooks registered with `after_drain=True` (the media worker pool: in-flight
   uploads still need it until here);
4. `reactor.stop()`: Daphne cancels what is left (websockets, long-polls) and the process
   exits; the embedded database this process started is stopped by its atexit hook, after
   every acknowledged write is in it (the stop is a clean WiredTiger close).

A second SIGTERM, or SIGINT, stops at once as before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

from chillout_project.gc_tuning import gc_tune
from chillout_project.observe import tracker

logger = logging.getLogger(__name__)

_hooks: list[Callable[[], Awaitable[None]]] = []
_final_hooks: list[Callable[[], Awaitable[None]]] = []
_loops: dict[str, Callable[[], Awaitable[None]]] = {}
_startup_hooks: list[Callable[[], None]] = []
_turn_taker: list[Callable[..., Awaitable[bool]]] = []


def startup_hook_add(hook: Callable[[], None]) -> None:
    """Register a blocking function run once at start, in a worker thread, before any
    request is served (e.g. connecting the database, which may start the embedded one)."""
    if hook not in _startup_hooks:
        _startup_hooks.append(hook)


def turn_taker_set(taker: Callable[..., Awaitable[bool]]) -> None:
    """Who decides which process runs a periodic job: `taker(name=, seconds=) -> bool`.

    Set by `realtime` (its shared state knows the other processes); unset, every process
    takes every turn.
    """
    _turn_taker[:] = [taker]


async def turn_take(*, name: str, seconds: float) -> bool:
    """True if this process should run the periodic job `name` now (see `turn_taker_set`)."""
    if not _turn_taker:
        return True
    return await _turn_taker[0](name=name, seconds=seconds)


def shutdown_hook_add(hook: Callable[[], Awaitable[None]], *, after_drain: bool = False) -> None:
    """Register a coroutine function awaited at graceful shutdown, before the drain wait
    (`after_drain`: after it, i.e. once in-flight requests are done, and at ASGI
    `lifespan.shutdown` for servers that send it).

    For `realtime/`: e.g. disconnect every socket cleanly; for the media pool: stop its
    threads. Each hook gets at most the grace period; an exception is logged and the
    shutdown goes on.
    """
    hooks = _final_hooks if after_drain else _hooks
    if hook not in hooks:
        hooks.append(hook)


async def _run_hooks(hooks: list[Callable[[], Awaitable[None]]], *, deadline: float) -> None:
    for hook in list(hooks):
        try:
            await asyncio.wait_for(hook(), max(deadline - time.monotonic(), 0.1))
        except Exception:
            logger.exception("shutdown hook %r failed", hook)


def background_loop_add(*, name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Register a coroutine function run as a background task for the process's lifetime.

    For the periodic purge (`rooms`) and the Redis heartbeat and reaper (`realtime`):
    registered at composition time, started by `BackgroundTasks.start`, cancelled by
    `BackgroundTasks.stop`. The loop must catch its own errors: one that returns or raises
    is not restarted.
    """
    _loops[name] = loop


class BackgroundTasks:
    """The process's long-running asyncio tasks; started once, on the server's loop."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task] = []
        self.started = False

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        running = asyncio.get_running_loop()
        for name, loop in _loops.items():
            self.tasks.append(running.create_task(loop(), name=name))

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Cancel every task and wait for them, at most `timeout`: a task that ignores its
        cancellation is logged and left behind rather than holding up the shutdown."""
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=timeout)
            for task in pending:
                logger.error("background task %s did not stop when cancelled", task.get_name())
        self.tasks.clear()


background = BackgroundTasks()
_startup: list[asyncio.Task] = []


async def startup() -> None:
    """Run the startup hooks (in a thread: they block), then start the background loops.

    Once per process; every caller waits for the same run, shielded so that a first
    request cancelled by its client does not cancel the start.
    """
    if not _startup:
        _startup.append(asyncio.get_running_loop().create_task(_startup_run(), name="chillout-startup"))
    await asyncio.shield(_startup[0])


async def _startup_run() -> None:
    for hook in _startup_hooks:
        await asyncio.to_thread(hook)
    background.start()
    gc_tune(settings.GC_THRESHOLDS)


class LifespanApp:
    """Answers ASGI lifespan events for servers that send them; passes everything else on."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await startup()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await background.stop()
                await _run_hooks(_final_hooks, deadline=time.monotonic() + settings.SHUTDOWN_GRACE_SECONDS)
                await send({"type": "lifespan.shutdown.complete"})
                return


def graceful_shutdown_install() -> None:
    """Under Daphne, replace Twisted's SIGTERM handler with `shutdown_graceful` once running.

    Does nothing elsewhere (uvicorn, tests importing the app): importing Twisted's reactor
    before Daphne has installed its asyncio reactor would install the wrong one.
    """
    if "daphne.server" not in sys.modules or "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    reactor.callWhenRunning(_install_handler, reactor)


def _install_handler(reactor) -> None:
    loop = asyncio.get_event_loop()
    state = {"stopping": False}

    def on_sigterm(signum, frame):
        if state["stopping"]:
            loop.call_soon_threadsafe(reactor.stop)
            return
        state["stopping"] = True
        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown_graceful(reactor)))

    # signal.signal, not loop.add_signal_handler: the latter would take over the wakeup fd
    # that Twisted uses for SIGCHLD.
    signal.signal(signal.SIGTERM, on_sigterm)


async def shutdown_graceful(reactor, *, grace: float | None = None) -> None:
    grace = settings.SHUTDOWN_GRACE_SECONDS if grace is None else grace
    deadline = time.monotonic() + grace
    tracker.draining = True
    closed = _stop_listening(reactor)
    logger.info("SIGTERM: stopped listening on %d port(s); %d request(s) in flight", closed, tracker.in_flight)
    try:
        await background.stop()
        await _run_hooks(_hooks, deadline=deadline)
        if not await tracker.wait_idle(max(deadline - time.monotonic(), 0.0)):
            logger.warning("grace period over: %d request(s) still in flight are cut", tracker.in_flight)
        else:
            logger.info("in-flight requests finished; stopping")
        await _run_hooks(_final_hooks, deadline=deadline)
    finally:
        reactor.stop()


def _stop_listening(reactor) -> int:
    from twisted.internet import tcp, unix

    ports = [r for r in reactor.getReaders() if isinstance(r, tcp.Port | unix.Port)]
    for port in ports:
        port.stopListening()
    return len(ports)
