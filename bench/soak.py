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
latencies). To say where an ack's time goes: the CPU share of each server, the database and
this driver; the server's own send_message time (mean, and the histogram bound of its p99);
and two probes of the database twice a second, an indexed read and a journaled insert (the
durable commit every ack waits for). At the end DIR/soak.png (one panel per figure over time, faults marked), a
one-screen summary, and as the last stdout line one JSON object (`minutes`, `acked`, `lost`,
`duplicated`, `rss_warm_mb`, `rss_end_mb`, `rss_growth_pct`, `fd_delta`, `p99_ms_first`,
`p99_ms_last`, ...).

Lost and duplicated: see `_soak_mix.Ledger`. The clients and their mix are in
`_soak_mix.py`, the processes and faults in `_soak_processes.py`, the picture and the
summary screen in `_soak_picture.py`.

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
import functools
import itertools
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import load_average, open_fds, percentile, pid_alive, proc_cpu_seconds, proc_rss_mb  # noqa: E402
from _soak_mix import ACK_TIMEOUT, LATE_SECONDS, PROFILE, Ledger, Member, Profile, Room, photo, voice_note  # noqa: E402
from _soak_picture import plot, screen  # noqa: E402
from _soak_processes import FAULT_SCHEDULE, Processes, Target, fault_actions, history_insert  # noqa: E402

SERVER_ENV = {"MAX_CONNECTIONS_PER_IP": 0, "UPLOAD_RATE": 0, "METRICS": "open"}  # every client comes from 127.0.0.1
PREFILL_VOICE_SECONDS = 200  # a 3.2 MB WAV, under MEDIA_CACHE_FILE_BYTES (4 MiB)
WARM_IDLE_SECONDS = 30.0  # past engine.io's ping interval (25 s)
WARM_FRACTION = 0.2  # RSS growth is measured from this share of the run (caches filled)
SEND_DURATION = {"chillout_socket_event_duration_seconds_sum": "send_seconds",
                 "chillout_socket_event_duration_seconds_count": "send_count"}  # fmt: skip
SEND_BUCKETS = "chillout_socket_event_duration_seconds_bucket"
SETTLE_SECONDS = 180.0  # MONGO_MAX_IDLE_MS (120 s) and the driver's next pool check


@dataclass
class Fault:
    at_fraction: float
    name: str
    at: float | None = None
    recovered: float | None = None

