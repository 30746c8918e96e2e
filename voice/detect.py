"""What a file is, by its first bytes, never by what the client declared.

The `filetype` library reads the magic numbers; this module maps its answer onto the types
Chillout accepts and serves. Containers are named by bucket: a WebM or MP4 container in the
voice bucket is audio (`<audio>` and the web client expect `audio/…`, never `video/…`).
"""

import filetype

HEAD_BYTES = 8192  # filetype looks at no more than this

AUDIO_TYPES = {
    "video/webm": "audio/webm",
    "audio/webm": "audio/webm",
    "audio/ogg": "audio/ogg",
    "video/ogg": "audio/ogg",
    "audio/mp4": "audio/mp4",
    "video/mp4": "audio/mp4",
    "audio/x-m4a": "audio/mp4",
    "video/quicktime": "audio/mp4",
    "audio/aac": "audio/aac",
    "audio/mpeg": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wav": "audio/wav",
}

IMAGE_TYPES = {
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}


def _detect(head: bytes, accepted: dict[str, str]) -> str | None:
    kind = filetype.guess(head)
    return accepted.get(kind.mime) if kind else None


def detect_audio(head: bytes) -> str | None:
    """The served `audio/…` type of a file starting with `head`, or None if not accepted audio."""
    return _detect(head, AUDIO_TYPES)


def detect_image(head: bytes) -> str | None:
    """The served `image/…` type (PNG, JPEG, GIF, WebP), or None (SVG, HTML, anything else)."""
    return _detect(head, IMAGE_TYPES)
