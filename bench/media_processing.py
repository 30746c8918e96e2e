"""What media processing costs: per item, and items/s through the pool at 1 and 2 workers;
with `--through-server`, uploads end to end through a real server.

Usage: python bench/media_processing.py [--rounds 5] [--items 8]
       python bench/media_processing.py --through-server [--project DIR] [--rounds 8] [--clients 4]
Prints JSON lines (not a test; asserts nothing). Items:
  photo_lossless  a ~3 MB 4000×3000 phone-like JPEG with EXIF/GPS, orientation 1 (segments dropped)
  photo_rotated   the same with orientation 6 (decoded, turned, re-encoded)
  voice_60s       a 60 s WebM/Opus note with tags (remuxed, decoded for duration and waveform)
  thumbnail_320   a 320-wide WebP of the stored photo

`--through-server` starts a fresh embedded database and a Daphne server running the code of
`--project` (default: this checkout; pass an export of another commit, e.g. main before
issue 13, to get the "before" figures), and POSTs each item as the web client does: `rounds`
sequential uploads (latency p50/p90, upload answered = file stored), then `clients`
concurrent clients doing `rounds` uploads each (uploads/s; meanwhile GET /api/health every
50 ms shows whether the event loop stalls), and the first 320-wide thumbnail
request (`?w=320`, made then stored) against a later one (read back). The latency a change
adds is the difference between two such runs on the same inputs.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chillout_project.settings")


def loadavg_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def per_item_ms(function, rounds: int) -> tuple[float, float, float]:
    """Median and best wall ms, and median CPU ms (less sensitive to a busy machine)."""
    times, cpu = [], []
    for _ in range(rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        function()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return statistics.median(times), min(times), statistics.median(cpu)


class RunnableSampler(threading.Thread):
    """Every 2 ms, how many of this process's other threads are runnable (state R).

    A thread waiting for the GIL sleeps (S); one waiting for a busy CPU stays R. So on a
    loaded machine, the share of samples with two threads runnable still shows whether two
    media jobs proceed at once (GIL released) even when they cannot get two cores.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        own = str(threading.get_native_id())
        tasks = Path("/proc/self/task")
        while not self.stopped.wait(0.002):
            running = 0
            for task in tasks.iterdir():
                if task.name == own:
                    continue
                try:
                    running += (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:
                    continue  # the thread ended meanwhile
            self.samples.append(running)

    def share_with_two_running(self) -> float:
        return sum(count >= 2 for count in self.samples) / max(1, len(self.samples))


async def pool_throughput(make_job, items: int) -> dict:
    """Items per second, the cores this process used meanwhile (CPU seconds / wall), and the
    share of time two threads were runnable at once."""
    sampler = RunnableSampler()
    sampler.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(make_job() for _ in range(items)))
    wall = time.perf_counter() - started
    cores = (time.process_time() - cpu_started) / wall
    sampler.stopped.set()
    sampler.join()
    return {"items_per_s": round(items / wall, 2), "cores_used": round(cores, 2), "two_running": round(sampler.share_with_two_running(), 2)}


def upload_figures(url: str, *, kind: str, data: bytes, content_type: str, rounds: int, clients: int) -> dict:
    """Sequential latency, then concurrent uploads/s, of one item through the server."""
    import httpx

    def post(client) -> "httpx.Response":
        response = client.post(f"/api/room/bench-{kind}/{kind}", files={kind: ("blob", data, content_type)})
        assert response.status_code == 200, response.text
        return response

    with httpx.Client(base_url=url, timeout=300) as client:
        stored = post(client)  # warm-up (imports, the pool's threads, the first GridFS writes)
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            post(client)
            samples.append((time.perf_counter() - started) * 1000)
        stored_bytes = len(client.get(stored.json()["url"]).content)

    def worker():
        with httpx.Client(base_url=url, timeout=300) as client:
            for _ in range(rounds):
                post(client)

    probes: list[float] = []
    done = threading.Event()

    def probe():
        """The event loop's responsiveness meanwhile: GET /api/health every 50 ms."""
        with httpx.Client(base_url=url, timeout=60) as client:
            while not done.wait(0.05):
                started = time.perf_counter()
                client.get("/api/health")
                probes.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    prober = threading.Thread(target=probe)
    prober.start()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    done.set()
    prober.join()
    samples.sort()
    probes.sort()
    return {
        "upload_ms_p50": round(statistics.median(samples), 1),
        "upload_ms_p90": round(samples[int(len(samples) * 0.9) - 1 if len(samples) > 1 else 0], 1),
        f"uploads_per_s_{clients}_clients": round(clients * rounds / elapsed, 2),
        "health_ms_p50_during": round(statistics.median(probes), 1) if probes else None,
        "health_ms_max_during": round(probes[-1], 1) if probes else None,
        "sent_bytes": len(data),
        "stored_bytes": stored_bytes,
        "url": stored.json()["url"],
    }


