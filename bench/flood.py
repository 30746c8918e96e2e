"""Latency of a quiet client while another floods the server (the figure tests/realtime/
test_flood.py does not take: it only requires every echo acknowledged).

    .venv/bin/python bench/flood.py [--server daphne|uvicorn] [--packets 20000]

One fresh server (rate limits off, as for all bench load from one address; MAX_PENDING_EVENTS
at its default, so the flooder is cut), one echo client in its own room sending
`send_message` one after the other: 20 round trips quiet, then round trips for as long as
a raw websocket client writes `--packets` `send_message` frames without reading, and one
after. Prints one JSON line per server: echo round-trip median and max (ms) quiet and
during the flood, how many frames the flooder wrote before it was cut, the server's RSS
before and after.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import socketio
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import SERVERS, embedded_database, load_average, proc_rss_mb, server_process  # noqa: E402
from run import BENCH_ENV  # noqa: E402


def frame(room: str, i: int) -> str:
    return "42" + json.dumps(["send_message", {"roomId": room, "username": "flooder", "message": f"flood {i}"}])


async def flood(url: str, packets: int) -> int:
    """Write `packets` frames without reading; how many were written before the cut."""
    sent = 0
    async with ws_connect(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
                          max_size=None) as ws:  # fmt: skip
        await ws.recv()
        await ws.send("40")
        await ws.recv()
        try:
            for i in range(packets):
                await ws.send(frame("bench-flooded", i))
                sent += 1
            while not (await asyncio.wait_for(ws.recv(), 60)).startswith("41"):
                pass
        except ConnectionClosed:
            pass
    return sent


async def measure(url: str, pid: int, packets: int) -> dict:
    echo = socketio.AsyncClient()
    await echo.connect(url, transports=["websocket"])
    await echo.call("join_room", {"roomId": "bench-echo", "username": "echo"})

    async def round_trip() -> float:
        started = time.perf_counter()
        await echo.call("send_message", {"roomId": "bench-echo", "message": "echo"}, timeout=60)
        return (time.perf_counter() - started) * 1000

    rss_before = proc_rss_mb(pid)
    quiet = [await round_trip() for _ in range(20)]
    task = asyncio.create_task(flood(url, packets))
    during = []
    while not task.done():
        during.append(await round_trip())
    during.append(await round_trip())
    sent = await task
    await echo.disconnect()
    return {"echo_quiet_p50_ms": round(statistics.median(quiet), 2), "echo_flood_p50_ms": round(statistics.median(during), 2),
            "echo_flood_max_ms": round(max(during), 2), "echo_flood_n": len(during), "flood_frames_written": sent,
            "rss_mb": [round(rss_before, 1), round(proc_rss_mb(pid), 1)]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="daphne")
    parser.add_argument("--packets", type=int, default=20_000)
    args = parser.parse_args()
    for server in args.server.split(","):
        with embedded_database() as database, server_process(
            f"{database.uri}/chillout_bench", **SERVERS[server], **BENCH_ENV
        ) as (url, pid):
            figures = asyncio.run(measure(url, pid, args.packets))
        print(json.dumps({"server": server, "scenario": "flood", "loadavg_1m": load_average(), **figures}), flush=True)


if __name__ == "__main__":
    main()
