"""A/B of a small-room `GET /api/room/<id>`: two servers (two checkouts) measured in one run.

    python bench/get_ab.py --before-dir /tmp/base [--server daphne|uvicorn|granian] [--blocks 20]
                           [--original-dir /path/to/original] [--settle SECONDS]

`--before-dir` is another checkout of Chillout (e.g. `git archive main | tar -x -C /tmp/base`);
the "after" server runs this checkout; with `--original-dir` the original Node server (built:
`dist/server.js`) is a third. All get the same embedded database (separate databases in it)
and are hit in alternating blocks of 50 sequential GETs, so a change in the machine's load
hits them alike. Prints one JSON line per server: p50/p90, the server process CPU per GET,
and the database process CPU per GET (shared by all, so measured per block).
"""

import argparse
import json
import os
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from _harness import ROOT, SERVERS, embedded_database, proc_cpu_seconds, server_process

PATH = "/api/room/small-room"
BLOCK = 50


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before-dir", type=Path)
    parser.add_argument("--original-dir", type=Path)
    parser.add_argument("--server", default="daphne", choices=["daphne", "uvicorn", "granian"])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after the warm-up: a room nobody has written to for a while")  # fmt: skip
    args = parser.parse_args()
    with embedded_database() as database, ExitStack() as stack:
        servers = {}
        contestants = [("after", ROOT, SERVERS[args.server])]
        if args.before_dir:
            contestants.insert(0, ("before", args.before_dir.resolve(), SERVERS[args.server]))
        if args.original_dir:
            contestants.append(("original", args.original_dir.resolve(), SERVERS["original"]))
        for name, cwd, options in contestants:
            url, pid = stack.enter_context(server_process(f"{database.uri}/chillout_{name}", cwd=cwd, **options))
            servers[name] = (stack.enter_context(httpx.Client(base_url=url, timeout=30)), pid)
        for client, _ in servers.values():
            for _ in range(200):  # warm-up, and the room created
                client.get(PATH).raise_for_status()
        time.sleep(args.settle)
        samples = {name: [] for name in servers}
        cpu = dict.fromkeys(servers, 0.0)
        db_cpu = dict.fromkeys(servers, 0.0)
        for _ in range(args.blocks):
            for name, (client, pid) in servers.items():
                cpu0, db0 = proc_cpu_seconds(pid), proc_cpu_seconds(database.pid)
                for _ in range(BLOCK):
                    t0 = time.perf_counter()
                    client.get(PATH).raise_for_status()
                    samples[name].append((time.perf_counter() - t0) * 1000)
                cpu[name] += proc_cpu_seconds(pid) - cpu0
                db_cpu[name] += proc_cpu_seconds(database.pid) - db0
        for name, values in samples.items():
            values.sort()
            print(json.dumps({
                "server": "original" if name == "original" else args.server, "checkout": name, "gets": len(values),
                "p50_ms": round(statistics.median(values), 2), "p90_ms": round(values[int(len(values) * 0.9)], 2),
                "server_cpu_ms_per_get": round(cpu[name] * 1000 / len(values), 2),
                "db_cpu_ms_per_get": round(db_cpu[name] * 1000 / len(values), 2),
                "loadavg_1m": round(os.getloadavg()[0], 2), "settle_s": args.settle,
            }))  # fmt: skip


if __name__ == "__main__":
    main()
