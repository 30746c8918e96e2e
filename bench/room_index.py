"""CPU per Socket.IO disconnect in the room manager, python-socketio's own against ours.

    .venv/bin/python bench/room_index.py [--sockets 2000,10000]

N sockets connect (each in its own sid room and in one of N/10 rooms), then all of them
disconnect; prints one JSON line per manager and N with this process's CPU per disconnect
in µs, averaged over the whole drain. python-socketio's `basic_disconnect` scans and copies
every room of the namespace, so its cost grows with N; `realtime.room_index` leaves the
socket's own rooms only. No server, no network: the managers alone.
"""

import argparse
import asyncio
import json
import sys
import time

import socketio
from _harness import ROOT

sys.path.insert(0, str(ROOT))

from realtime.room_index import IndexedRoomsManager  # noqa: E402


class Server:
    """What a manager asks of its server: new ids and the JSON module."""

    class packet_class:  # noqa: N801
        json = None

    def __init__(self):
        self.ids = iter(range(10**9))
        self.eio = self

    def generate_id(self):
        return f"id{next(self.ids)}"


async def cpu_per_disconnect(manager_class, sockets: int) -> float:
    manager = manager_class()
    manager.set_server(Server())
    sids = [await manager.pre_connect(f"e{i}", "/") for i in range(sockets)]
    for i, sid in enumerate(sids):
        await manager.connect(sid, "/")
        await manager.enter_room(sid, "/", f"room:{i // 10}")
    started = time.process_time()
    for sid in sids:
        await manager.disconnect(sid, "/")
    return (time.process_time() - started) / sockets * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default="2000,10000")
    args = parser.parse_args()
    for sockets in (int(n) for n in args.sockets.split(",")):
        for manager_class in (socketio.AsyncManager, IndexedRoomsManager):
            cpu = asyncio.run(cpu_per_disconnect(manager_class, sockets))
            print(json.dumps({"manager": manager_class.__name__, "sockets": sockets,
                              "cpu_us_per_disconnect": round(cpu, 1)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
