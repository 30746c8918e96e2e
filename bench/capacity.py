"""A capacity model re-derived from measured per-event costs, not typed.

    .venv/bin/python bench/run.py --server daphne --scenarios chat-closed,history-fresh,fanout,connections,rooms,churn,media > run.jsonl
    .venv/bin/python bench/scale.py --setups single,pair --figures cpu > scale.jsonl      # optional: the Redis costs
    .venv/bin/python bench/capacity.py run.jsonl [scale.jsonl] [--server daphne] [--utilisation 0.6] [--storm-seconds 60]

Why: "how many users does one core hold" depends on what the users do; the answer is a sum
of per-event costs times rates. The costs come from the bench lines (the medians when
`--repeat` made `"summary"` lines, else the last run of each scenario):

* connect: server CPU per socket connect + `join_room` (`connections`: cores x seconds / sockets);
* copy: server CPU per delivered copy of a message (`fanout`: cores / deliveries per s);
* message: server and database CPU per persisted message, its copies taken out
  (`chat-closed`, rooms of 10: cores / persisted per s - 10 copies);
* page: server CPU per history `GET` of a small room (`history-fresh` `get_small`), what a page load costs besides the connect;
* upload / download: server CPU per MB (`media`);
* socket / room memory: RSS per idle joined socket (`connections`, rooms of 10) and per room
  (`rooms` has one socket per room: the RSS difference over the extra rooms);
* Redis (from a `scale.py` line, if given): Redis CPU per message with two processes, and the
  extra server CPU per message that going through Redis costs (pair over single).

A profile says what an average concurrent user does per hour; the model prints, per profile,
the CPU and memory per user and the users one single-core process holds under three bounds —
CPU at `--utilisation` (headroom for bursts and GC), every user reconnecting within
`--storm-seconds` (a restart or a network cut sends them all back at once: connect + join +
a history GET each), and `--process-memory-mb` — naming the one that binds; then the sizing
for 10,000 and 100,000 concurrent users (processes, memory, messages and copies per second,
MongoDB writes, Redis CPU). It prints text, then one JSON line.

Redis CPU scales with the processes subscribed to a room's channel (each gets each message):
the two-process figure is scaled by min(room size, processes) / 2, an extrapolation.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class Costs:
    """Seconds of one core per event; bytes of memory per thing held."""

    connect_s: float
    copy_s: float
    message_s: float
    message_db_s: float
    page_s: float
    upload_s_per_mb: float
    download_s_per_mb: float
    socket_bytes: float
    room_bytes: float
    idle_socket_s: float  # CPU per second of one idle joined socket (engine.io pings)
    redis_message_s: float | None = None
    redis_extra_server_s: float | None = None


@dataclass(frozen=True)
class Profile:
    """What an average concurrent user does per hour."""

    name: str
    room_size: int
    messages_per_hour: float
    page_loads_per_hour: float  # connect + join + a history GET: a reload, a reconnect, a new tab
    voice_notes_per_hour: float
    voice_mb: float = 0.1  # ~30 s of Opus
    images_per_hour: float = 0.0
    image_mb: float = 0.5


PROFILES = [
    Profile("small groups (rooms of 5, a message every 5 min)", room_size=5, messages_per_hour=12,
            page_loads_per_hour=2, voice_notes_per_hour=0.5, images_per_hour=0.25),
    Profile("busy groups (rooms of 20, a message a minute)", room_size=20, messages_per_hour=60,
            page_loads_per_hour=4, voice_notes_per_hour=2, images_per_hour=1),
    Profile("live event (rooms of 500, a message every 10 min)", room_size=500, messages_per_hour=6,
            page_loads_per_hour=2, voice_notes_per_hour=0, images_per_hour=0),
]  # fmt: skip

TARGETS = (10_000, 100_000)


@dataclass(frozen=True)
class Limits:
    utilisation: float  # the share of a core to plan for (headroom for bursts and GC)
    storm_seconds: float  # all of a process's users must be able to reconnect within this
    process_memory_bytes: float
PROCESS_MEMORY_BYTES = 150 * MB  # a Chillout process at rest (the soak's idle RSS, rounded up)
MONGO_WRITES_PER_MESSAGE = 2  # the message insert and the room's lastActivity touch


def bench_lines(paths: list[Path], server: str) -> dict[str, dict]:
    """scenario or figure (+ setup) → its line: the median line when there is one, else the last run."""
    chosen: dict[str, dict] = {}
    for path in paths:
        for raw in path.read_text().splitlines():
            if not raw.strip().startswith("{"):
                continue
            line = json.loads(raw)
            if line.get("server") != server or "error" in line or line.get("tunings") not in (None, "on"):
                continue
            key = line.get("scenario") if "figure" not in line else f"{line['figure']}/{line.get('setup')}"
            if key and (line.get("summary") or not chosen.get(key, {}).get("summary")):
                chosen[key] = line
    return chosen


def costs_from(lines: dict[str, dict]) -> Costs:
    missing = {"connections", "rooms", "fanout", "chat-closed", "history-fresh", "media"} - lines.keys()
    if missing:
        raise SystemExit(f"the bench lines lack {sorted(missing)}: run bench/run.py with those scenarios")
    connections, rooms, fanout = lines["connections"], lines["rooms"], lines["fanout"]
    closed, media = lines["chat-closed"], lines["media"]
    copy_s = fanout["cpu"][0] / fanout["deliveries_per_s"]
    room_size = 10  # chat-closed: 10 rooms x 10 clients, every message to all 10
    socket_bytes = connections["rss_kb_per_connection"] * 1024
    extra_rooms = rooms["rooms"] - connections.get("rooms", connections["sockets"] / 10)
    room_bytes = max((rooms["rss_kb_per_connection"] - connections["rss_kb_per_connection"]) * 1024
                     * rooms["sockets"] / extra_rooms, 0.0)  # fmt: skip
    redis_message_s = redis_extra = None
    if "cpu-closed/pair" in lines and "cpu-closed/single" in lines:
        pair, single = lines["cpu-closed/pair"], lines["cpu-closed/single"]
        redis_message_s = pair["redis_cpu_ms_per_msg"] / 1000
        redis_extra = max(pair["server_cpu_ms_per_msg"] - single["server_cpu_ms_per_msg"], 0.0) / 1000
    return Costs(
        connect_s=connections["cpu"][0] * connections["seconds"] / connections["sockets"],
        copy_s=copy_s,
        message_s=max(closed["cpu"][0] / closed["persisted_per_s"] - room_size * copy_s, 0.0),
        message_db_s=closed["cpu"][1] / closed["persisted_per_s"],
        page_s=lines["history-fresh"]["get_small"]["cpu_ms_per_get"][0] / 1000,
        upload_s_per_mb=media["upload_cpu_ms_per_MB"][0] / 1000,
        download_s_per_mb=media["download_cpu_ms_per_MB"][0] / 1000,
        socket_bytes=socket_bytes,
        room_bytes=room_bytes,
        idle_socket_s=(rooms.get("idle_cpu_us_per_socket_per_s") or 0.0) / 1e6,
        redis_message_s=redis_message_s,
        redis_extra_server_s=redis_extra,
    )


def per_user(profile: Profile, costs: Costs, *, clustered: bool) -> dict:
    """One concurrent user's load: CPU seconds per second by kind, messages, copies, bytes."""
    hour = 3600.0
    messages = (profile.messages_per_hour + profile.voice_notes_per_hour + profile.images_per_hour) / hour
    copies = messages * profile.room_size
    media_mb = (profile.voice_notes_per_hour * profile.voice_mb + profile.images_per_hour * profile.image_mb) / hour
    message_cost = costs.message_s + ((costs.redis_extra_server_s or 0.0) if clustered else 0.0)
    cpu = {
        "idle": costs.idle_socket_s,
        "messages": messages * message_cost,
        "copies": copies * costs.copy_s,
        "page_loads": profile.page_loads_per_hour / hour * (costs.connect_s + costs.page_s),
        "uploads": media_mb * costs.upload_s_per_mb,
        "downloads": media_mb * profile.room_size * costs.download_s_per_mb,  # every member plays it once
    }
    return {
        "cpu_s_per_s": sum(cpu.values()),
        "cpu_by_kind": cpu,
        "messages_per_s": messages,
        "copies_per_s": copies,
        "db_cpu_s_per_s": messages * costs.message_db_s,
        "memory_bytes": costs.socket_bytes + costs.room_bytes / profile.room_size,
    }


