"""Scale-out figures: one process without Redis, one with Redis, two with Redis; reaping.

    npm ci --prefix bench && .venv/bin/python bench/scale.py [--server daphne|uvicorn|granian] [--repeat N]
        [--setups single,single-redis,pair] [--figures cpu,sustained,fanout,isolation,reap]
        [--trees /path/to/before,/path/to/after] [--duration 10] [--rates 100,200,...]

Starts its own embedded database, redis-server and server processes (Daphne unless
`--server`; SEND_RATE=0 RELAY_RATE=0 MAX_CONNECTIONS_PER_IP=0), drives them with
bench/sio_load.mjs and prints one JSON line per figure, each with `server`, `setup`, `tree`
and `loadavg_1m`. Setups: `single` (1 process, no Redis), `single-redis` (1 process +
Redis), `pair` (2 processes + Redis). Figures:

* `cpu-closed`: chat-closed over 10 rooms x 10 clients (clients split across the
  processes): `server_cpu_ms_per_msg`, the servers' CPU (all processes, Redis apart in
  `redis_cpu_ms_per_msg`) per persisted message, and `persisted_per_s`;
* `cpu-open`: the same per message at one offered chat-open rate (`--cpu-rate`, 200/s);
* `sustained`: chat-open at rising offered rates: the highest rate whose messages were all
  persisted and echoed with p99 under 100 ms;
* `fanout`: deliveries/s to a 500-member room (split across the processes when two);
* `isolation` (pair): process A serves one member of room X only, the chat-open traffic
  (`--cpu-rate`) is in rooms whose members are all on B: A's CPU (`a_cores`) should be
  that of an idle process, since A receives none of those rooms' emits;
* `reap` (pair): seconds from kill -9 of one process until a client of the other sees that
  process's users leave `online_users` (`--dead-process-seconds`, default 30).
  Under granian the process killed is the worker, the one that holds the sockets.

`--trees` runs everything from each given source tree in turn (each figure interleaved:
before, after, before, after...), so a change is compared within one run on the same load.
`--repeat N` does it all N times, each on a fresh database, redis-server and servers, then
prints one `"summary": "median"` line per figure, setup and tree (medians of the numbers,
the load averages seen in `loadavg_1m_runs`).
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import socketio

from _harness import ROOT, SERVERS, embedded_database, load_average, median_figures, redis_server, server_process

BENCH_ENV = {"SEND_RATE": 0, "RELAY_RATE": 0, "MAX_CONNECTIONS_PER_IP": 0, "PURGE_INTERVAL_SECONDS": 0}
P99_BOUND_MS = 100.0
SETUPS = {"single": (1, False), "single-redis": (1, True), "pair": (2, True)}
FIGURES = ("cpu", "sustained", "fanout", "isolation", "reap")


def emit(server: str, line: dict) -> dict:
    line = {"server": server, "loadavg_1m": load_average(), **line}
    print(json.dumps(line), flush=True)
    return line


def load(*, scenario: str, urls: list[str], pids: list[int], **env) -> dict:
    environment = {**os.environ, "SCENARIO": scenario, "URL": ",".join(urls), "PIDS": ",".join(map(str, pids))}
    environment.update({k: str(v) for k, v in env.items()})
    result = subprocess.run(
        ["node", str(ROOT / "bench/sio_load.mjs")], env=environment, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def servers(*, kind: str, tree: Path, mongo_uri: str, count: int, **env):
    """`count` server processes of `kind`, run from `tree`, with the bench settings; yields [(url, pid), ...]."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(server_process(mongo_uri, cwd=tree, **SERVERS[kind], **BENCH_ENV, **env))
            for _ in range(count)
        ]


def per_message(result: dict, *, servers: int, redis: bool) -> dict:
    """CPU per persisted message (ms), of the servers together and of Redis."""
    rate = max(result["persisted_per_s"], 1e-9)
    cpu = result["cpu"]
    figures = {"server_cpu_ms_per_msg": round(1000 * sum(cpu[:servers]) / rate, 3)}
    if redis:
        figures["redis_cpu_ms_per_msg"] = round(1000 * cpu[-1] / rate, 3)
    return figures