@dataclass
class Soak:
    targets: list[Target]
    minutes: float
    out: Path
    sample_every: float
    profile: Profile = PROFILE
    warm_idle: float = WARM_IDLE_SECONDS
    settle_max: float = SETTLE_SECONDS
    tracemalloc_dir: Path | None = None
    mongo_uri: str | None = None  # for the history prefill (none with --url)
    database_pid: object = None  # callable -> the embedded database's pid now (none with --url)
    faults: list[Fault] = field(default_factory=list)
    fault_actions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ledger = Ledger()
        self.rooms: list[Room] = []
        self.tasks: set[asyncio.Task] = set()
        self.blips = self.reconnects = self.reloads = self.visitors = 0
        self.counters = {"uploads": 0, "upload_errors": 0, "downloads": 0, "download_errors": 0, "calls": 0,
                         "call_errors": 0, "slow_reader_frames": 0, "slow_reader_cuts": 0, "visit_errors": 0}  # fmt: skip
        self.names = itertools.count()
        self.errors: dict[str, str] = {}  # the first error of each kind, for the summary
        self.client_lag_ms = 0.0
        self.samples: list[dict] = []
        self.cpu_seen: dict[object, tuple[float, float]] = {}  # pid -> (wall, CPU seconds) at the last sample
        self.send_buckets_seen: dict[str, dict[float, float]] = {}  # url -> cumulative send_message buckets
        self.sends_seen: dict[str, tuple[float, float]] = {}  # url -> send_message (seconds, count) so far
        self.db_probes: dict[str, list[tuple[float, float | None]]] = {"read": [], "commit": []}  # (when, ms or None)
        self.stopping = asyncio.Event()

    def failure(self, kind: str, error: BaseException) -> None:
        self.counters[f"{kind}_errors"] += 1
        self.errors.setdefault(kind, repr(error)[:200])

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

    async def populate(self) -> None:
        members = [self.member(self.big) for _ in range(self.profile.big_room_members)]
        members += [self.member(room) for room, size in zip(self.rooms, self.profile.small_rooms) for _ in range(size)]
        for start in range(0, len(members), 25):
            await asyncio.gather(*(m.start() for m in members[start : start + 25]))

    async def prefill(self) -> None:
        """Fill the bounded caches to their caps before the clock starts, so that what grows
        after the warm-up is not a cache filling as designed: every room gets a history of
        `prefill_messages` (the history cache's per-room cap), read once on each process, and
        voice notes beyond `MEDIA_CACHE_BYTES` (`prefill_media_bytes`) are uploaded and fetched once."""
        rooms = [self.big, *self.rooms]
        if self.mongo_uri:
            await asyncio.to_thread(history_insert, self.mongo_uri, [room.id for room in rooms], self.profile.prefill_messages)
        for target in self.targets:
            for room in rooms:
                (await self.http.get(f"{target.url}/api/room/{room.id}", params={"limit": 1000})).raise_for_status()
        note = voice_note(seconds=PREFILL_VOICE_SECONDS)
        for index in range(math.ceil(self.profile.prefill_media_bytes / len(note))):
            url = self.targets[index % len(self.targets)].url
            upload = await self.http.post(f"{url}/api/room/{self.big.id}/voice", data={"username": "prefill"},
                                          files={"voice": ("blob", note)})  # fmt: skip
            upload.raise_for_status()
            (await self.http.get(f"{url}{upload.json()['url']}")).raise_for_status()

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
            await visitor.backfill()  # the room page reads the history on mount, then joins
            await visitor.start()
            self.visitors += 1
            stay = time.monotonic() + random.uniform(20, 60)
            while time.monotonic() < stay and not self.stopping.is_set():
                await asyncio.sleep(random.uniform(3, 8))
                await visitor.send("send_message", {"message": f"visitor {visitor.name}"})
            await visitor.leave()
        except Exception as error:
            self.failure("visit", error)
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
        except httpx.HTTPError as error:
            self.failure("upload", error)
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
            except httpx.HTTPError as error:
                self.failure("download", error)

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
        except Exception as error:
            self.failure("call", error)

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

    async def db_probe(self) -> None:
        """Twice a second, time a one-document indexed read of the database and a journaled
        one-document insert (the write concern a message is acked after): how long a query
        waits behind whatever the database is doing, and what a durable commit costs on this
        disk. An ack cannot be faster than the commit under it."""
        if not self.mongo_uri:
            return
        from pymongo import AsyncMongoClient, WriteConcern

        client = AsyncMongoClient(self.mongo_uri, serverSelectionTimeoutMS=2000, timeoutMS=5000)
        db = client.get_default_database()
        probes = db.get_collection("soak_probe", write_concern=WriteConcern(j=True))
        try:
            while not self.stopping.is_set():
                await self.db_probe_once("read", lambda: db.rooms.find_one({"roomId": self.big.id}))
                await self.db_probe_once("commit", lambda: probes.insert_one({"at": time.time()}))
                await asyncio.sleep(0.5)
        finally:
            await client.close()

    async def db_probe_once(self, kind: str, operation) -> None:
        asked = time.monotonic()
        try:
            await operation()
            self.db_probes[kind].append((asked, (time.monotonic() - asked) * 1000))
        except Exception:
            self.db_probes[kind].append((asked, None))

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
        figures = {"rss_mb": [], "fds": [], "tasks": [], "loop_lag_ms": [], "db_connections": [], "py_blocks_k": []}
        for target in self.targets:
            figures["rss_mb"].append(round(proc_rss_mb(target.pid), 1) if target.pid and pid_alive(target.pid) else None)
            figures["fds"].append(open_fds(target.pid) if target.pid else None)
            scraped = await self.scrape(target.url)
            figures["tasks"].append(scraped.get("chillout_asyncio_tasks"))
            lag = scraped.get("chillout_event_loop_lag_seconds")
            figures["loop_lag_ms"].append(None if lag is None else round(lag * 1000, 1))
            figures["db_connections"].append(scraped.get("chillout_mongo_connections"))
            blocks = scraped.get("chillout_python_allocated_blocks")
            figures["py_blocks_k"].append(None if blocks is None else round(blocks / 1000, 1))
            figures.setdefault("slow_consumer_cuts", 0)
            figures["slow_consumer_cuts"] += scraped.get("slow_consumer", 0)
            figures.setdefault("cpu_pct", []).append(self.cpu_pct(target.pid))
            figures.setdefault("send_ms_mean", []).append(self.send_ms_mean(target.url, scraped))
            figures.setdefault("send_ms_p99_under", []).append(self.send_p99_bound(target.url, scraped))
        database = self.database_pid() if self.database_pid else None
        figures["db_cpu_pct"] = self.cpu_pct(database)
        figures["db_rss_mb"] = round(proc_rss_mb(database), 1) if database and pid_alive(database) else None
        figures["driver_cpu_pct"] = self.cpu_pct(os.getpid())
        return figures

    def cpu_pct(self, pid: int | None) -> float | None:
        """The share of one core `pid` used since the last call for it (None the first time)."""
        try:
            cpu = proc_cpu_seconds(pid) if pid else None
        except OSError:  # gone (a fault's restart)
            cpu = None
        if cpu is None:
            return None
        now, (then, before) = time.monotonic(), self.cpu_seen.get(pid, (None, None))
        self.cpu_seen[pid] = (now, cpu)
        return None if then is None or now <= then else round((cpu - before) * 100 / (now - then), 1)

    def send_p99_bound(self, url: str, scraped: dict) -> float | None:
        """The histogram bucket bound under which 99 % of this interval's send_message
        handlings fell (ms): the server's own p99, to a bucket's resolution."""
        buckets = scraped.get("send_buckets")
        if not buckets:
            return None
        before = self.send_buckets_seen.get(url, {})
        self.send_buckets_seen[url] = buckets
        if buckets.get(math.inf, 0.0) < before.get(math.inf, 0.0):  # a restarted server counts from 0
            before = {}
        counts = {le: count - before.get(le, 0.0) for le, count in sorted(buckets.items())}
        total_count = counts.get(math.inf, 0.0)
        if total_count <= 0:
            return None
        bound = next(le for le, count in counts.items() if count >= 0.99 * total_count)
        return None if bound == math.inf else round(bound * 1000, 1)

    def send_ms_mean(self, url: str, scraped: dict) -> float | None:
        """The server's own mean time to handle a send_message since the last scrape
        (`chillout_socket_event_duration_seconds`): ack latency less the network and this client."""
        seconds, count = scraped.get("send_seconds"), scraped.get("send_count")
        if seconds is None or count is None:
            return None
        before_seconds, before_count = self.sends_seen.get(url, (0.0, 0.0))
        self.sends_seen[url] = (seconds, count)
        if count <= before_count:
            return None
        return round((seconds - before_seconds) * 1000 / (count - before_count), 1)

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
                elif sample.name in SEND_DURATION and sample.labels.get("event") == "send_message":
                    values[SEND_DURATION[sample.name]] = sample.value
                elif sample.name == SEND_BUCKETS and sample.labels.get("event") == "send_message":
                    values.setdefault("send_buckets", {})[float(sample.labels["le"])] = sample.value
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
            **self.db_probe_figures(previous, now),
            "blips": self.blips,
            "reconnects": self.reconnects,
            "reloads": self.reloads,
            **self.counters,
        }
        self.samples.append(line)
        with open(self.out / "soak.jsonl", "a") as jsonl:
            jsonl.write(json.dumps(line) + "\n")
        return line

    def db_probe_figures(self, start: float, end: float) -> dict:
        figures = {}
        for kind, probes in self.db_probes.items():
            answered = [ms for at, ms in probes if start <= at < end and ms is not None]
            figures[f"db_{kind}_p50_ms"] = round(statistics.median(answered), 1) if answered else None
            figures[f"db_{kind}_max_ms"] = round(max(answered), 1) if answered else None
        return figures

    def db_probe_p99(self, kind: str, *, since: float, until: float) -> float | None:
        answered = [ms for at, ms in self.db_probes[kind] if ms is not None and since <= at - self.started_at < until]
        return round(percentile(answered, 0.99), 1) if answered else None

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
            run_id = str(int(time.time()))
            self.big = Room(f"soak-{run_id}-big")
            self.rooms = [Room(f"soak-{run_id}-r{i}-{size}") for i, size in enumerate(self.profile.small_rooms)]
            await self.prefill()
            started = self.started_at = time.monotonic()
            await self.populate()
            seconds = self.minutes * 60
            p = self.profile
            loops = [self.sampler(started), self.client_lag(), self.db_probe(), self.slow_reader(),
                     self.every(1 / p.big_room_rate, functools.partial(self.chat, self.big)),
                     *(self.every(1 / p.small_room_rate, functools.partial(self.chat, room)) for room in self.rooms),
                     self.every(p.churn_every, self.visit), self.every(p.media_every, self.media),
                     self.every(p.call_every, self.call), self.every(p.blip_every, self.blip),
                     self.fault_schedule(started, seconds)]  # fmt: skip
            if self.tracemalloc_dir:
                loops.append(self.snapshot_after(started + WARM_FRACTION * seconds))
            running = [self.spawn(loop) for loop in loops]
            await asyncio.sleep(max(started + seconds - time.monotonic(), 0))
            loaded = await self.server_figures()
            if self.tracemalloc_dir:
                await self.snapshot_after(time.monotonic())
            self.stopping.set()
            await asyncio.sleep(LATE_SECONDS)  # the last acks' copies arrive; visitors finish leaving
            lost = self.ledger.lost(older_than=0)
            self.write_lost(started)
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
        closed), so the baseline is read `warm_idle` seconds later."""
        visitor = self.member(Room(f"soak-warmup-{time.time():.0f}"))
        await visitor.start()
        await visitor.send("send_message", {"message": "warm-up"})
        await visitor.sio.disconnect()
        await asyncio.sleep(self.warm_idle)
        return await self.server_figures()

    async def settle(self, started: float, baseline: dict) -> dict:
        """After the clients left: sample until descriptors and tasks are back at the baseline
        (idle MongoDB connections close after `MONGO_MAX_IDLE_MS`, 120 s by default), at most
        `settle_max`; the samples go on in the JSONL so that the picture shows the return."""
        deadline = time.monotonic() + self.settle_max
        while True:
            await asyncio.sleep(self.sample_every)
            await self.sample(started, time.monotonic())
            after = await self.server_figures()
            back = all((delta(after[key], baseline[key]) or 0) <= 0 for key in ("fds", "tasks"))
            if back or time.monotonic() > deadline:
                self.settle_seconds = round(time.monotonic() - deadline + self.settle_max, 1)
                return after

    async def snapshot_after(self, moment: float) -> None:
        """Have the first server write a tracemalloc snapshot (`--tracemalloc`) at `moment`."""
        await asyncio.sleep(max(moment - time.monotonic(), 0))
        pid = self.targets[0].pid
        written = len(list(self.tracemalloc_dir.glob(f"snapshot-{pid}-*.pickle")))
        os.kill(pid, signal.SIGUSR2)
        while len(list(self.tracemalloc_dir.glob(f"snapshot-{pid}-*.pickle"))) == written:
            await asyncio.sleep(0.5)

    def write_lost(self, started: float) -> None:
        """DIR/lost.json: each acknowledged message still owed at the end, to whom, and that
        member's state (where to start looking)."""
        owed = [
            {"message": message_id, "sent_at_s": round(sent - started, 1), "acked_at_s": round(at - started, 1),
             "owed_to": [{"name": m.name, "url": m.url, "connected": m.sio.connected, "room": m.room.id,
                          "joined_at_s": round(m.joined_at - started, 1) if m.joined_at else None,
                          "leaving_at_s": round(m.leaving_at - started, 1) if m.leaving_at else None,
                          "rejoined_at_s": [round(t - started, 1) for t in m.rejoins],
                          "history": [[round(t - started, 1), what] for t, what in m.history]} for m in owing]}
            for message_id, (at, owing, sent) in self.ledger.pending.items()
        ]  # fmt: skip
        (self.out / "lost.json").write_text(json.dumps(owed, indent=1) + "\n")

    async def everyone_leaves(self) -> None:
        members = [m for r in [self.big, *self.rooms] for m in list(r.members)]
        for start in range(0, len(members), 50):
            await asyncio.gather(*(m.sio.disconnect() for m in members[start : start + 50]), return_exceptions=True)
        for task in list(self.tasks):
            task.cancel()

    def summary(self, baseline: dict, loaded: dict, after: dict, lost: int, end_sample: dict) -> dict:
        seconds = self.minutes * 60
        warm = [s for s in self.samples if s["t"] >= WARM_FRACTION * seconds]
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
            "py_blocks_k_warm": total(warm[0]["py_blocks_k"]) if warm else None,
            "py_blocks_k_end": total(loaded["py_blocks_k"]),
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
            "send_ms_first": tenth_median(self.samples, "send_ms_mean", until=tenth),
            "send_ms_last": tenth_median(self.samples, "send_ms_mean", since=seconds - tenth, until=seconds),
            "db_commit_p99_ms_first": self.db_probe_p99("commit", since=0, until=tenth),
            "db_commit_p99_ms_last": self.db_probe_p99("commit", since=seconds - tenth, until=seconds),
            "db_cpu_pct_first": tenth_median(self.samples, "db_cpu_pct", until=tenth),
            "db_cpu_pct_last": tenth_median(self.samples, "db_cpu_pct", since=seconds - tenth, until=seconds),
            "max_loop_lag_ms": max((total_max(s["loop_lag_ms"]) for s in self.samples), default=None),
            "max_client_lag_ms": max((s["client_lag_ms"] for s in self.samples), default=None),
            "clients_peak": max((s["clients"] for s in self.samples), default=0),
            "visitors": self.visitors,
            "blips": self.blips,
            "reconnects": self.reconnects,
            "reloads": self.reloads,
            "slow_consumer_cuts": after.get("slow_consumer_cuts"),
            **self.counters,
            "first_errors": self.errors,
            "faults": [{"name": f.name, "at_s": round(f.at, 1), "recovered_s": round(f.recovered, 1)}
                       for f in self.faults if f.at is not None],  # fmt: skip
            "loadavg_1m": load_average(),
            "loadavg_1m_samples": [min(s["loadavg_1m"] for s in self.samples), max(s["loadavg_1m"] for s in self.samples)],
        }

