"""The two kinds of media: where each is stored, what it accepts, how it is addressed."""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from voice.detect import detect_audio, detect_image


@dataclass(frozen=True)
class MediaKind:
    name: str  # "voice" or "image": the form field and the URL segment
    bucket: str  # GridFS bucket name
    detect: Callable[[bytes], str | None]
    fallback_type: str  # served for legacy files stored without a detected type
    limit_setting: str

    @property
    def max_bytes(self) -> int:
        return getattr(settings, self.limit_setting)

    def path(self, file_id) -> str:
        return f"/api/{self.name}/{file_id}"


VOICE = MediaKind("voice", "voices", detect_audio, "audio/webm", "MAX_VOICE_BYTES")
IMAGE = MediaKind("image", "images", detect_image, "image/jpeg", "MAX_IMAGE_BYTES")
KINDS = {kind.name: kind for kind in (VOICE, IMAGE)}
