"""A/B of a small-room `GET /api/room/<id>`: two servers (two checkouts) measured in one run.

    python bench/get_ab.py --before-dir /tmp/base [--server daphne|uvicorn] [--blocks 20]

`--before-dir` is another checkout of Chillout (e.g. `git archive main | tar -x -C /tmp/base`);
the "after" server runs this checkout. Both get the same embedded database (separate
databases in it) and are hit in alternating blocks of 50 sequential GETs, so a change in
the machine's load hits both alike. Prints one JSON line per server: p50/p90 and the server
process CPU per GET.
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
    parser.add_argument("--before-dir", required=True, type=Path)
    parser.add_argument("--server", default="daphne", choices=["daphne", "uvicorn"])
    parser.add_argument("--blocks", type=int, default=20)
    args = parser.parse_args()
    with embedded_database() as database, ExitStack() as stack:
        servers = {}
        for name, cwd in (("before", args.before_dir.resolve()), ("after", ROOT)):
            url, pid = stack.enter_context(
                server_process(f"{database.uri}/chillout_{name}", cwd=cwd, **SERVERS[args.server])
            )
            servers[name] = (stack.enter_context(httpx.Client(base_url=url, timeout=30)), pid)
        for client, _ in servers.values():
            for _ in range(200):  # warm-up, and the room created
                client.get(PATH).raise_for_status()
        samples = {name: [] for name in servers}
        cpu = dict.fromkeys(servers, 0.0)
        for _ in range(args.blocks):
            for name, (client, pid) in servers.items():
                cpu0 = proc_cpu_seconds(pid)
                for _ in range(BLOCK):
                    t0 = time.perf_counter()
                    client.get(PATH).raise_for_status()
                    samples[name].append((time.perf_counter() - t0) * 1000)
                cpu[name] += proc_cpu_seconds(pid) - cpu0
        for name, values in samples.items():
            values.sort()
            print(json.dumps({
                "server": args.server, "checkout": name, "gets": len(values),
                "p50_ms": round(statistics.median(values), 2), "p90_ms": round(values[int(len(values) * 0.9)], 2),
                "server_cpu_ms_per_get": round(cpu[name] * 1000 / len(values), 2),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }))  # fmt: skip


if __name__ == "__main__":
    main()
