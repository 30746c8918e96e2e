"""A capacity model re-derived from measured per-event costs, not typed.

    .venv/bin/python bench/run.py --server daphne --scenarios chat-closed,history-fresh,fanout,connections,rooms,churn,media > run.jsonl
    .venv/bin/python bench/scale.py --setups single,pair --figures cpu > scale.jsonl      # optional: the Redis costs
    .venv/bin/python bench/capacity.py run.jsonl [scale.jsonl] [--server daphne] [--utilisation 0.6]

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
the CPU per user, the users one core holds at `--utilisation` (headroom for bursts, GC and
reconnect storms), the memory they take, the messages per second and copies per second that
is, and the sizing for 10,000 and 100,000 concurrent users. It prints text, then one JSON line.
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
        "redis_cpu_s_per_s": messages * (costs.redis_message_s or 0.0),
        "memory_bytes": costs.socket_bytes + costs.room_bytes / profile.room_size,
    }


def model(profile: Profile, costs: Costs, *, utilisation: float) -> dict:
    single = per_user(profile, costs, clustered=False)
    clustered = per_user(profile, costs, clustered=True)
    users_per_core = utilisation / single["cpu_s_per_s"]
    users_per_core_clustered = utilisation / clustered["cpu_s_per_s"]
    sizing = {}
    for users in TARGETS:
        processes = max(1, math.ceil(users / users_per_core_clustered))
        sizing[str(users)] = {
            "server_processes": processes,  # one per core: a Daphne process uses one
            "memory_per_process_mb": round((PROCESS_MEMORY_BYTES + users / processes * clustered["memory_bytes"]) / MB),
            "messages_per_s": round(users * clustered["messages_per_s"], 1),
            "copies_per_s": round(users * clustered["copies_per_s"]),
            "mongo_writes_per_s": round(users * clustered["messages_per_s"] * MONGO_WRITES_PER_MESSAGE, 1),
            "mongo_cpu_cores_embedded": round(users * clustered["db_cpu_s_per_s"], 2),
            "redis_cpu_cores": round(users * clustered["redis_cpu_s_per_s"], 3),
            "reconnect_storm_s": round(users * (costs.connect_s + costs.page_s) / processes, 1),
        }
    return {
        "profile": asdict(profile),
        "cpu_us_per_user_per_s": round(single["cpu_s_per_s"] * 1e6, 2),
        "cpu_by_kind_pct": {k: round(v * 100 / single["cpu_s_per_s"], 1) for k, v in single["cpu_by_kind"].items()},
        "users_per_core": int(users_per_core),
        "users_per_core_with_redis": int(users_per_core_clustered),
        "memory_mb_at_users_per_core": round((PROCESS_MEMORY_BYTES + users_per_core * single["memory_bytes"]) / MB),
        "messages_per_s_per_core": round(users_per_core * single["messages_per_s"], 1),
        "copies_per_s_per_core": round(users_per_core * single["copies_per_s"]),
        "sizing": sizing,
    }


def text(costs: Costs, results: list[dict], *, utilisation: float) -> str:
    lines = [
        "Per-event costs (server CPU unless said):",
        f"  connect + join_room   {costs.connect_s * 1e3:8.3f} ms",
        f"  history GET (a page)  {costs.page_s * 1e3:8.3f} ms",
        f"  persisted message     {costs.message_s * 1e3:8.3f} ms   (+ {costs.message_db_s * 1e3:.3f} ms database CPU)",
        f"  delivered copy        {costs.copy_s * 1e6:8.1f} µs",
        f"  uploaded MB           {costs.upload_s_per_mb * 1e3:8.1f} ms   downloaded MB {costs.download_s_per_mb * 1e3:.1f} ms",
        f"  idle joined socket    {costs.socket_bytes / 1024:8.1f} KiB   room {costs.room_bytes / 1024:.1f} KiB",
    ]
    if costs.redis_message_s is not None:
        lines.append(f"  with Redis, per message: Redis {costs.redis_message_s * 1e3:.3f} ms, "
                     f"servers +{costs.redis_extra_server_s * 1e3:.3f} ms")  # fmt: skip
    lines.append(f"\nAt {utilisation:.0%} of a core:")
    for result in results:
        lines.append(f"\n{result['profile']['name']}")
        lines.append(f"  {result['cpu_us_per_user_per_s']} µs CPU per user per second ({result['cpu_by_kind_pct']})")
        lines.append(f"  one core: {result['users_per_core']:,} users ({result['users_per_core_with_redis']:,} with Redis), "
                     f"{result['memory_mb_at_users_per_core']} MB, {result['messages_per_s_per_core']} messages/s, "
                     f"{result['copies_per_s_per_core']:,} copies/s")  # fmt: skip
        for users, size in result["sizing"].items():
            lines.append(f"  {int(users):,} users: {size['server_processes']} processes of ~{size['memory_per_process_mb']} MB, "
                         f"{size['messages_per_s']} messages/s, {size['copies_per_s']:,} copies/s, "
                         f"MongoDB {size['mongo_writes_per_s']} writes/s, Redis {size['redis_cpu_cores']} cores, "
                         f"reconnect storm {size['reconnect_storm_s']} s")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jsonl", type=Path, nargs="+", help="bench/run.py output, and optionally bench/scale.py output")
    parser.add_argument("--server", default="daphne")
    parser.add_argument("--utilisation", type=float, default=0.6, help="the share of a core to plan for")
    args = parser.parse_args(argv)
    costs = costs_from(bench_lines(args.jsonl, args.server))
    results = [model(profile, costs, utilisation=args.utilisation) for profile in PROFILES]
    print(text(costs, results, utilisation=args.utilisation))
    print(json.dumps({"costs": asdict(costs), "utilisation": args.utilisation, "profiles": results}))


if __name__ == "__main__":
    main()
