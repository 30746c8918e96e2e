"""Run Socket.IO load scenarios against a fresh server and print one JSON line each.

    npm ci --prefix bench
    python bench/run.py [--server daphne|uvicorn] [--scenarios echo,chat-closed,...]
                        [--find-max-rate] [--repeat N]

Each run starts its own embedded database and a server process with the rate limits and
the per-IP cap off (the load comes from one address), runs `bench/sio_load.mjs` for each
scenario with the server's and the database's pids (CPU and RSS read from /proc), and
prints the Node tool's JSON line plus the server kind and the machine's load average.

`--find-max-rate` steps the offered rate of `chat-open` (10 rooms × 10 clients) up until
a step loses messages or its p99 passes 100 ms, and reports the highest rate that held.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _harness import embedded_database, server_process

BENCH = Path(__file__).resolve().parent
SERVERS = {
    "daphne": None,  # the harness default: daphne -v 0
    "uvicorn": [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
        "--no-access-log", "--ws-per-message-deflate", "false", "chillout_project.asgi:application",
    ],
}
BENCH_ENV = {"SEND_RATE": "0", "RELAY_RATE": "0", "MAX_CONNECTIONS_PER_IP": "0", "PURGE_INTERVAL_SECONDS": "0"}
DEFAULT_SCENARIOS = "echo,chat-closed,fanout,connections,churn"


def load_tool(scenario: str, url: str, pids: list[int], **env) -> dict:
    environment = {**os.environ, "SCENARIO": scenario, "URL": url, "PIDS": ",".join(map(str, pids))}
    environment.update({k: str(v) for k, v in env.items()})
    result = subprocess.run(
        ["node", str(BENCH / "sio_load.mjs")], env=environment, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        return {"scenario": scenario, "error": result.stderr.strip()[-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


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
    args = parser.parse_args()
    if not (BENCH / "node_modules" / "socket.io-client").is_dir():
        sys.exit("run `npm ci --prefix bench` first")
    for _ in range(args.repeat):
        with embedded_database() as database:
            uri = f"{database.uri}/chillout_bench"
            with server_process(uri, command=SERVERS[args.server], **BENCH_ENV) as (url, pid):
                pids = [pid, database.pid]
                for scenario in filter(None, args.scenarios.split(",")):
                    emit(args.server, load_tool(scenario, url, pids))
                if args.find_max_rate:
                    emit(args.server, find_max_rate(args.server, url, pids, start=args.rate_start, step=args.rate_step, limit_ms=100.0))


if __name__ == "__main__":
    main()
