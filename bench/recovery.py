"""Connection state recovery, measured: latency of a recovery and the cost of keeping the log.

    python bench/recovery.py --server daphne            # or uvicorn
    python bench/recovery.py --cost --server uvicorn    # fanout and chat-closed, recovery on then off

`--latency` (default): a fresh server (embedded database, rate limits off) and
`recovery_latency.mjs`: alice's transport closes, bob sends 20 / 200 / 500 messages, alice
reconnects; p50 of reconnect() → CONNECT and reconnect() → last missed message handled.
`--cost`: `run.py`'s `fanout` and `chat-closed` on a fresh server with `RECOVERY=on`, then
`RECOVERY=off` (one run each; every line has `loadavg_1m`: the machine is shared).
Numbers, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import SERVERS, embedded_database, load_average, server_process  # noqa: E402
from run import BENCH_ENV  # noqa: E402

BENCH = Path(__file__).resolve().parent


def latency(server: str, missed: str, rounds: int) -> dict:
    with embedded_database() as database, server_process(
        f"{database.uri}/chillout_bench", **SERVERS[server], **BENCH_ENV
    ) as (url, _pid):
        result = subprocess.run(
            ["node", str(BENCH / "recovery_latency.mjs")], cwd=BENCH, capture_output=True, text=True, timeout=600,
            env={**os.environ, "URL": url, "MISSED": missed, "ROUNDS": str(rounds)},
        )  # fmt: skip
    if result.returncode != 0:
        return {"scenario": "recovery-latency", "error": result.stderr.strip()[-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def cost(server: str, scenarios: str) -> list[dict]:
    lines = []
    for recovery in ("on", "off"):
        result = subprocess.run(
            [sys.executable, str(BENCH / "run.py"), "--server", server, "--scenarios", scenarios],
            capture_output=True, text=True, timeout=1800, env={**os.environ, "RECOVERY": recovery},
        )  # fmt: skip
        for line in result.stdout.strip().splitlines():
            lines.append({"recovery": recovery, **json.loads(line)})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="daphne", choices=["daphne", "uvicorn", "granian"])
    parser.add_argument("--cost", action="store_true", help="fanout and chat-closed with recovery on, then off")
    parser.add_argument("--scenarios", default="fanout,chat-closed")
    parser.add_argument("--missed", default="20,200,500")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.cost:
        for line in cost(args.server, args.scenarios):
            print(json.dumps(line), flush=True)
        return
    print(json.dumps({"server": args.server, "loadavg_1m": load_average(), **latency(args.server, args.missed, args.rounds)}))


if __name__ == "__main__":
    main()