def thumbnail_figures(url: str, path: str) -> dict:
    import httpx

    with httpx.Client(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        first = client.get(path, params={"w": 320})
        made_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        again = client.get(path, params={"w": 320})
        stored_ms = (time.perf_counter() - started) * 1000
    if first.status_code != 200:
        return {"thumbnail": f"status {first.status_code}"}
    return {"thumbnail_first_ms": round(made_ms, 1), "thumbnail_stored_ms": round(stored_ms, 1),
            "thumbnail_bytes": len(again.content)}


def through_server(args, tagged_media) -> None:
    from _harness import embedded_database, server_process

    photo = tagged_media.jpeg_photo(orientation=6)
    upright = tagged_media.jpeg_photo(orientation=1)
    note = tagged_media.voice("webm", seconds=60.0, noisy=True)
    project = Path(args.project).resolve()
    with embedded_database() as database:
        with server_process(f"{database.uri}/chillout_bench", cwd=project, UPLOAD_RATE="0") as (url, pid):
            for item, kind, data, content_type in (
                ("photo_3MB_rotated", "image", photo, "image/jpeg"),
                ("photo_3MB_upright", "image", upright, "image/jpeg"),
                ("voice_60s_webm", "voice", note, "audio/webm"),
            ):
                line = {"through_server": project.name, "item": item, "loadavg_1m_before": loadavg_1m()}
                line.update(upload_figures(url, kind=kind, data=data, content_type=content_type,
                                           rounds=args.rounds, clients=args.clients))  # fmt: skip
                if kind == "image":
                    line.update(thumbnail_figures(url, line["url"]))
                line["loadavg_1m"] = loadavg_1m()
                print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--through-server", action="store_true", help="uploads end to end through a real server")
    parser.add_argument("--project", default=str(Path(__file__).resolve().parent.parent),
                        help="with --through-server: the checkout whose server runs (default: this one)")
    parser.add_argument("--clients", type=int, default=4, help="with --through-server: concurrent uploaders")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from tests.factories import tagged_media as media_factories

    if args.through_server:
        through_server(args, media_factories)
        return
    from voice.processing import (
        image_sanitize,
        image_thumbnail,
        media_pool_shutdown,
        media_process_image,
        media_process_voice,
        voice_sanitize,
    )

    photo = media_factories.jpeg_photo(orientation=1)
    rotated = media_factories.jpeg_photo(orientation=6)
    note = media_factories.voice("webm", seconds=60.0, noisy=True)
    stored_photo = image_sanitize(data=photo, content_type="image/jpeg", max_pixels=40_000_000).data
    print(json.dumps({"inputs": {"photo_bytes": len(photo), "voice_bytes": len(note)}, "loadavg_1m": loadavg_1m()}))

    items = {
        "photo_lossless": (
            lambda: image_sanitize(data=photo, content_type="image/jpeg", max_pixels=40_000_000),
            lambda: media_process_image(data=photo, content_type="image/jpeg"),
        ),
        "photo_rotated": (
            lambda: image_sanitize(data=rotated, content_type="image/jpeg", max_pixels=40_000_000),
            lambda: media_process_image(data=rotated, content_type="image/jpeg"),
        ),
        "voice_60s": (
            lambda: voice_sanitize(data=note, content_type="audio/webm", max_seconds=600),
            lambda: media_process_voice(data=note, content_type="audio/webm"),
        ),
        "thumbnail_320": (lambda: image_thumbnail(data=stored_photo, width=320), None),
    }
    for name, (direct, pooled) in items.items():
        median_ms, best_ms, cpu_ms = per_item_ms(direct, args.rounds)
        line = {
            "item": name,
            "per_item_ms_median": round(median_ms, 1),
            "per_item_ms_min": round(best_ms, 1),
            "per_item_cpu_ms": round(cpu_ms, 1),
        }
        if pooled is not None:
            for workers in (1, 2):
                settings.MEDIA_WORKERS = workers
                media_pool_shutdown()
                for key, value in asyncio.run(pool_throughput(pooled, args.items)).items():
                    line[f"{key}_{workers}_workers"] = value
            media_pool_shutdown()
        line["loadavg_1m"] = loadavg_1m()
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
