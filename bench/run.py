"""Run every load scenario of the performance issue and print one JSON line each.

    npm ci --prefix bench
    python bench/run.py [--server daphne|uvicorn|granian|original[,...]] [--scenarios echo,chat-closed,...]
                        [--repeat N] [--original-dir DIR] [--checkout DIR] [--find-max-rate]
                        [--tunings on,off,-direct_write,...]
                        [--url http://host:port --pids SERVER,DB [--protocol original]]

By default each scenario gets its own fresh embedded database and server process (rate
limits and the per-IP cap off: the load comes from one address), so that no scenario
inherits another's heap or backlog. With `--url` (and `--pids` for the CPU/RSS figures) the
scenarios run against a server you started yourself; `history` then needs `--mongo-uri`.

`--server` takes a comma-separated list; the order of the runs is repetition, then
server, then scenario, so that a change in the machine's load hits every server alike.
`original` is the original Node server, built outside this repository (`npm ci && npm
run build` in a checkout of it; `--original-dir`, default `$ORIGINAL_DIR`), run as `node
dist/server.js` with `PORT` and `MONGO_URI`, on its own fresh embedded database like the
others; the load tool speaks to it without acks (`PROTOCOL=original` in sio_load.mjs) and
the history prefill embeds the messages in the room document, as the original stores them.
`granian`'s figures are its worker process's (granian's supervisor is idle).
`--checkout DIR` serves Chillout from another checkout with this bench (a "before" tree:
alternate runs with and without it for a before/after in one sitting).
`--tunings on,off,...` runs Chillout once per `LIBRARY_TUNINGS` value (interleaved within
each server, each line says which): what each library tuning buys, measured in one sitting
(docs/tunings.md).

With `--repeat N` (N > 1), after all runs one `"summary": "median"` line per server and
scenario: the median of every numeric figure over the runs without an error, with the
load averages seen (`loadavg_1m_runs`).

Scenarios (`bench/sio_load.mjs` unless noted): echo; chat-closed (100 clients in 10 rooms,
closed loop); chat-open (10 × 10 at 500 messages/s offered); history (Python: prefills
rooms directly in the database, then send→echo p50 in an empty room vs one with 10,000
messages, and GET timings: full history of 1,000, limit=50 at 10 and at 10,000); history-fresh (1,000 messages sent through the server by one socket, 20 in flight, then
at once 30 full GETs of that room; and GETs of an almost empty room); fanout
(500 members); connections (2,000 sockets joining rooms of 10, RSS per idle connection); rooms (the same,
one socket per room: with connections, the memory per room for bench/capacity.py);
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
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bson import ObjectId
from pymongo import MongoClient

from _harness import (
    BENCH, SERVERS, embedded_database, history_docs, load_average, median_figures, proc_cpu_seconds, proc_rss_mb,
    server_process,
)

BENCH_ENV = {"SEND_RATE": "0", "RELAY_RATE": "0", "UPLOAD_RATE": "0", "MAX_CONNECTIONS_PER_IP": "0",
             "PURGE_INTERVAL_SECONDS": "0"}  # fmt: skip
DEFAULT_SCENARIOS = "echo,chat-closed,chat-open,history,history-fresh,fanout,fill,connections,rooms,churn,media"
SCENARIO_ENV = {"chat-open": {"RATE": 500, "DURATION": 10}, "rooms": {"SCENARIO": "connections", "CONNECTIONS_PER_ROOM": 1, "IDLE_SECONDS": 60}}
HISTORY_SIZES = {"h10": 10, "h1k": 1_000, "h10k": 10_000}
HISTORY_SPACING_SECONDS = 2.0  # prefilled history: one message every 2 s, ending now
FRESH_MESSAGES = 1_000  # history-fresh: messages sent through the server just before the GETs


def load_tool(scenario: str, url: str, pids: list[int], **env) -> dict:
    environment = {**os.environ, "SCENARIO": scenario, "URL": url, "PIDS": ",".join(map(str, pids)),
                   "PROTOCOL": PROTOCOL["name"]}  # fmt: skip
    environment.update({k: str(v) for k, v in env.items()})
    result = subprocess.run(
        ["node", str(BENCH / "sio_load.mjs")], env=environment, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        return {"scenario": scenario, "error": result.stderr.strip()[-500:]}
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "scenario": scenario}


# The load tool's protocol (sio_load.mjs PROTOCOL): "original" for the original Node server.
PROTOCOL = {"name": "chillout"}


def history_prefill(mongo_uri: str, prefix: str) -> dict[str, str]:
    """Insert each room's messages directly (no server involved); returns label → roomId.

    The messages are spread over the past hours, as a real room's history is: their
    `_id`s carry their own time, which is what range-bounded reads rely on. For the
    original, they go into the room document's `messages` array, where it keeps them.
    """
    db = MongoClient(mongo_uri).get_default_database()
    now = time.time()
    rooms = {}
    for label, count in HISTORY_SIZES.items():
        room_id = rooms[label] = f"{prefix}-{label}"
        room = {"_id": ObjectId(), "roomId": room_id, "lastActivity": datetime.now(UTC), "__v": 0}
        docs = history_docs(room_id, count, spacing=HISTORY_SPACING_SECONDS, now=now)
        if PROTOCOL["name"] == "original":
            db.rooms.insert_one({**room, "messages": [{k: v for k, v in d.items() if k != "roomId"} for d in docs]})
            continue
        db.rooms.insert_one(room)
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


def history_fresh_scenario(url: str, pids: list[int]) -> dict:
    """GETs right after a burst of messages sent through the server (all of them younger than
    the history cache's lag window), and GETs of an almost empty room."""
    prefix = f"fresh-{int(time.time())}"
    figures = {"scenario": "history-fresh", "burst": FRESH_MESSAGES}
    figures["get_small"] = timed_gets(url, f"/api/room/{prefix}-small", pids, 200)
    room = f"{prefix}-busy"
    httpx.get(f"{url}/api/room/{room}", timeout=30).raise_for_status()  # a client opened the room
    figures["send"] = load_tool("burst", url, pids, ROOM=room, BURST=FRESH_MESSAGES)
    sent = time.monotonic()
    figures["get_fresh_1k"] = timed_gets(url, f"/api/room/{room}", pids, 30)
    figures["get_fresh_1k"]["seconds_after_burst"] = round(time.monotonic() - sent, 2)
    figures["rss_mb"] = [round(proc_rss_mb(pid), 1) for pid in pids]
    return figures


def run_scenario(scenario: str, url: str, pids: list[int], mongo_uri: str | None) -> dict:
    if scenario == "history-fresh":
        return history_fresh_scenario(url, pids)
    if scenario == "history":
        if mongo_uri is None:
            return {"scenario": scenario, "error": "history needs --mongo-uri with --url"}
        return history_scenario(url, pids, mongo_uri)
    return load_tool(scenario, url, pids, **SCENARIO_ENV.get(scenario, {}))


@contextlib.contextmanager
def fresh_server(kind: str, original_dir: str | None, checkout: str | None = None, tunings: str | None = None):
    """A new embedded database and a new server on it: (url, [server pid, db pid], uri).
    `checkout`: run Chillout from that directory instead of this one; `tunings`: its
    `LIBRARY_TUNINGS` (default: the server's default, all on)."""
    options = dict(SERVERS[kind])
    env = dict(BENCH_ENV, **({"LIBRARY_TUNINGS": tunings} if tunings is not None and kind != "original" else {}))
    if kind == "original":
        options["cwd"] = original_dir
    elif checkout:
        options["cwd"] = Path(checkout)
    PROTOCOL["name"] = "original" if kind == "original" else "chillout"
    with embedded_database() as database:
        uri = f"{database.uri}/chillout_bench"
        with server_process(uri, **options, **env) as (url, pid):
            yield url, [pid, database.pid], uri


def emit(server: str, figures: dict) -> dict:
    line = {"server": server, "loadavg_1m": load_average(), **figures}
    print(json.dumps(line), flush=True)
    return line


def emit_medians(lines: list[dict]) -> None:
    """One summary line per (server, tunings, scenario): medians over the runs without an error."""
    groups: dict[tuple[str, str | None, str], list[dict]] = {}
    for line in lines:
        groups.setdefault((line["server"], line.get("tunings"), line.get("scenario", "?")), []).append(line)
    for (server, tunings, scenario), runs in groups.items():
        good = [run for run in runs if "error" not in run]
        figures = median_figures(good) if good else {}
        figures.pop("loadavg_1m", None)
        figures.pop("tunings", None)
        selection = {} if tunings is None else {"tunings": tunings}
        print(json.dumps({"summary": "median", "server": server, **selection, "scenario": scenario, "runs": len(good),
                          "errors": len(runs) - len(good), "loadavg_1m_runs": [run["loadavg_1m"] for run in runs],
                          **{k: v for k, v in figures.items() if k not in ("server", "scenario")}}), flush=True)  # fmt: skip


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


def tunings_values(option: str | None, server: str) -> list[str | None]:
    """The `LIBRARY_TUNINGS` values to run `server` with (+ and - selections split on `,`
    would be ambiguous: each value is one name or on/off; None: the server's default)."""
    if option is None or server == "original":
        return [None]
    return [value.strip() for value in option.split(",") if value.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="daphne", help=f"one or more of {','.join(SERVERS)}, comma-separated")
    parser.add_argument("--original-dir", default=os.environ.get("ORIGINAL_DIR"),
                        help="a built checkout of the original Node server (default: $ORIGINAL_DIR)")
    parser.add_argument("--protocol", choices=["chillout", "original"], default="chillout",
                        help="with --url: the load tool's protocol (original: no acks)")  # fmt: skip
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    parser.add_argument("--find-max-rate", action="store_true")
    parser.add_argument("--rate-start", type=int, default=100)
    parser.add_argument("--rate-step", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tunings", help="LIBRARY_TUNINGS values to compare, comma-separated (on,off,-direct_write)")
    parser.add_argument("--checkout", help="serve Chillout from this checkout (e.g. a 'before' tree), with this bench")
    parser.add_argument("--url", help="a running server (default: a fresh one per scenario)")
    parser.add_argument("--pids", default="", help="with --url: server pid,database pid")
    parser.add_argument("--mongo-uri", help="with --url: its database, for the history prefill")
    args = parser.parse_args()
    if not (BENCH / "node_modules" / "socket.io-client").is_dir():
        sys.exit("run `npm ci --prefix bench` first")
    scenarios = list(filter(None, args.scenarios.split(",")))
    servers = list(filter(None, args.server.split(",")))
    unknown = set(servers) - set(SERVERS)
    if unknown:
        sys.exit(f"unknown --server {','.join(sorted(unknown))}; one of {','.join(SERVERS)}")
    if "original" in servers and args.url is None:
        if not args.original_dir or not (Path(args.original_dir) / "dist" / "server.js").is_file():
            sys.exit("--server original needs --original-dir (or ORIGINAL_DIR): a checkout of the original "
                     "with `npm ci && npm run build` done (dist/server.js)")  # fmt: skip
    lines = []
    for _ in range(args.repeat):
        if args.url is not None:
            PROTOCOL["name"] = args.protocol
            pids = [int(p) for p in args.pids.split(",") if p]
            for scenario in scenarios:
                lines.append(emit("external", run_scenario(scenario, args.url, pids, args.mongo_uri)))
            continue
        for server in servers:
            for tunings in tunings_values(args.tunings, server):
                for scenario in scenarios:
                    try:
                        with fresh_server(server, args.original_dir, args.checkout, tunings) as (url, pids, uri):
                            figures = run_scenario(scenario, url, pids, uri)
                    except Exception as error:  # a server that did not start: say so, go on with the next
                        figures = {"scenario": scenario, "error": f"{type(error).__name__}: {error}"}
                    if args.checkout and server != "original":
                        figures["checkout"] = args.checkout
                    if tunings is not None:
                        figures["tunings"] = tunings
                    lines.append(emit(server, figures))
            if args.find_max_rate:
                with fresh_server(server, args.original_dir) as (url, pids, _):
                    lines.append(emit(server, find_max_rate(server, url, pids, start=args.rate_start,
                                                            step=args.rate_step, limit_ms=100.0)))  # fmt: skip
    if args.repeat > 1:
        emit_medians(lines)


if __name__ == "__main__":
    main()
