"""The media worker pool: image and audio work off the event loop, at most MEDIA_WORKERS at once.

Threads, not processes: Pillow, FFmpeg and NumPy release the GIL for the heavy parts
(decoding, resampling, encoding), so threads use several cores (bench/media_processing.py
measures it) without pickling up to 10 MiB per job into a child process and back, without
child processes to start, watch and restart, and with the bytes shared in place.

The pool is created on first use (importing this module starts nothing) and shut down by
`media_pool_shutdown()` (the composition root registers it as a shutdown hook). Jobs beyond
the workers wait in the executor's queue; each holds one upload (≤ MAX_*_BYTES) that its
request already holds, so the queue adds no copies, and the upload rate limit bounds how
many requests are waiting. Cancelling the awaiting task (a client that went away) does not
stop a job already running: it finishes and its result is dropped; a job still queued is
not started. MEDIA_WORKERS is read when the pool is created.
"""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.conf import settings

from chillout_project.errors import InvalidInput

from voice.processing.audio import SanitizedVoice, voice_sanitize
from voice.processing.images import SanitizedImage, image_sanitize, image_thumbnail

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def media_executor() -> ThreadPoolExecutor:
    """The process's media pool, created with MEDIA_WORKERS threads on first use."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.MEDIA_WORKERS, thread_name_prefix="media")
        return _executor


def media_pool_shutdown() -> None:
    """Wait for running jobs and stop the threads; a later job starts a new pool."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True, cancel_futures=True)


async def _in_pool(function, /, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(media_executor(), partial(function, **kwargs))


async def media_process_image(*, data: bytes, content_type: str, max_pixels: int | None = None) -> SanitizedImage:
    """image_sanitize in the pool; `max_pixels` defaults to settings.MAX_IMAGE_PIXELS."""
    limit = settings.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    return await _in_pool(image_sanitize, data=data, content_type=content_type, max_pixels=limit)


async def media_process_voice(*, data: bytes, content_type: str, max_seconds: float | None = None) -> SanitizedVoice:
    """voice_sanitize in the pool; `max_seconds` defaults to settings.MAX_VOICE_SECONDS."""
    limit = settings.MAX_VOICE_SECONDS if max_seconds is None else max_seconds
    return await _in_pool(voice_sanitize, data=data, content_type=content_type, max_seconds=limit)


async def media_make_thumbnail(*, data: bytes, width: int) -> bytes:
    """image_thumbnail in the pool; a `width` not in settings.THUMBNAIL_WIDTHS is InvalidInput (400)."""
    if width not in settings.THUMBNAIL_WIDTHS:
        widths = ", ".join(str(allowed) for allowed in settings.THUMBNAIL_WIDTHS)
        raise InvalidInput(f"Thumbnail width must be one of {widths}")
    return await _in_pool(image_thumbnail, data=data, width=width)
