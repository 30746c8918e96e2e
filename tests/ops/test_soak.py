"""The soak (`bench/soak.py`) as a user runs it, for one minute at a tenth of its clients.

The soak is a benchmark: its figures (RSS growth, p99) are read by people from its picture
and its summary, not asserted here. What this checks is that the tool works end to end —
it starts its own database, Redis and two Daphne processes, survives its own faults (the
database SIGKILLed and restarted, Redis restarted, a server SIGTERMed and restarted), writes
its JSONL, its PNG, its lost.json and its last-line summary — and that no member gets a
message twice live, across the faults.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

SUMMARY_KEYS = {
    "minutes", "acked", "lost", "duplicated", "rss_warm_mb", "rss_end_mb", "rss_growth_pct", "fd_delta",
    "p99_ms_first", "p99_ms_last", "tasks_delta", "faults", "reloads",
}  # fmt: skip
SAMPLE_KEYS = {"t", "rss_mb", "fds", "tasks", "loop_lag_ms", "db_connections", "clients", "acked", "lost", "duplicated", "p99_ms"}
FAULTS = ["database SIGKILL", "redis restart", "server SIGTERM"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GUARD_SECONDS = 900  # against a hang only


def test_a_one_minute_soak_with_faults_runs_end_to_end_and_accounts_for_every_acknowledged_message(tmp_path):
    command = [sys.executable, "bench/soak.py", "--minutes", "1", "--scale", "0.1", "--faults", "--sample", "2",
               "--warm-idle", "3", "--settle", "5", "--out", str(tmp_path)]  # fmt: skip
    run = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=GUARD_SECONDS)
    assert run.returncode == 0, run.stderr[-4000:]

    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["acked"] > 0
    assert summary["duplicated"] == 0
    # Every copy still owed at the end is named in lost.json with whom it is owed to (the
    # loss claim itself is read from the 30-minute runs: docs/soak.md names an open case,
    # a visitor leaving during a Redis restart, that a one-minute run can hit).
    owed = json.loads((tmp_path / "lost.json").read_text())
    assert sum(len(entry["owed_to"]) for entry in owed) == summary["lost"]
    assert [fault["name"] for fault in summary["faults"]] == FAULTS
    assert summary["reloads"] > 0  # the clients the restarts disconnected came back

    samples = [json.loads(line) for line in (tmp_path / "soak.jsonl").read_text().splitlines()]
    assert all(SAMPLE_KEYS <= sample.keys() for sample in samples)
    assert {len(sample["rss_mb"]) for sample in samples} == {2}  # both processes, every sample
    assert max(sample["clients"] for sample in samples) > 0
    assert (tmp_path / "soak.png").read_bytes()[:8] == PNG_SIGNATURE
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
