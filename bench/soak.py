"""A soak: a realistic mix against one server for a long time, sampled, plotted, summed up.

    python bench/soak.py --minutes 30 --out var/soak          # Daphne on a fresh embedded database
    python bench/soak.py --minutes 12 --out var/soak-faults --faults
    python bench/soak.py --minutes 5 --url http://127.0.0.1:5000 --pids 1234   # a server you run

Why: the other benches measure one scenario for seconds; a leak, a descriptor that is never
closed, a task left behind or a p99 that creeps only shows over many minutes of everything
at once. The mix (`Profile`): a 500-member room, rooms of 2–50 chatting at a steady rate,
clients joining and leaving, voice notes and images uploaded and downloaded, call
signaling, network blips (a client's websocket closed under it; it reconnects, rejoins and
reads the history it missed, as the web client does after a reload) and a slow reader (a raw
websocket in the big room that reads one frame every few seconds).

Every `--sample` seconds one JSON line goes to DIR/soak.jsonl: the server's RSS and open
descriptors (/proc), asyncio tasks, event-loop lag and database connections (/metrics:
`chillout_asyncio_tasks`, `chillout_event_loop_lag_seconds`, `chillout_mongo_connections`),
connected clients, messages acked / lost / duplicated so far, p50/p99 ack latency of the
interval, and this process's own loop lag (a client that falls behind would inflate the
latencies). At the end DIR/soak.png (one panel per figure over time, faults marked), a
one-screen summary, and as the last stdout line one JSON object (`minutes`, `acked`, `lost`,
`duplicated`, `rss_warm_mb`, `rss_end_mb`, `rss_growth_pct`, `fd_delta`, `p99_ms_first`,
`p99_ms_last`, ...).

Lost and duplicated (`Ledger`): a message whose send was acked `ok` is expected by every
member of its room that had joined before the send and had not begun to leave when the ack
came; each must have it at the end, live or from the history it read after a reconnect.
Duplicated: one member receiving the same message id twice live.

`--faults` runs two server processes on one Redis (the scale-out setup; each room's members
spread over both) and, on a schedule, SIGKILLs the database and restarts it, restarts Redis,
and SIGTERMs one server and restarts it on its port while its clients reconnect.
`--tracemalloc` makes the server write tracemalloc snapshots (`CHILLOUT_TRACEMALLOC_DIR`)
and prints the allocation sites that grew most between the first after warm-up and the last.

A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import itertools
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio
import websockets
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    embedded_database_on, free_port, load_average, percentile, proc_rss_mb, redis_server, server_process,
)

SERVER_ENV = {"MAX_CONNECTIONS_PER_IP": 0, "METRICS": "open"}  # every client comes from 127.0.0.1
LATE_SECONDS = 15.0  # an expected copy missing this long after its ack counts as lost (so far)
ACK_TIMEOUT = 10.0
WARM_IDLE_SECONDS = 30.0  # past engine.io's ping interval (25 s)
SETTLE_SECONDS = 180.0  # MONGO_MAX_IDLE_MS (120 s) and the driver's next pool check


@dataclass(frozen=True)
class Profile:
    """The mix. Rates are per second; the defaults make ~700 clients and ~10 messages/s."""

    big_room_members: int = 500
    big_room_rate: float = 0.5
    small_rooms: tuple[int, ...] = (2, 2, 3, 4, 5, 8, 10, 12, 15, 20, 30, 50)
    small_room_rate: float = 0.7
    churn_every: float = 2.0  # a visitor joins a small room this often, stays 20-60 s
    media_every: float = 12.0  # an upload (voice or image, alternating) then two downloads
    call_every: float = 20.0
    blip_every: float = 15.0
    slow_reader_pause: float = 3.0  # the slow reader reads one frame per pause


PROFILE = Profile()


def voice_note(seconds: float = 3.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(os.urandom(int(16000 * seconds)))
    return buffer.getvalue()


def photo() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((800, 600), 64).convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class Ledger:
    """Acked messages and who still owes a copy of them; duplicates; ack latencies."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[float, set]] = {}
        self.acked = self.duplicated = self.failed = 0
        self.latencies: list[tuple[float, float]] = []  # (ack time, ms)

    def ack(self, message_id: str, expected: list[Member], started: float) -> None:
        now = time.monotonic()
        self.acked += 1
        self.latencies.append((now, (now - started) * 1000))
        missing = {member for member in expected if message_id not in member.seen}
        if missing:
            self.pending[message_id] = (now, missing)

    def seen(self, member: Member, message_id: str) -> None:
        entry = self.pending.get(message_id)
        if entry is not None:
            entry[1].discard(member)
            if not entry[1]:
                del self.pending[message_id]

    def lost(self, *, older_than: float = LATE_SECONDS) -> int:
        now = time.monotonic()
        return sum(len(owing) for at, owing in self.pending.values() if now - at > older_than)

    def latencies_between(self, start: float, end: float) -> list[float]:
        return [ms for at, ms in self.latencies if start <= at < end]


