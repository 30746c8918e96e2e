"""Run every load scenario of the performance issue and print one JSON line each.

    npm ci --prefix bench
    python bench/run.py [--server daphne|uvicorn] [--scenarios echo,chat-closed,...]
                        [--url http://host:port --pids SERVER,DB] [--find-max-rate] [--repeat N]

By default each scenario gets its own fresh embedded database and server process (rate
limits and the per-IP cap off: the load comes from one address), so that no scenario
inherits another's heap or backlog. With `--url` (and `--pids` for the CPU/RSS figures) the
scenarios run against a server you started yourself; `history` then needs `--mongo-uri`.

Scenarios (`bench/sio_load.mjs` unless noted): echo; chat-closed (100 clients in 10 rooms,
closed loop); chat-open (10 × 10 at 500 messages/s offered); history (Python: prefills
rooms directly in the database, then send→echo p50 in an empty room vs one with 10,000
messages, and GET timings: full history of 1,000, limit=50 at 10 and at 10,000); fanout
(500 members); connections (2,000 sockets joining rooms of 10, RSS per idle connection);
churn (connect, join, send, disconnect); media (8 clients, 1 and 10 MB up then down).
Every line has the server kind, the 1-minute load average, and per pid (server, database)
the CPU in cores over the measured phase and RSS from /proc.

`--find-max-rate` steps the offered rate of `chat-open` (10 rooms × 10 clients) up until
a step loses messages or its p99 passes 100 ms, and reports the highest rate that held.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
from bson import ObjectId
from pymongo import MongoClient

from _harness import BENCH, embedded_database, proc_cpu_seconds, proc_rss_mb, server_process

SERVERS = {
    "daphne": None,  # the harness default: daphne -v 0
    "uvicorn": [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
        "--no-access-log", "--ws-per-message-deflate", "false", "chillout_project.asgi:application",
    ],
}
BENCH_ENV = {"SEND_RATE": "0", "RELAY_RATE": "0", "MAX_CONNECTIONS_PER_IP": "0", "PURGE_INTERVAL_SECONDS": "0"}
DEFAULT_SCENARIOS = "echo,chat-closed,chat-open,history,fanout,connections,churn,media"
SCENARIO_ENV = {"chat-open": {"RATE": 500, "DURATION": 10}}
HISTORY_SIZES = {"h10": 10, "h1k": 1_000, "h10k": 10_000}
HISTORY_SPACING_SECONDS = 2.0  # prefilled history: one message every 2 s, ending now


def load_tool(scenario: str, url: str, pids: list[int], **env) -> dict:
    environment = {**os.environ, "SCENARIO": scenario, "URL": url, "PIDS": ",".join(map(str, pids))}
    environment.update({k: str(v) for k, v in env.items()})
    result = subprocess.run(
        ["node", str(BENCH / "sio_load.mjs")], env=environment, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        return {"scenario": scenario, "error": result.stderr.strip()[-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def history_prefill(mongo_uri: str, prefix: str) -> dict[str, str]:
    """Insert each room's messages directly (no server involved); returns label → roomId.

    The messages are spread over the past hours, as a real room's history is: their
    `_id`s carry their own time, which is what range-bounded reads rely on.
    """
    db = MongoClient(mongo_uri).get_default_database()
    now = time.time()
    rooms = {}
    for label, count in HISTORY_SIZES.items():
        room_id = rooms[label] = f"{prefix}-{label}"
        db.rooms.insert_one({"_id": ObjectId(), "roomId": room_id, "lastActivity": datetime.now(UTC), "__v": 0})
        docs = []
        for i in range(count):
            at = now - (count - i) * HISTORY_SPACING_SECONDS
            oid = ObjectId(struct.pack(">I", int(at)) + os.urandom(5) + struct.pack(">I", i)[1:])
            created = datetime.fromtimestamp(int(at * 1000) / 1000, tz=UTC)
            docs.append({"_id": oid, "roomId": room_id, "username": f"user{i % 7}", "message": f"message {i} " + "x" * 80,
                         "type": "text", "url": None, "createdAt": created})
        for start in range(0, len(docs), 1000):
            db.messages.insert_many(docs[start : start + 1000])
    return rooms


def timed_gets(url: str, path: str, pids: list[int], repeat: int) -> dict:
    with httpx.Client(base_url=url, timeout=120) as client:
        client.get(path)  # warm-up
        cpu0 = [proc_cpu_seconds(pid) for pid in pids]
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
        cpu = [round((proc_cpu_seconds(pid) - c) * 1000 / repeat, 2) for pid, c in zip(pids, cpu0)]
    return {"p50_ms": round(statistics.median(samples), 2), "p90_ms": round(sorted(samples)[int(len(samples) * 0.9)], 2),
            "messages": len(response.json()["messages"]), "bytes": len(response.content), "cpu_ms_per_get": cpu}


def history_scenario(url: str, pids: list[int], mongo_uri: str) -> dict:
    rooms = history_prefill(mongo_uri, f"hist-{int(time.time())}")
    figures = {"scenario": "history", "prefill": HISTORY_SIZES}
    figures["get_full_1k"] = timed_gets(url, f"/api/room/{rooms['h1k']}", pids, 30)
    figures["get_limit50_10"] = timed_gets(url, f"/api/room/{rooms['h10']}?limit=50", pids, 50)
    figures["get_limit50_10k"] = timed_gets(url, f"/api/room/{rooms['h10k']}?limit=50", pids, 50)
    figures["get_full_10k"] = timed_gets(url, f"/api/room/{rooms['h10k']}", pids, 5)
    # Last: the echo phase adds ~1,000 messages to the 10k room within the cache's lag window.
    figures["echo"] = load_tool("echo-pair", url, pids, EMPTY_ROOM=f"{rooms['h10k']}-empty", FULL_ROOM=rooms["h10k"], DURATION=10)
    figures["rss_mb"] = [round(proc_rss_mb(pid), 1) for pid in pids]
    return figures


def run_scenario(scenario: str, url: str, pids: list[int], mongo_uri: str | None) -> dict:
    if scenario == "history":
        if mongo_uri is None:
            return {"scenario": scenario, "error": "history needs --mongo-uri with --url"}
        return history_scenario(url, pids, mongo_uri)
    return load_tool(scenario, url, pids, **SCENARIO_ENV.get(scenario, {}))


@contextlib.contextmanager
def fresh_server(kind: str):
    """A new embedded database and a new server on it: (url, [server pid, db pid], uri)."""
    with embedded_database() as database:
        uri = f"{database.uri}/chillout_bench"
        with server_process(uri, command=SERVERS[kind], **BENCH_ENV) as (url, pid):
            yield url, [pid, database.pid], uri


def emit(server: str, figures: dict) -> None:
    print(json.dumps({"server": server, "loadavg_1m": os.getloadavg()[0], **figures}), flush=True)


def find_max_rate(server: str, url: str, pids: list[int], *, start: int, step: int, limit_ms: float) -> dict:
    best = None
    rate = start
    while True:
        figures = load_tool("chat-open", url, pids, RATE=rate, DURATION=10)
        emit(server, figures)
        held = "error" not in figures and figures["lost"] == 0 and (figures["p99_ms"] or 1e9) <= limit_ms
        if not held:
            return {"scenario": "max-sustained-rate", "p99_limit_ms": limit_ms, "highest_rate_held": best}
        best = rate
        rate += step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=sorted(SERVERS), default="daphne")
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    parser.add_argument("--find-max-rate", action="store_true")
    parser.add_argument("--rate-start", type=int, default=100)
    parser.add_argument("--rate-step", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--url", help="a running server (default: a fresh one per scenario)")
    parser.add_argument("--pids", default="", help="with --url: server pid,database pid")
    parser.add_argument("--mongo-uri", help="with --url: its database, for the history prefill")
    args = parser.parse_args()
    if not (BENCH / "node_modules" / "socket.io-client").is_dir():
        sys.exit("run `npm ci --prefix bench` first")
    scenarios = list(filter(None, args.scenarios.split(",")))
    label = args.server if args.url is None else "external"
    for _ in range(args.repeat):
        for scenario in scenarios:
            if args.url is not None:
                pids = [int(p) for p in args.pids.split(",") if p]
                emit(label, run_scenario(scenario, args.url, pids, args.mongo_uri))
                continue
            with fresh_server(args.server) as (url, pids, uri):
                emit(label, run_scenario(scenario, url, pids, uri))
        if args.find_max_rate:
            with fresh_server(args.server) as (url, pids, _):
                emit(label, find_max_rate(label, url, pids, start=args.rate_start, step=args.rate_step, limit_ms=100.0))


if __name__ == "__main__":
    main()