def total(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 1) if known and len(known) == len(values) else None


def tenth_median(samples: list[dict], key: str, *, since: float = 0.0, until: float) -> float | None:
    """The median over the samples taken in [since, until) of `key` (a per-process list: its
    mean), the server's side of `p99_ms_first`/`p99_ms_last`."""
    values = []
    for sample in samples:
        value = sample.get(key)
        if isinstance(value, list):
            known = [v for v in value if v is not None]
            value = statistics.mean(known) if known else None
        if value is not None and since <= sample["t"] < until:
            values.append(value)
    return round(statistics.median(values), 1) if values else None


def total_max(values: list) -> float:
    return max((v for v in values if v is not None), default=0.0)


def delta(after: list, before: list) -> float | None:
    a, b = total(after), total(before)
    return None if a is None or b is None else round(a - b, 1)

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
    parser.add_argument("--tracemalloc", action="store_true",
                        help="the server traces allocations (slower); the sites that grew most are printed")  # fmt: skip
    parser.add_argument("--warm-idle", type=float, default=WARM_IDLE_SECONDS, help="seconds at rest before the baseline")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS, help="at most this long for the figures to return")
    return parser.parse_args(argv)


def scaled(profile: Profile, factor: float) -> Profile:
    if factor == 1.0:
        return profile
    return dataclasses.replace(
        profile, big_room_members=max(2, int(profile.big_room_members * factor)),
        small_rooms=tuple(max(2, int(size * factor)) for size in profile.small_rooms),
        prefill_messages=int(profile.prefill_messages * factor), prefill_media_bytes=int(profile.prefill_media_bytes * factor),
    )  # fmt: skip