class Room:
    def __init__(self, room_id: str) -> None:
        self.id, self.members = room_id, set()

    def listeners(self, started: float) -> list[Member]:
        """Who must get a message sent at `started`: joined before it, not leaving."""
        return [m for m in self.members if m.joined_at is not None and m.joined_at < started and m.leaving_at is None]

    def connected(self) -> list[Member]:
        return [m for m in self.members if m.sio.connected and m.joined_at is not None]


class Member:
    """One python-socketio client in one room. After a reconnect it rejoins and reads the
    newest history, which is how it recovers what it missed (the web client reloads)."""

    def __init__(self, soak: Soak, name: str, room: Room, url: str) -> None:
        self.soak, self.name, self.room, self.url = soak, name, room, url
        self.seen: set[str] = set()
        self.live: set[str] = set()
        self.joined_at: float | None = None
        self.leaving_at: float | None = None
        self.sio = self.new_client()

    def new_client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=3,
                                   randomization_factor=0.5)  # fmt: skip
        for event in ("receive_message", "receive_voice_message", "receive_image_message"):
            sio.on(event, self.on_message)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        return sio

    async def on_message(self, payload, *offset) -> None:
        message_id = payload.get("_id") if isinstance(payload, dict) else None
        if message_id is None:
            return
        if message_id in self.live:
            self.soak.ledger.duplicated += 1
        self.live.add(message_id)
        self.remember(message_id)

    def remember(self, message_id: str) -> None:
        if message_id not in self.seen:
            self.seen.add(message_id)
            self.soak.ledger.seen(self, message_id)

    async def on_connect(self) -> None:
        if self.joined_at is not None and self.leaving_at is None:  # a reconnect, not the first connect
            self.soak.reconnects += 1
            self.soak.spawn(self.rejoin())

    async def on_disconnect(self, reason=None) -> None:
        """A server DISCONNECT (a server shutting down, a process given up for dead) is not
        reconnected by Socket.IO clients: the user reloads the page, which this does."""
        if reason == socketio.AsyncClient.reason.SERVER_DISCONNECT and self.joined_at is not None and self.leaving_at is None:
            self.soak.reloads += 1
            self.soak.spawn(self.reload())

    async def reload(self) -> None:
        for _ in range(120):
            await asyncio.sleep(random.uniform(1, 3))
            if self.leaving_at is not None or self.soak.stopping.is_set():
                return
            self.sio = self.new_client()
            try:
                await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)  # on_connect rejoins
                return
            except Exception:
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()

    async def start(self) -> None:
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=30)
        await self.join()
        self.room.members.add(self)
        self.joined_at = time.monotonic()

    async def join(self) -> None:
        ack = await self.sio.call("join_room", {"roomId": self.room.id, "username": self.name}, timeout=30)
        if not (isinstance(ack, dict) and ack.get("ok")):
            raise RuntimeError(f"join_room refused: {ack}")

    async def rejoin(self) -> None:
        for _ in range(20):
            with contextlib.suppress(Exception):
                await self.join()
                await self.backfill()
                return
            await asyncio.sleep(1)

    async def backfill(self) -> None:
        response = await self.soak.http.get(f"{self.url}/api/room/{self.room.id}", params={"limit": 1000})
        response.raise_for_status()
        for message in response.json()["messages"]:
            self.remember(message["_id"])

    async def send(self, event: str, payload: dict) -> dict | None:
        """Emit a write and book its ack; None when it was not acked ok (down, refused, late)."""
        started = time.monotonic()
        expected = self.room.listeners(started)
        try:
            ack = await self.sio.call(event, {"roomId": self.room.id, "username": self.name, **payload},
                                      timeout=ACK_TIMEOUT)  # fmt: skip
        except Exception:
            ack = None
        if not (isinstance(ack, dict) and ack.get("ok")):
            self.soak.ledger.failed += 1
            return None
        if "message" in ack:
            self.remember(ack["message"]["_id"])
            self.soak.ledger.ack(ack["message"]["_id"], [m for m in expected if m is not self], started)
        return ack

    async def leave(self) -> None:
        """Stop being expected, keep reading a moment (copies in flight arrive), then go."""
        self.leaving_at = time.monotonic()
        await asyncio.sleep(3)
        self.room.members.discard(self)
        for message_id, (_, owing) in list(self.soak.ledger.pending.items()):
            if self in owing:  # still owed after 3 s connected: a real loss, kept in the count
                self.soak.left_owing += 1
                self.soak.ledger.seen(self, message_id)
        await self.sio.disconnect()

    async def blip(self) -> None:
        """The network under this client's websocket goes away: the client reconnects by itself."""
        ws = getattr(self.sio.eio, "ws", None)
        if ws is not None and self.sio.connected:
            self.soak.blips += 1
            await ws.close()


