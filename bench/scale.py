"""Scale-out figures: one process vs two processes + Redis, and how fast a dead process is reaped.

    npm ci --prefix bench && python bench/scale.py [--server daphne|uvicorn|granian] [--repeat N]
                                                   [--duration 10] [--rates 100,200,...]

Starts its own embedded database, redis-server and server processes (Daphne unless
`--server`; SEND_RATE=0 RELAY_RATE=0 MAX_CONNECTIONS_PER_IP=0), drives them with
bench/sio_load.mjs and prints one JSON line per figure, each with `server` and `loadavg_1m`:

* `chat-open` at rising offered rates over 10 rooms x 10 clients: the highest rate whose
  messages were all persisted and echoed with p99 under 100 ms (`sustained`);
* `fanout`: deliveries/s to a 500-member room (split across the processes when there are two);
* `reap`: seconds from kill -9 of one process until a client of the other sees that
  process's users leave `online_users` (DEAD_PROCESS_SECONDS as configured, default 30).
  Under granian the process killed is the worker, the one that holds the sockets.

`--repeat N` does it all N times, each time on a fresh database, redis-server and servers,
then prints one `"summary": "median"` line per figure and setup (medians of the numbers,
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

import socketio

from _harness import ROOT, SERVERS, embedded_database, load_average, median_figures, redis_server, server_process

BENCH_ENV = {"SEND_RATE": 0, "RELAY_RATE": 0, "MAX_CONNECTIONS_PER_IP": 0, "PURGE_INTERVAL_SECONDS": 0}
P99_BOUND_MS = 100.0


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
def servers(*, kind: str, mongo_uri: str, count: int, **env):
    """`count` server processes of `kind` with the bench settings; yields [(url, pid), ...]."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(server_process(mongo_uri, **SERVERS[kind], **BENCH_ENV, **env)) for _ in range(count)]


def sustained(*, server: str, setup: str, urls: list[str], pids: list[int], rates: list[int], duration: float) -> dict:
    """The highest offered rate with nothing lost and p99 under the bound; stops at the first failure."""
    best = None
    for rate in rates:
        result = load(scenario="chat-open", urls=urls, pids=pids, RATE=rate, DURATION=duration)
        ok = result["lost"] == 0 and result["failed"] == 0 and result["p99_ms"] < P99_BOUND_MS
        emit(server, {"setup": setup, "ok": ok, **result})
        if not ok:
            break
        best = result
    return {"figure": "sustained", "setup": setup, "persisted_per_s": best and best["persisted_per_s"],
            "offered_per_s": best and best["offered_per_s"], "p99_ms": best and best["p99_ms"]}  # fmt: skip


async def reap_seconds(*, survivor: str, victim: str, victim_pid: int) -> float:
    """kill -9 `victim`; seconds until the survivor's client sees its users gone."""
    watcher, gone = socketio.AsyncClient(reconnection=False), asyncio.Event()
    victims = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
    watcher.on("online_users", lambda names: gone.set() if names == ["watcher"] else None)
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


def run_once(args, rates: list[int], skip: set[str]) -> list[dict]:
    """Every figure once, on a fresh database, redis-server and servers; returns the figure lines."""
    server, lines = args.server, []
    with embedded_database() as database, redis_server() as (redis_url, redis_pid):
        setups = {"single": (1, {}), "pair": (2, {"REDIS_URL": redis_url})}
        for setup, (count, env) in setups.items():
            if setup in skip:
                continue
            with servers(kind=server, mongo_uri=f"{database.uri}/bench_{setup}", count=count, **env) as started:
                urls = [url for url, _ in started]
                pids = [pid for _, pid in started] + [database.pid] + ([redis_pid] if env else [])
                lines.append(emit(server, sustained(server=server, setup=setup, urls=urls, pids=pids, rates=rates,
                                                    duration=args.duration)))  # fmt: skip
                fanout = load(scenario="fanout", urls=urls, pids=pids, MEMBERS=args.members, DURATION=args.duration)
                lines.append(emit(server, {"figure": "fanout", "setup": setup, **fanout}))
        if "reap" not in skip:
            env = {"REDIS_URL": redis_url, "DEAD_PROCESS_SECONDS": args.dead_process_seconds}
            with servers(kind=server, mongo_uri=f"{database.uri}/bench_reap", count=2, **env) as ((a, _), (b, b_pid)):
                seconds = asyncio.run(reap_seconds(survivor=a, victim=b, victim_pid=b_pid))
                lines.append(emit(server, {"figure": "reap", "setup": "pair",
                                           "dead_process_seconds": args.dead_process_seconds,
                                           "users_gone_after_s": round(seconds, 2)}))  # fmt: skip
    return lines


def emit_medians(lines: list[dict]) -> None:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for line in lines:
        groups.setdefault((line["server"], line["figure"], line["setup"]), []).append(line)
    for (server, figure, setup), runs in groups.items():
        figures = median_figures(runs)
        for key in ("server", "figure", "setup", "loadavg_1m"):
            figures.pop(key, None)
        print(json.dumps({"summary": "median", "server": server, "figure": figure, "setup": setup, "runs": len(runs),
                          "loadavg_1m_runs": [run["loadavg_1m"] for run in runs], **figures}), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=[kind for kind in SERVERS if kind != "original"], default="daphne",
                        help="the original has no scale-out: bench/run.py --server original measures it")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rates", default="100,200,300,400,500,600,700,800,1000,1200")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--dead-process-seconds", type=float, default=30)
    parser.add_argument("--skip", default="", help="comma-separated: single,pair,reap")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    skip = set(args.skip.split(","))
    lines = []
    for _ in range(args.repeat):
        lines += run_once(args, rates, skip)
    if args.repeat > 1:
        emit_medians(lines)


if __name__ == "__main__":
    main()