def soak_for(args: argparse.Namespace, targets: list[Target]) -> Soak:
    return Soak(targets, args.minutes, args.out, args.sample, scaled(PROFILE, args.scale), warm_idle=args.warm_idle,
                settle_max=args.settle, tracemalloc_dir=tracemalloc_dir(args))  # fmt: skip


def tracemalloc_dir(args: argparse.Namespace) -> Path | None:
    return args.out / "tracemalloc" if args.tracemalloc else None


def server_env(args: argparse.Namespace) -> dict:
    directory = tracemalloc_dir(args)
    if directory is None:
        return SERVER_ENV
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("snapshot-*.pickle"):
        old.unlink()
    hook = Path(__file__).resolve().parent / "tracemalloc_hook"
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    return {**SERVER_ENV, "PYTHONPATH": path, "CHILLOUT_TRACEMALLOC_DIR": directory}


def tracemalloc_growth(directory: Path, pid: int, *, top: int = 15) -> list[str]:
    """The allocation sites that grew most from the warm-up snapshot to the end one."""
    import tracemalloc

    first, last = (tracemalloc.Snapshot.load(str(directory / f"snapshot-{pid}-{n}.pickle")) for n in (1, 2))
    return [str(stat) for stat in last.compare_to(first, "lineno")[:top]]