@dataclass
class Fault:
    at_fraction: float
    name: str
    at: float | None = None
    recovered: float | None = None


@dataclass
class Target:
    """One server process the soak talks to and samples (restartable in `--faults`)."""

    url: str
    pid: int | None
    restart: object = None  # async callable: SIGTERM and start again on the same port


@dataclass
class Soak:
    targets: list[Target]
    minutes: float
    out: Path
    sample_every: float
    profile: Profile = PROFILE
    faults: list[Fault] = field(default_factory=list)
    fault_actions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ledger = Ledger()
        self.rooms: list[Room] = []
        self.tasks: set[asyncio.Task] = set()
        self.blips = self.reconnects = self.reloads = self.left_owing = self.visitors = 0
        self.counters = {"uploads": 0, "upload_errors": 0, "downloads": 0, "download_errors": 0, "calls": 0,
                         "call_errors": 0, "slow_reader_frames": 0, "slow_reader_cuts": 0, "visit_errors": 0}  # fmt: skip
        self.names = itertools.count()
        self.client_lag_ms = 0.0
        self.samples: list[dict] = []
        self.stopping = asyncio.Event()

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def url_for(self, index: int) -> str:
        return self.targets[index % len(self.targets)].url

    def member(self, room: Room) -> Member:
        index = next(self.names)
        return Member(self, f"user{index}", room, self.url_for(index))

    async def populate(self, run_id: str) -> None:
        self.big = Room(f"soak-{run_id}-big")
        self.rooms = [Room(f"soak-{run_id}-r{i}-{size}") for i, size in enumerate(self.profile.small_rooms)]
        members = [self.member(self.big) for _ in range(self.profile.big_room_members)]
        members += [self.member(room) for room, size in zip(self.rooms, self.profile.small_rooms) for _ in range(size)]
        for start in range(0, len(members), 25):
            await asyncio.gather(*(m.start() for m in members[start : start + 25]))

    # --- the mix ------------------------------------------------------------------

    async def every(self, seconds: float, action) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(random.expovariate(1 / seconds))
            if not self.stopping.is_set():
                self.spawn(action())

    async def chat(self, room: Room) -> None:
        senders = room.connected()
        if senders:
            sender = random.choice(senders)
            await sender.send("send_message", {"message": f"{sender.name} says {random.random():.6f}"})

    async def visit(self) -> None:
        room = random.choice(self.rooms)
        visitor = self.member(room)
        try:
            await visitor.start()
            self.visitors += 1
            stay = time.monotonic() + random.uniform(20, 60)
            while time.monotonic() < stay and not self.stopping.is_set():
                await asyncio.sleep(random.uniform(3, 8))
                await visitor.send("send_message", {"message": f"visitor {visitor.name}"})
            await visitor.leave()
        except Exception:
            self.counters["visit_errors"] += 1
            with contextlib.suppress(Exception):
                room.members.discard(visitor)
                await visitor.sio.disconnect()

    async def media(self) -> None:
        room = random.choice(self.rooms)
        senders = room.connected()
        if not senders:
            return
        sender = random.choice(senders)
        kind = random.choice(("voice", "image"))
        body = self.voice if kind == "voice" else self.photo
        try:
            response = await self.http.post(f"{sender.url}/api/room/{room.id}/{kind}", data={"username": sender.name},
                                            files={kind: ("blob", body)})  # fmt: skip
            response.raise_for_status()
            self.counters["uploads"] += 1
        except httpx.HTTPError:
            self.counters["upload_errors"] += 1
            return
        path = response.json()["url"]
        ack = await sender.send(f"send_{kind}_message", {"url": path})
        if ack is None:
            return
        for suffix in ("", "?w=320" if kind == "image" else ""):
            try:
                download = await self.http.get(f"{sender.url}{path}{suffix}")
                download.raise_for_status()
                self.counters["downloads"] += 1
            except httpx.HTTPError:
                self.counters["download_errors"] += 1

    async def call(self) -> None:
        """Two members of a small room: join the call, offer/answer, some ICE, leave."""
        room = random.choice([r for r in self.rooms if len(r.members) >= 2])
        pair = random.sample(room.connected(), 2) if len(room.connected()) >= 2 else []
        if not pair:
            return
        caller, callee = pair
        base = {"roomId": room.id}
        try:
            for member in pair:
                await self.checked(member.sio.call("join_call", {**base, "username": member.name}, timeout=ACK_TIMEOUT))
            await self.checked(caller.sio.call("offer", {"to": callee.sio.get_sid(), "offer": {"sdp": "v=0"},
                                                         "username": caller.name}, timeout=ACK_TIMEOUT))  # fmt: skip
            await self.checked(callee.sio.call("answer", {"to": caller.sio.get_sid(), "answer": {"sdp": "v=0"},
                                                          "username": callee.name}, timeout=ACK_TIMEOUT))  # fmt: skip
            for i in range(4):
                await self.checked(caller.sio.call("ice_candidate", {"to": callee.sio.get_sid(),
                                                                     "candidate": {"candidate": f"c{i}"}}, timeout=ACK_TIMEOUT))  # fmt: skip
            await asyncio.sleep(5)
            for member in pair:
                await self.checked(member.sio.call("leave_call", {**base, "username": member.name}, timeout=ACK_TIMEOUT))
            self.counters["calls"] += 1
        except Exception:
            self.counters["call_errors"] += 1

    @staticmethod
    async def checked(call) -> dict:
        ack = await call
        if not (isinstance(ack, dict) and ack.get("ok")):
            raise RuntimeError(ack)
        return ack

    async def blip(self) -> None:
        members = [m for m in self.big.connected() + [m for r in self.rooms for m in r.connected()] if m.leaving_at is None]
        if members:
            await random.choice(members).blip()

    async def slow_reader(self) -> None:
        """A raw engine.io websocket in the big room that reads one frame per pause (TCP
        backpressure: websockets' small queue stops reading the socket); reconnects if cut."""
        ws_url = self.targets[0].url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        while not self.stopping.is_set():
            try:
                async with websockets.connect(ws_url, max_queue=2, max_size=None) as ws:
                    await ws.recv()  # engine.io open
                    await ws.send("40")
                    await ws.recv()  # socket.io connect
                    await ws.send("42" + json.dumps(["join_room", {"roomId": self.big.id, "username": "slow-reader"}]))
                    while not self.stopping.is_set():
                        frame = await ws.recv()
                        self.counters["slow_reader_frames"] += 1
                        if frame == "2":
                            await ws.send("3")
                        await asyncio.sleep(self.profile.slow_reader_pause)
            except Exception:
                if not self.stopping.is_set():
                    self.counters["slow_reader_cuts"] += 1
                    await asyncio.sleep(2)

    async def client_lag(self) -> None:
        while not self.stopping.is_set():
            asked = time.monotonic()
            await asyncio.sleep(0.5)
            self.client_lag_ms = max(time.monotonic() - asked - 0.5, 0.0) * 1000

    # --- faults ------------------------------------------------------------------

    async def fault_schedule(self, started: float, seconds: float) -> None:
        for fault in sorted(self.faults, key=lambda f: f.at_fraction):
            await asyncio.sleep(max(started + fault.at_fraction * seconds - time.monotonic(), 0))
            if self.stopping.is_set():
                return
            fault.at = time.monotonic() - started
            await self.fault_actions[fault.name]()
            fault.recovered = time.monotonic() - started

    # --- sampling ----------------------------------------------------------------

    async def server_figures(self) -> dict:
        figures = {"rss_mb": [], "fds": [], "tasks": [], "loop_lag_ms": [], "db_connections": []}
        for target in self.targets:
            figures["rss_mb"].append(round(proc_rss_mb(target.pid), 1) if target.pid and pid_alive(target.pid) else None)
            figures["fds"].append(open_fds(target.pid) if target.pid else None)
            scraped = await self.scrape(target.url)
            figures["tasks"].append(scraped.get("chillout_asyncio_tasks"))
            lag = scraped.get("chillout_event_loop_lag_seconds")
            figures["loop_lag_ms"].append(None if lag is None else round(lag * 1000, 1))
            figures["db_connections"].append(scraped.get("chillout_mongo_connections"))
            figures.setdefault("slow_consumer_cuts", 0)
            figures["slow_consumer_cuts"] += scraped.get("slow_consumer", 0)
        return figures

    async def scrape(self, url: str) -> dict:
        try:
            response = await self.http.get(f"{url}/metrics", timeout=5)
            response.raise_for_status()
        except httpx.HTTPError:
            return {}
        values = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "chillout_socket_disconnects_total" and sample.labels.get("reason") == "slow_consumer":
                    values["slow_consumer"] = sample.value
                elif not sample.labels:
                    values[sample.name] = sample.value
        return values

    async def sample(self, started: float, previous: float) -> dict:
        now = time.monotonic()
        window = self.ledger.latencies_between(previous, now)
        line = {
            "t": round(now - started, 1),
            "loadavg_1m": load_average(),
            **await self.server_figures(),
            "clients": sum(len(r.connected()) for r in [self.big, *self.rooms]),
            "acked": self.ledger.acked,
            "failed": self.ledger.failed,
            "lost": self.ledger.lost(),
            "duplicated": self.ledger.duplicated,
            "p50_ms": round(statistics.median(window), 1) if window else None,
            "p99_ms": round(percentile(window, 0.99), 1) if window else None,
            "client_lag_ms": round(self.client_lag_ms, 1),
            "blips": self.blips,
            "reconnects": self.reconnects,
            "reloads": self.reloads,
            **self.counters,
        }
        self.samples.append(line)
        with open(self.out / "soak.jsonl", "a") as jsonl:
            jsonl.write(json.dumps(line) + "\n")
        return line

    async def sampler(self, started: float) -> None:
        previous = started
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.sample_every)
            await self.sample(started, previous)
            previous = time.monotonic()

    # --- the run -----------------------------------------------------------------

    async def run(self) -> dict:
        self.voice, self.photo = voice_note(), photo()
        (self.out / "soak.jsonl").unlink(missing_ok=True)
        async with httpx.AsyncClient(timeout=30) as self.http:
            baseline = await self.idle_figures()
            started = self.started_at = time.monotonic()
            await self.populate(str(int(time.time())))
            seconds = self.minutes * 60
            p = self.profile
            loops = [self.sampler(started), self.client_lag(), self.slow_reader(),
                     self.every(1 / p.big_room_rate, lambda: self.chat(self.big)),
                     *(self.every(1 / p.small_room_rate, functools_partial(self.chat, room)) for room in self.rooms),
                     self.every(p.churn_every, self.visit), self.every(p.media_every, self.media),
                     self.every(p.call_every, self.call), self.every(p.blip_every, self.blip),
                     self.fault_schedule(started, seconds)]  # fmt: skip
            running = [self.spawn(loop) for loop in loops]
            await asyncio.sleep(max(started + seconds - time.monotonic(), 0))
            loaded = await self.server_figures()
            self.stopping.set()
            await asyncio.sleep(LATE_SECONDS)  # the last acks' copies arrive; visitors finish leaving
            lost = self.ledger.lost(older_than=0)
            end_sample = await self.sample(started, time.monotonic() - LATE_SECONDS)
            for task in running:
                task.cancel()
            await self.everyone_leaves()
            after = await self.settle(started, baseline)
        return self.summary(baseline, loaded, after, lost, end_sample)

    async def idle_figures(self) -> dict:
        """The figures of a warmed server at rest, the baseline the end is compared with.

        A fresh process starts some tasks at its first socket (engine.io's service task,
        PyMongo's periodic executors): one client visits first. A socket's engine.io ping task
        outlives its disconnect by up to the ping interval (it sleeps, then sees the socket
        closed), so the baseline is read after `WARM_IDLE_SECONDS`."""
        visitor = self.member(Room(f"soak-warmup-{time.time():.0f}"))
        await visitor.start()
        await visitor.send("send_message", {"message": "warm-up"})
        await visitor.sio.disconnect()
        await asyncio.sleep(WARM_IDLE_SECONDS)
        return await self.server_figures()

    async def settle(self, started: float, baseline: dict) -> dict:
        """After the clients left: sample until descriptors and tasks are back at the baseline
        (idle MongoDB connections close after `MONGO_MAX_IDLE_MS`, 120 s by default), at most
        `SETTLE_SECONDS`; the samples go on in the JSONL so that the picture shows the return."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            await asyncio.sleep(self.sample_every)
            await self.sample(started, time.monotonic())
            after = await self.server_figures()
            back = all((delta(after[key], baseline[key]) or 0) <= 0 for key in ("fds", "tasks"))
            if back or time.monotonic() > deadline:
                self.settle_seconds = round(time.monotonic() - deadline + SETTLE_SECONDS, 1)
                return after

    async def everyone_leaves(self) -> None:
        members = [m for r in [self.big, *self.rooms] for m in list(r.members)]
        for start in range(0, len(members), 50):
            await asyncio.gather(*(m.sio.disconnect() for m in members[start : start + 50]), return_exceptions=True)
        for task in list(self.tasks):
            task.cancel()

    def summary(self, baseline: dict, loaded: dict, after: dict, lost: int, end_sample: dict) -> dict:
        seconds = self.minutes * 60
        warm = [s for s in self.samples if s["t"] >= 0.2 * seconds]
        rss_warm = total(warm[0]["rss_mb"]) if warm else None
        rss_end = total(loaded["rss_mb"])
        tenth = seconds / 10
        first = [ms for at, ms in self.ledger.latencies if at - self.started_at < tenth]
        last = [ms for at, ms in self.ledger.latencies if at - self.started_at >= seconds - tenth]
        return {
            "minutes": self.minutes,
            "processes": len(self.targets),
            "acked": self.ledger.acked,
            "lost": lost,
            "duplicated": self.ledger.duplicated,
            "failed_sends": self.ledger.failed,
            "rss_start_mb": total(baseline["rss_mb"]),
            "rss_warm_mb": rss_warm,
            "rss_end_mb": rss_end,
            "rss_growth_pct": round((rss_end - rss_warm) * 100 / rss_warm, 2) if rss_warm and rss_end else None,
            "rss_after_mb": total(after["rss_mb"]),
            "fd_before": total(baseline["fds"]),
            "fd_loaded": total(loaded["fds"]),
            "fd_after": total(after["fds"]),
            "fd_delta": delta(after["fds"], baseline["fds"]),
            "db_connections_delta": delta(after["db_connections"], baseline["db_connections"]),
            "tasks_before": total(baseline["tasks"]),
            "tasks_loaded": total(loaded["tasks"]),
            "tasks_after": total(after["tasks"]),
            "tasks_delta": delta(after["tasks"], baseline["tasks"]),
            "settle_s": self.settle_seconds,
            "p50_ms": round(statistics.median([ms for _, ms in self.ledger.latencies]), 1) if self.ledger.latencies else None,
            "p99_ms_first": round(percentile(first, 0.99), 1) if first else None,
            "p99_ms_last": round(percentile(last, 0.99), 1) if last else None,
            "max_loop_lag_ms": max((total_max(s["loop_lag_ms"]) for s in self.samples), default=None),
            "max_client_lag_ms": max((s["client_lag_ms"] for s in self.samples), default=None),
            "clients_peak": max((s["clients"] for s in self.samples), default=0),
            "visitors": self.visitors,
            "blips": self.blips,
            "reconnects": self.reconnects,
            "reloads": self.reloads,
            "left_owing": self.left_owing,
            "slow_consumer_cuts": after.get("slow_consumer_cuts"),
            **self.counters,
            "faults": [{"name": f.name, "at_s": round(f.at, 1), "recovered_s": round(f.recovered, 1)}
                       for f in self.faults if f.at is not None],  # fmt: skip
            "loadavg_1m": load_average(),
            "loadavg_1m_samples": [min(s["loadavg_1m"] for s in self.samples), max(s["loadavg_1m"] for s in self.samples)],
        }


def functools_partial(function, *args):
    return lambda: function(*args)


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def total(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 1) if known and len(known) == len(values) else None


def total_max(values: list) -> float:
    return max((v for v in values if v is not None), default=0.0)


def delta(after: list, before: list) -> float | None:
    a, b = total(after), total(before)
    return None if a is None or b is None else round(a - b, 1)


# --- the processes ---------------------------------------------------------------


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


# --- the picture and the screen -------------------------------------------------------

PANELS = [
    ("rss_mb", "server RSS (MB)"),
    ("fds", "open descriptors"),
    ("tasks", "asyncio tasks"),
    ("loop_lag_ms", "event-loop lag (ms)"),
    ("db_connections", "MongoDB connections"),
    ("clients", "connected clients"),
    (("p50_ms", "p99_ms"), "ack latency (ms)"),
    (("acked", "failed", "lost", "duplicated"), "messages (cumulative)"),
]


def plot(samples: list[dict], faults: list[Fault], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(10, 2.1 * len(PANELS)), sharex=True)
    for axis, (keys, label) in zip(axes, PANELS):
        for key in (keys,) if isinstance(keys, str) else keys:
            series = [s.get(key) for s in samples]
            if any(isinstance(v, list) for v in series):  # one line per server process
                for index in range(max(len(v) for v in series if isinstance(v, list))):
                    axis.plot(minutes, [v[index] if isinstance(v, list) and len(v) > index else None for v in series],
                              label=f"{key} process {index + 1}" if len(samples[0].get(key) or []) > 1 else key)  # fmt: skip
            else:
                axis.plot(minutes, series, label=key)
        for fault in faults:
            if fault.at is not None:
                axis.axvline(fault.at / 60, color="red", linestyle=":", linewidth=1)
        axis.set_ylabel(label, fontsize=8)
        axis.grid(alpha=0.3)
        if not isinstance(keys, str) or any(isinstance(s.get(keys), list) and len(s[keys]) > 1 for s in samples[:1]):
            axis.legend(fontsize=7, loc="upper left")
    for fault in faults:
        if fault.at is not None:
            axes[0].annotate(fault.name, (fault.at / 60, 1), xycoords=("data", "axes fraction"), fontsize=7,
                             color="red", rotation=0, va="bottom")  # fmt: skip
    axes[-1].set_xlabel("minutes")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def screen(result: dict) -> str:
    lines = [
        f"soak: {result['minutes']} min, {result['processes']} process(es), peak {result['clients_peak']} clients, "
        f"load {result['loadavg_1m_samples'][0]}-{result['loadavg_1m_samples'][1]}",
        f"messages: {result['acked']} acked, {result['lost']} lost, {result['duplicated']} duplicated, "
        f"{result['failed_sends']} sends not acked",
        f"RSS: {result['rss_start_mb']} MB idle, {result['rss_warm_mb']} warm, {result['rss_end_mb']} end "
        f"({result['rss_growth_pct']} %), {result['rss_after_mb']} after the clients left",
        f"descriptors: {result['fd_before']} before, {result['fd_loaded']} loaded, {result['fd_after']} after "
        f"(delta {result['fd_delta']}; db connections delta {result['db_connections_delta']})",
        f"tasks: {result['tasks_before']} before, {result['tasks_loaded']} loaded, {result['tasks_after']} after "
        f"({result['settle_s']} s after the clients left)",
        f"ack latency: p50 {result['p50_ms']} ms; p99 {result['p99_ms_first']} ms first tenth, "
        f"{result['p99_ms_last']} ms last tenth; max loop lag {result['max_loop_lag_ms']} ms "
        f"(client {result['max_client_lag_ms']} ms)",
        f"mix: {result['visitors']} visitors, {result['uploads']} uploads ({result['upload_errors']} failed), "
        f"{result['downloads']} downloads ({result['download_errors']} failed), {result['calls']} calls "
        f"({result['call_errors']} failed), {result['blips']} blips, {result['reconnects']} reconnects, "
        f"{result['reloads']} reloads, slow reader {result['slow_reader_frames']} frames / "
        f"{result['slow_reader_cuts']} cuts",
    ]
    lines += [f"fault: {f['name']} at {f['at_s']} s, back at {f['recovered_s']} s" for f in result["faults"]]
    return "\n".join(lines)


# --- the command ------------------------------------------------------------------


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path("var/soak"))
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--url", help="a running server to soak (no server is started)")
    parser.add_argument("--pids", type=int, nargs="*", default=[], help="with --url: the server's pid(s), for RSS and fds")
    parser.add_argument("--faults", action="store_true", help="two processes on Redis; kill the database, restart Redis and a server")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of clients (0.1 for a smoke run)")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def scaled(profile: Profile, factor: float) -> Profile:
    if factor == 1.0:
        return profile
    return dataclasses.replace(
        profile, big_room_members=max(2, int(profile.big_room_members * factor)),
        small_rooms=tuple(max(2, int(size * factor)) for size in profile.small_rooms),
    )  # fmt: skip


async def soak_run(args: argparse.Namespace) -> tuple[Soak, dict]:
    random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    profile = scaled(PROFILE, args.scale)
    if args.url:
        pids = args.pids or [None]
        targets = [Target(url=args.url, pid=pid) for pid in pids[:1]]
        soak = Soak(targets, args.minutes, args.out, args.sample, profile)
        return soak, await soak.run()
    with tempfile.TemporaryDirectory(prefix="chillout-soak-") as workdir:
        processes = Processes(Path(workdir), servers=2 if args.faults else 1, env=SERVER_ENV)
        try:
            targets = await asyncio.to_thread(processes.start)
            soak = Soak(targets, args.minutes, args.out, args.sample, profile)
            if args.faults:
                soak.faults = [Fault(at, name) for at, name in FAULT_SCHEDULE]
                soak.fault_actions = fault_actions(processes, targets)
            return soak, await soak.run()
        finally:
            await asyncio.to_thread(processes.stop)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    soak, result = asyncio.run(soak_run(args))
    plot(soak.samples, soak.faults, args.out / "soak.png", title=f"Chillout soak: {screen(result).splitlines()[0]}")
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    print(screen(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