def users_per_process(load: dict, costs: Costs, *, limits: Limits) -> tuple[int, str, dict]:
    """How many of these users one single-core process holds, and which bound stops it."""
    bounds = {
        "cpu": limits.utilisation / load["cpu_s_per_s"],
        # every user of a process reconnects at once (a restart, a network cut): all back within
        # `storm_seconds` with the whole core on it
        "reconnect storm": limits.storm_seconds / (costs.connect_s + costs.page_s),
        "memory": (limits.process_memory_bytes - PROCESS_MEMORY_BYTES) / load["memory_bytes"],
    }
    binding = min(bounds, key=bounds.get)
    return int(bounds[binding]), binding, {k: int(v) for k, v in bounds.items()}


def model(profile: Profile, costs: Costs, *, limits: Limits) -> dict:
    single = per_user(profile, costs, clustered=False)
    clustered = per_user(profile, costs, clustered=True)
    users, binding, bounds = users_per_process(single, costs, limits=limits)
    users_clustered, binding_clustered, _ = users_per_process(clustered, costs, limits=limits)
    sizing = {}
    for target in TARGETS:
        processes = math.ceil(target / users_clustered) + 1  # N + 1: one process may be lost (or restarting)
        messages = target * clustered["messages_per_s"]
        subscribers = min(profile.room_size, processes)  # processes that get each message from Redis
        sizing[str(target)] = {
            "server_processes": processes,  # one per core (a Daphne process uses one), N + 1
            "memory_per_process_mb": round((PROCESS_MEMORY_BYTES + target / (processes - 1) * clustered["memory_bytes"]) / MB),
            "messages_per_s": round(messages, 1),
            "copies_per_s": round(target * clustered["copies_per_s"]),
            "mongo_writes_per_s_at_most": round(messages * MONGO_WRITES_PER_MESSAGE, 1),
            "embedded_db_cores": round(target * clustered["db_cpu_s_per_s"], 2),
            "redis_cores": round(messages * (costs.redis_message_s or 0.0) * subscribers / 2, 3),
        }
    return {
        "profile": asdict(profile),
        "cpu_us_per_user_per_s": round(single["cpu_s_per_s"] * 1e6, 2),
        "cpu_by_kind_pct": {k: round(v * 100 / single["cpu_s_per_s"], 1) for k, v in single["cpu_by_kind"].items()},
        "memory_kb_per_user": round(single["memory_bytes"] / 1024, 1),
        "users_per_process": users,
        "bound": binding,
        "bounds": bounds,
        "users_per_process_with_redis": users_clustered,
        "bound_with_redis": binding_clustered,
        "messages_per_s_per_process": round(users * single["messages_per_s"], 1),
        "copies_per_s_per_process": round(users * single["copies_per_s"]),
        "cpu_used_pct": round(users * single["cpu_s_per_s"] * 100, 1),
        "sizing": sizing,
    }


