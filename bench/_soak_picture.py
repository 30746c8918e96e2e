"""The soak's picture (one panel per figure over time, faults marked) and its one-screen summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soak import Fault


PANELS = [
    ("rss_mb", "server RSS (MB)"),
    ("py_blocks_k", "Python blocks (thousands)"),
    ("fds", "open descriptors"),
    ("tasks", "asyncio tasks"),
    ("loop_lag_ms", "event-loop lag (ms)"),
    ("db_connections", "MongoDB connections"),
    ("clients", "connected clients"),
    (("p50_ms", "p99_ms"), "ack latency (ms)"),
    (("send_ms_mean", "send_ms_p99_under"), "server send_message (ms)"),
    (("db_read_p50_ms", "db_read_max_ms", "db_commit_p50_ms", "db_commit_max_ms"), "database probes (ms)"),
    (("cpu_pct", "db_cpu_pct", "driver_cpu_pct"), "CPU (% of a core)"),
    (("acked", "failed", "lost", "duplicated"), "messages (cumulative)"),
]


def plot(samples: list[dict], faults: list[Fault], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(10, 2.1 * len(PANELS)), sharex=True)
    for axis, (keys, label) in zip(axes, PANELS):
        for key in (keys,) if isinstance(keys, str) else keys:
            series = [s.get(key) for s in samples]
            if any(isinstance(v, list) for v in series):  # one line per server process
                for index in range(max(len(v) for v in series if isinstance(v, list))):
                    axis.plot(minutes, [v[index] if isinstance(v, list) and len(v) > index else None for v in series],
                              label=f"{key} process {index + 1}" if len(samples[0].get(key) or []) > 1 else key)  # fmt: skip
            else:
                axis.plot(minutes, series, label=key)
        for fault in faults:
            if fault.at is not None:
                axis.axvline(fault.at / 60, color="red", linestyle=":", linewidth=1)
        if label.endswith("(ms)") and "lag" not in label:
            axis.set_yscale("log")  # a fault's seconds-long acks would flatten the milliseconds of the rest
        axis.set_ylabel(label, fontsize=8)
        axis.grid(alpha=0.3)
        if not isinstance(keys, str) or any(isinstance(s.get(keys), list) and len(s[keys]) > 1 for s in samples[:1]):
            axis.legend(fontsize=7, loc="upper left")
    for fault in faults:
        if fault.at is not None:
            axes[0].annotate(fault.name, (fault.at / 60, 1), xycoords=("data", "axes fraction"), fontsize=7,
                             color="red", rotation=0, va="bottom")  # fmt: skip
    axes[-1].set_xlabel("minutes")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def screen(result: dict) -> str:
    lines = [
        f"soak: {result['minutes']} min, {result['processes']} process(es), peak {result['clients_peak']} clients, "
        f"load {result['loadavg_1m_samples'][0]}-{result['loadavg_1m_samples'][1]}",
        f"messages: {result['acked']} acked, {result['lost']} lost, {result['duplicated']} duplicated, "
        f"{result['failed_sends']} sends not acked",
        f"RSS: {result['rss_start_mb']} MB idle, {result['rss_warm_mb']} warm, {result['rss_end_mb']} end "
        f"({result['rss_growth_pct']} %), {result['rss_after_mb']} after the clients left; Python blocks "
        f"{result['py_blocks_k_warm']}k warm, {result['py_blocks_k_end']}k end",
        f"descriptors: {result['fd_before']} before, {result['fd_loaded']} loaded, {result['fd_after']} after "
        f"(delta {result['fd_delta']}; db connections delta {result['db_connections_delta']})",
        f"tasks: {result['tasks_before']} before, {result['tasks_loaded']} loaded, {result['tasks_after']} after "
        f"({result['settle_s']} s after the clients left)",
        f"ack latency: p50 {result['p50_ms']} ms; p99 {result['p99_ms_first']} ms first tenth, "
        f"{result['p99_ms_last']} ms last tenth; max loop lag {result['max_loop_lag_ms']} ms "
        f"(client {result['max_client_lag_ms']} ms)",
        f"server side: send_message mean {result['send_ms_first']} ms first tenth, {result['send_ms_last']} ms "
        f"last; database CPU {result['db_cpu_pct_first']} % first tenth, {result['db_cpu_pct_last']} % last; "
        f"journaled commit p99 {result['db_commit_p99_ms_first']} ms first tenth, {result['db_commit_p99_ms_last']} ms last",
        f"mix: {result['visitors']} visitors, {result['uploads']} uploads ({result['upload_errors']} failed), "
        f"{result['downloads']} downloads ({result['download_errors']} failed), {result['calls']} calls "
        f"({result['call_errors']} failed), {result['blips']} blips, {result['reconnects']} reconnects, "
        f"{result['reloads']} reloads, slow reader {result['slow_reader_frames']} frames / "
        f"{result['slow_reader_cuts']} cuts",
    ]
    lines += [f"fault: {f['name']} at {f['at_s']} s, back at {f['recovered_s']} s" for f in result["faults"]]
    return "\n".join(lines)