def sustained(*, urls: list[str], pids: list[int], rates: list[int], duration: float, report) -> dict:
    """The highest offered rate with nothing lost and p99 under the bound; stops at the first failure."""
    best = None
    for rate in rates:
        result = load(scenario="chat-open", urls=urls, pids=pids, RATE=rate, DURATION=duration)
        ok = result["lost"] == 0 and result["failed"] == 0 and result["p99_ms"] < P99_BOUND_MS
        report({"figure": "sustained-step", "ok": ok, **result})
        if not ok:
            break
        best = result
    return {"figure": "sustained", "persisted_per_s": best and best["persisted_per_s"],
            "offered_per_s": best and best["offered_per_s"], "p99_ms": best and best["p99_ms"]}  # fmt: skip


async def isolation(*, a: str, urls_b: list[str], pids: list[int], rate: int, duration: float) -> dict:
    """One member of a room on A, all the traffic in other rooms on B: A's and B's CPU."""
    member = socketio.AsyncClient(reconnection=False)
    await member.connect(a, transports=["websocket"])
    await member.call("join_room", {"roomId": "bench-isolation-x", "username": "x"})
    try:
        result = await asyncio.to_thread(load, scenario="chat-open", urls=urls_b, pids=pids, RATE=rate,
                                         DURATION=duration)  # fmt: skip
    finally:
        await member.disconnect()
    return {"figure": "isolation", "offered_per_s": rate, "persisted_per_s": result["persisted_per_s"],
            "lost": result["lost"], "a_cores": result["cpu"][0], "b_cores": result["cpu"][1],
            "a_cpu_ms_per_msg_in_b_rooms": round(1000 * result["cpu"][0] / max(result["persisted_per_s"], 1e-9), 3)}  # fmt: skip


async def reap_seconds(*, survivor: str, victim: str, victim_pid: int) -> float:
    """kill -9 `victim`; seconds until the survivor's client sees its users gone."""
    watcher, gone = socketio.AsyncClient(reconnection=False), asyncio.Event()
    victims = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
    # With connection state recovery the list is followed by its offset.
    watcher.on("online_users", lambda names, *offset: gone.set() if names == ["watcher"] else None)
    await watcher.connect(survivor, transports=["websocket"])
    await watcher.call("join_room", {"roomId": "bench-reap", "username": "watcher"})
    for i, client in enumerate(victims):
        await client.connect(victim, transports=["websocket"])
        await client.call("join_room", {"roomId": "bench-reap", "username": f"victim{i}"})
    gone.clear()
    killed = time.monotonic()
    os.kill(victim_pid, signal.SIGKILL)
    await asyncio.wait_for(gone.wait(), 600)
    seconds = time.monotonic() - killed
    await watcher.disconnect()
    return seconds