async def soak_run(args: argparse.Namespace) -> tuple[Soak, dict]:
    random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        pids = args.pids or [None]
        targets = [Target(url=args.url, pid=pid) for pid in pids[:1]]
        soak = soak_for(args, targets)
        return soak, await soak.run()
    with tempfile.TemporaryDirectory(prefix="chillout-soak-") as workdir:
        processes = Processes(Path(workdir), servers=2 if args.faults else 1, env=server_env(args))
        try:
            targets = await asyncio.to_thread(processes.start)
            soak = soak_for(args, targets)
            soak.mongo_uri = processes.mongo_uri
            soak.database_pid = lambda: processes.database.value
            if args.faults:
                soak.faults = [Fault(at, name) for at, name in FAULT_SCHEDULE]
                soak.fault_actions = fault_actions(processes, targets)
            return soak, await soak.run()
        finally:
            await asyncio.to_thread(processes.stop)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: the processes it started are stopped
    soak, result = asyncio.run(soak_run(args))
    plot(soak.samples, soak.faults, args.out / "soak.png", title=f"Chillout soak: {screen(result).splitlines()[0]}")
    if args.tracemalloc:
        growth = tracemalloc_growth(tracemalloc_dir(args), soak.targets[0].pid)
        (args.out / "tracemalloc.txt").write_text("\n".join(growth) + "\n")
        print("allocation sites that grew most (warm-up to end):", *growth, sep="\n  ")
        result["tracemalloc_top"] = growth[:5]
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    print(screen(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
