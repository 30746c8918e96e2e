"""Pure media processing: sanitize uploads, describe them, make thumbnails.

Nothing here touches GridFS, requests or sockets; the upload and download paths call the
async entry points of `pool` (work in the bounded media pool) or, in a worker already off
the loop, the pure functions of `images` and `audio`.
"""

from voice.processing.audio import WAVEFORM_POINTS, SanitizedVoice, voice_sanitize
from voice.processing.images import THUMBNAIL_TYPE, SanitizedImage, image_sanitize, image_thumbnail
from voice.processing.pool import (
    media_executor,
    media_make_thumbnail,
    media_pool_shutdown,
    media_process_image,
    media_process_voice,
)

__all__ = [
    "THUMBNAIL_TYPE",
    "WAVEFORM_POINTS",
    "SanitizedImage",
    "SanitizedVoice",
    "image_sanitize",
    "image_thumbnail",
    "media_executor",
    "media_make_thumbnail",
    "media_pool_shutdown",
    "media_process_image",
    "media_process_voice",
    "voice_sanitize",
]