def setup_figures(args, *, setup: str, tree: Path, database, redis_url: str, redis_pid: int, report) -> None:
    """Every figure of one setup, from one tree, on fresh server processes."""
    count, with_redis = SETUPS[setup]
    env = {"REDIS_URL": redis_url} if with_redis else {}
    uri = f"{database.uri}/bench_{setup.replace('-', '_')}_{int(time.time() * 1000)}"
    with servers(kind=args.server, tree=tree, mongo_uri=uri, count=count, **env) as started:
        urls = [url for url, _ in started]
        pids = [pid for _, pid in started] + [database.pid] + ([redis_pid] if with_redis else [])
        if "cpu" in args.figures:
            closed = load(scenario="chat-closed", urls=urls, pids=pids, DURATION=args.duration)
            report({"figure": "cpu-closed", "persisted_per_s": closed["persisted_per_s"], "p99_ms": closed["p99_ms"],
                    **per_message(closed, servers=count, redis=with_redis), "cpu": closed["cpu"]})  # fmt: skip
            opened = load(scenario="chat-open", urls=urls, pids=pids, RATE=args.cpu_rate, DURATION=args.duration)
            report({"figure": "cpu-open", "offered_per_s": args.cpu_rate, "persisted_per_s": opened["persisted_per_s"],
                    "lost": opened["lost"], "p99_ms": opened["p99_ms"],
                    **per_message(opened, servers=count, redis=with_redis), "cpu": opened["cpu"]})  # fmt: skip
        if "sustained" in args.figures:
            report(sustained(urls=urls, pids=pids, rates=args.rates, duration=args.duration, report=report))
        if "fanout" in args.figures:
            fanout = load(scenario="fanout", urls=urls, pids=pids, MEMBERS=args.members, DURATION=args.duration)
            report({"figure": "fanout", **fanout})
        if "isolation" in args.figures and count == 2:
            report(asyncio.run(isolation(a=urls[0], urls_b=urls[1:], pids=pids, rate=args.cpu_rate,
                                         duration=args.duration)))  # fmt: skip
    if "reap" in args.figures and count == 2:
        env = {"REDIS_URL": redis_url, "DEAD_PROCESS_SECONDS": args.dead_process_seconds}
        with servers(kind=args.server, tree=tree, mongo_uri=uri + "_reap", count=2, **env) as ((a, _), (b, b_pid)):
            seconds = asyncio.run(reap_seconds(survivor=a, victim=b, victim_pid=b_pid))
            report({"figure": "reap", "dead_process_seconds": args.dead_process_seconds,
                    "users_gone_after_s": round(seconds, 2)})  # fmt: skip


def run_once(args) -> list[dict]:
    """Every figure once, on a fresh database and redis-server; returns the figure lines."""
    lines = []
    with embedded_database() as database, redis_server() as (redis_url, redis_pid):
        for setup in args.setups:
            for tree in args.trees:

                def report(line: dict, setup=setup, tree=tree) -> None:
                    line = emit(args.server, {"setup": setup, "tree": str(tree), **line})
                    if line["figure"] != "sustained-step":
                        lines.append(line)

                setup_figures(args, setup=setup, tree=tree, database=database, redis_url=redis_url,
                              redis_pid=redis_pid, report=report)  # fmt: skip
    return lines


def emit_medians(lines: list[dict]) -> None:
    groups: dict[tuple[str, str, str, str], list[dict]] = {}
    for line in lines:
        groups.setdefault((line["server"], line["figure"], line["setup"], line["tree"]), []).append(line)
    for (server, figure, setup, tree), runs in groups.items():
        figures = median_figures(runs)
        for key in ("server", "figure", "setup", "tree", "loadavg_1m"):
            figures.pop(key, None)
        print(json.dumps({"summary": "median", "server": server, "figure": figure, "setup": setup, "tree": tree,
                          "runs": len(runs), "loadavg_1m_runs": [run["loadavg_1m"] for run in runs],
                          **figures}), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=[kind for kind in SERVERS if kind != "original"], default="daphne",
                        help="the original has no scale-out: bench/run.py --server original measures it")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rates", default="100,200,300,400,500,600,700,800,1000,1200")
    parser.add_argument("--cpu-rate", type=int, default=200, help="offered chat-open rate of cpu-open and isolation")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--dead-process-seconds", type=float, default=30)
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated: " + ",".join(SETUPS))
    parser.add_argument("--figures", default=",".join(FIGURES), help="comma-separated: " + ",".join(FIGURES))
    parser.add_argument("--trees", default=str(ROOT), help="comma-separated source trees to run the servers from")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    args.setups = [setup for setup in args.setups.split(",") if setup]
    unknown = set(args.setups) - set(SETUPS)
    if unknown:
        parser.error(f"unknown setups {sorted(unknown)}")
    args.figures = set(args.figures.split(","))
    args.trees = [Path(tree).resolve() for tree in args.trees.split(",")]
    lines = []
    for _ in range(args.repeat):
        lines += run_once(args)
    if args.repeat > 1:
        emit_medians(lines)


if __name__ == "__main__":
    main()
