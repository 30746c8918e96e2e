"""CPU per command of `realtime.redis_pipe.PipelinedRedis`, the path every chat message takes
with `REDIS_URL` (the recovery log's append + publish script).

    .venv/bin/python bench/redis_pipe.py [--trees /path/to/before,/path/to/after] [--rounds 5]
                                         [--clients PipelinedRedis,LibraryRedis]

Starts its own redis-server (Debian package), loads `realtime/redis_pipe.py` from each tree in
turn (alternating, twice) and runs 2,000 EVALSHA of the recovery log's shape (14 arguments,
a message of ~200 bytes), 10 at a time as concurrent messages arrive; prints one JSON line per
tree, client and pass with this process's CPU per command in µs for each round. Redis's own
CPU is not in it. `--clients PipelinedRedis,LibraryRedis` compares the `redis_pipe` tuning
with its fallback (redis-py's own client), docs/tunings.md.
"""

import argparse
import asyncio
import importlib.util
import json
import time
from pathlib import Path

from _harness import ROOT, load_average, redis_server

ARGS = ["1796103000000", "120000", "1000", "ep12345", "receive_message",
        '{"username":"user1","message":"hello there","type":"text","_id":"6b0e5d015e996212cc06b7fd",'
        '"timestamp":"2026-12-01T06:00:00.000Z"}',
        "[]", "bench:sio:r:room-abc", '\n\n\ntok\n["receive_message",{}', "]"]  # fmt: skip
CONCURRENT, TURNS = 10, 200


def pipe_module(tree: Path):
    spec = importlib.util.spec_from_file_location(f"redis_pipe_{abs(hash(tree))}", tree / "realtime/redis_pipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def cpu_per_command(client, url: str, rounds: int) -> list[float]:
    pipe = client(url)
    append = pipe.script("return ARGV[1]")
    keys = ["bench:rl:room", "bench:rm:room"]
    await append(keys=keys, args=ARGS)
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(TURNS):
            await asyncio.gather(*(append(keys=keys, args=ARGS) for _ in range(CONCURRENT)))
        figures.append(round((time.process_time() - started) / (TURNS * CONCURRENT) * 1e6, 1))
    await pipe.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", default=str(ROOT))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default="PipelinedRedis")
    args = parser.parse_args()
    trees = [Path(tree) for tree in args.trees.split(",")]
    clients = args.clients.split(",")
    with redis_server() as (url, _pid):
        for run in range(2):
            for tree in trees:
                module = pipe_module(tree)
                for client in clients:
                    figures = asyncio.run(cpu_per_command(getattr(module, client), url, args.rounds))
                    print(json.dumps({"tree": str(tree), "client": client, "pass": run + 1, "loadavg_1m": load_average(),
                                      "cpu_us_per_command": figures}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