def text(costs: Costs, results: list[dict], *, limits: Limits) -> str:
    lines = [
        "Per-event costs (server CPU unless said):",
        f"  connect + join_room   {costs.connect_s * 1e3:8.3f} ms",
        f"  history GET (a page)  {costs.page_s * 1e3:8.3f} ms",
        f"  persisted message     {costs.message_s * 1e3:8.3f} ms   (+ {costs.message_db_s * 1e3:.3f} ms embedded database CPU)",
        f"  delivered copy        {costs.copy_s * 1e6:8.1f} µs",
        f"  uploaded MB           {costs.upload_s_per_mb * 1e3:8.1f} ms   downloaded MB {costs.download_s_per_mb * 1e3:.1f} ms",
        f"  idle joined socket    {costs.socket_bytes / 1024:8.1f} KiB, {costs.idle_socket_s * 1e6:.2f} µs CPU per s;"
        f"  room {costs.room_bytes / 1024:.1f} KiB",
    ]
    if costs.redis_message_s is not None:
        lines.append(f"  with Redis, per message: Redis {costs.redis_message_s * 1e3:.3f} ms (two processes), "
                     f"servers +{costs.redis_extra_server_s * 1e3:.3f} ms")  # fmt: skip
    lines.append(f"\nOne single-core process, planned at {limits.utilisation:.0%} CPU, every user back within "
                 f"{limits.storm_seconds:.0f} s of a reconnect storm, at most {limits.process_memory_bytes / MB:.0f} MB:")  # fmt: skip
    for result in results:
        lines.append(f"\n{result['profile']['name']}")
        lines.append(f"  {result['cpu_us_per_user_per_s']} µs CPU per user per second ({result['cpu_by_kind_pct']}), "
                     f"{result['memory_kb_per_user']} KiB")  # fmt: skip
        lines.append(f"  {result['users_per_process']:,} users per process ({result['bound']} bound; bounds {result['bounds']}; "
                     f"{result['users_per_process_with_redis']:,} with Redis), {result['messages_per_s_per_process']} "
                     f"messages/s, {result['copies_per_s_per_process']:,} copies/s, {result['cpu_used_pct']} % CPU")  # fmt: skip
        for users, size in result["sizing"].items():
            lines.append(f"  {int(users):,} users: {size['server_processes']} processes (N + 1) of ~{size['memory_per_process_mb']} MB, "
                         f"{size['messages_per_s']} messages/s, {size['copies_per_s']:,} copies/s, MongoDB <= "
                         f"{size['mongo_writes_per_s_at_most']} writes/s, Redis {size['redis_cores']} cores")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jsonl", type=Path, nargs="+", help="bench/run.py output, and optionally bench/scale.py output")
    parser.add_argument("--server", default="daphne")
    parser.add_argument("--utilisation", type=float, default=0.6, help="the share of a core to plan for")
    parser.add_argument("--storm-seconds", type=float, default=60.0, help="a process's users all reconnect within this")
    parser.add_argument("--process-memory-mb", type=float, default=4096.0)
    args = parser.parse_args(argv)
    limits = Limits(utilisation=args.utilisation, storm_seconds=args.storm_seconds,
                    process_memory_bytes=args.process_memory_mb * MB)  # fmt: skip
    costs = costs_from(bench_lines(args.jsonl, args.server))
    results = [model(profile, costs, limits=limits) for profile in PROFILES]
    print(text(costs, results, limits=limits))
    print(json.dumps({"costs": asdict(costs), "limits": asdict(limits), "profiles": results}))


if __name__ == "__main__":
    main()
