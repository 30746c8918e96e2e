"""What media processing costs: per item, and items/s through the pool at 1 and 2 workers.

Usage: python bench/media_processing.py [--rounds 5] [--items 8]
Prints JSON lines (not a test; asserts nothing). Items:
  photo_lossless  a ~3 MB 4000×3000 phone-like JPEG with EXIF/GPS, orientation 1 (segments dropped)
  photo_rotated   the same with orientation 6 (decoded, turned, re-encoded)
  voice_60s       a 60 s WebM/Opus note with tags (remuxed, decoded for duration and waveform)
  thumbnail_320   a 320-wide WebP of the stored photo
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=8)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    from tests import media_factories
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
