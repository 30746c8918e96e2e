"""The soak's processes: the embedded database, Redis and the servers, each restartable on
its own port (a fault stops one and starts it again where its users find it), and the
faults of `--faults`. Every start and stop blocks (processes are waited for), so the soak
runs them in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _harness import embedded_database_on, free_port, history_docs, redis_server, server_process


@dataclass
class Target:
    """One server process the soak talks to and samples (restartable in `--faults`)."""

    url: str
    pid: int | None
    restart: object = None  # async callable: SIGTERM and start again on the same port


def history_insert(mongo_uri: str, room_ids: list[str], count: int) -> None:
    """Each room and `count` messages of history, one a minute, written to the database directly."""
    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        db = client.get_default_database()
        for room_id in room_ids:
            db.rooms.insert_one({"roomId": room_id, "lastActivity": datetime.now(UTC), "__v": 0})
            db.messages.insert_many(history_docs(room_id, count, spacing=60.0))


class Restartable:
    """A service started from a context-manager factory that a fault can stop and start again."""

    def __init__(self, factory) -> None:
        self.factory, self.manager, self.value = factory, None, None

    def start(self):
        self.manager = self.factory()
        self.value = self.manager.__enter__()
        return self.value

    def stop(self) -> None:
        manager, self.manager = self.manager, None
        if manager is not None:
            manager.__exit__(None, None, None)


class Processes:
    """The embedded database, Redis (`--faults`: two processes share it) and the servers, each
    on a fixed port so that a restarted one is found again by whoever used it."""

    def __init__(self, workdir: Path, *, servers: int, env: dict) -> None:
        db_port = free_port()
        self.mongo_uri = f"mongodb://127.0.0.1:{db_port}/chillout_soak"
        self.database = Restartable(lambda: embedded_database_on(workdir, db_port))
        self.redis = Restartable(lambda port=free_port(): redis_server(port)) if servers > 1 else None
        self.env = env
        self.servers = [self.server_on(free_port()) for _ in range(servers)]

    def server_on(self, port: int) -> Restartable:
        def start():
            extra = {"REDIS_URL": self.redis.value[0]} if self.redis else {}
            return server_process(self.mongo_uri, port=port, **self.env, **extra)

        return Restartable(start)

    def start(self) -> list[Target]:
        self.database.start()
        if self.redis:
            self.redis.start()
        return [Target(url=url, pid=pid) for url, pid in (server.start() for server in self.servers)]

    def stop(self) -> None:
        for service in [*self.servers, self.redis, self.database]:
            if service is not None:
                with contextlib.suppress(Exception):
                    service.stop()

    # The faults. Each blocks (processes start and stop) and so runs in a thread.

    def database_kill(self) -> None:
        os.kill(self.database.value, signal.SIGKILL)
        self.database.stop()
        time.sleep(3)
        self.database.start()

    def redis_restart(self) -> None:
        self.redis.stop()
        time.sleep(3)
        self.redis.start()

    def server_restart(self, target: Target, index: int = -1) -> None:
        self.servers[index].stop()  # SIGTERM: the server's own shutdown
        time.sleep(2)
        target.url, target.pid = self.servers[index].start()


FAULT_SCHEDULE = [(0.25, "database SIGKILL"), (0.5, "redis restart"), (0.75, "server SIGTERM")]


def fault_actions(processes: Processes, targets: list[Target]) -> dict:
    async def in_thread(function, *args) -> None:
        await asyncio.to_thread(function, *args)

    return {
        "database SIGKILL": lambda: in_thread(processes.database_kill),
        "redis restart": lambda: in_thread(processes.redis_restart),
        "server SIGTERM": lambda: in_thread(processes.server_restart, targets[-1]),
    }
