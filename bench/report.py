"""Turn `bench/run.py` JSON lines into the issue's target table (Markdown), servers side by side.

    .venv/bin/python bench/run.py --server original,daphne,uvicorn,granian --original-dir DIR --repeat 3 > runs.jsonl
    .venv/bin/python bench/report.py runs.jsonl

Every figure is derived per run first (a CPU per operation is that run's CPU over that run's
work), then the median over the runs of that server is taken, so a ratio never mixes the
figures of different runs. Ratios are to the first server of the file (`original` when it
was measured). The last row gives the range of the 1-minute load averages seen by each
server's runs. Runs with an `error`, or media runs with a failed transfer, are left out and
counted in the `runs` row. Summary lines (`"summary": "median"`) are ignored.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable

Figure = Callable[[dict], float | None]


def _path(*keys: str) -> Figure:
    def figure(run: dict) -> float | None:
        value = run
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return figure


def _app_cpu_per(work_key: str, scale: float, *, per_second: bool) -> Figure:
    """Server CPU per unit of work: `cpu[0]` is cores over the phase (× seconds when the work is a count)."""

    def figure(run: dict) -> float | None:
        work, cpu = run.get(work_key), run.get("cpu")
        if not work or not cpu:
            return None
        seconds = 1.0 if per_second else run.get("seconds", 0)
        return cpu[0] * seconds / work * scale

    return figure


# (scenario, label, figure, "higher" or "lower" is better)
ROWS: list[tuple[str, str, Figure, str]] = [
    ("fanout", "fan-out to 500, deliveries/s", _path("deliveries_per_s"), "higher"),
    ("fanout", "server CPU per delivered copy, µs", _app_cpu_per("deliveries_per_s", 1e6, per_second=True), "lower"),
    ("connections", "connects/s (2,000 sockets, rooms of 10)", _path("connects_per_s"), "higher"),
    ("connections", "server CPU per connect + join, ms", _app_cpu_per("sockets", 1e3, per_second=False), "lower"),
    ("connections", "RSS per idle connection, KB", _path("rss_kb_per_connection"), "lower"),
    ("fill", "filling a 501-member room, s", _path("fill_s"), "lower"),
    ("fill", "`online_users` copies to fill it", _path("online_users_deliveries"), "lower"),
    ("media", "media upload, MB/s (8 clients, 1 + 10 MB)", _path("upload_MBps"), "higher"),
    ("media", "media download, MB/s", _path("download_MBps"), "higher"),
    ("history-fresh", "GET of an almost empty room, just created, p50 ms", _path("get_small", "p50_ms"), "lower"),
    ("history-fresh", "GET of 1,000 messages written in the last seconds, p50 ms", _path("get_fresh_1k", "p50_ms"), "lower"),
    ("history", "GET of a 10-message room (hours old), p50 ms", _path("get_limit50_10", "p50_ms"), "lower"),
    ("history", "GET of 1,000 messages (hours old), p50 ms", _path("get_full_1k", "p50_ms"), "lower"),
    ("chat-closed", "closed loop, persisted msg/s (100 clients, 10 rooms)", _path("persisted_per_s"), "higher"),
    ("chat-closed", "server CPU per message (10 copies), ms", _app_cpu_per("persisted_per_s", 1e3, per_second=True), "lower"),
    ("chat-open", "500 msg/s offered: lost", _path("lost"), "lower"),
    ("chat-open", "500 msg/s offered: p99 ms", _path("p99_ms"), "lower"),
    ("echo", "send → own echo, p50 ms", _path("p50_ms"), "lower"),
    ("churn", "churn cycles/s (connect, join, send, leave)", _path("cycles_per_s"), "higher"),
]


def runs_read(paths: list[str]) -> list[dict]:
    runs = []
    for path in paths:
        with open(path) as lines:
            for line in lines:
                line = line.strip()
                if line.startswith("{"):
                    run = json.loads(line)
                    if "summary" not in run:
                        runs.append(run)
    return runs


def usable(run: dict) -> bool:
    return "error" not in run and not (run.get("scenario") == "media" and run.get("failed"))


def median_of(runs: list[dict], figure: Figure) -> float | None:
    values = [v for v in (figure(run) for run in runs) if isinstance(v, int | float)]
    return statistics.median(values) if values else None


def cell(value: float | None, reference: float | None) -> str:
    """`value`, and its ratio to `reference` (None in the reference column itself)."""
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".") if value else "0"
    if reference:
        text += f" ({value / reference:.2f}×)"
    return text


def table(runs: list[dict]) -> str:
    servers = list(dict.fromkeys(run["server"] for run in runs))
    by = {(s, sc): [r for r in runs if r["server"] == s and r.get("scenario") == sc and usable(r)]
          for s in servers for sc in {r.get("scenario") for r in runs}}  # fmt: skip
    lines = ["| figure | " + " | ".join(servers) + " |", "| --- |" + " --- |" * len(servers)]
    for scenario, label, figure, _better in ROWS:
        values = [median_of(by.get((s, scenario), []), figure) for s in servers]
        if all(v is None for v in values):
            continue
        lines.append(f"| {label} | " + " | ".join(cell(v, values[0] if i else None) for i, v in enumerate(values)) + " |")
    counts = []
    for s in servers:
        mine = [r for r in runs if r["server"] == s]
        good = sum(usable(r) for r in mine)
        loads = [r["loadavg_1m"] for r in mine if "loadavg_1m" in r]
        counts.append(f"{good}/{len(mine)} ok, load {min(loads):.1f}–{max(loads):.1f}" if loads else "–")
    lines.append("| runs used, 1-min load | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="JSON lines of bench/run.py")
    print(table(runs_read(parser.parse_args().files)))


if __name__ == "__main__":
    main()
