"""The two kinds of media: what each accepts and how it is addressed (where it is stored is
`voice.gridfs_store`'s business)."""

from collections.abc import Callable
from dataclasses import dataclass

from bson import ObjectId
from django.conf import settings

from voice.detect import detect_audio, detect_image


@dataclass(frozen=True)
class MediaKind:
    name: str  # "voice" or "image": the form field and the URL segment
    detect: Callable[[bytes], str | None]
    fallback_type: str  # served for legacy files stored without a detected type
    limit_setting: str

    @property
    def max_bytes(self) -> int:
        return getattr(settings, self.limit_setting)

    def path(self, file_id) -> str:
        return f"/api/{self.name}/{file_id}"


VOICE = MediaKind("voice", detect_audio, "audio/webm", "MAX_VOICE_BYTES")
IMAGE = MediaKind("image", detect_image, "image/jpeg", "MAX_IMAGE_BYTES")
KINDS = {kind.name: kind for kind in (VOICE, IMAGE)}


def media_path_parse(path: str) -> tuple[MediaKind, ObjectId] | None:
    """`/api/voice/<24hex>` (or image), the inverse of `MediaKind.path` → (kind, id); None for anything else."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "" or parts[1] != "api" or parts[2] not in KINDS:
        return None
    if len(parts[3]) != 24 or not ObjectId.is_valid(parts[3]):
        return None
    return KINDS[parts[2]], ObjectId(parts[3])
