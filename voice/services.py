"""Writes of media: an upload processed into the media store, thumbnails, deleting files.

An upload is parsed as it is read. Its type is decided from its first bytes (415 before the
rest is read); the file part is then held in memory up to its limit (`MAX_*_BYTES`, 413
past it), because it must be processed whole before anything is stored: decoded to prove it
is what it claims (415), measured against `MAX_IMAGE_PIXELS` / `MAX_VOICE_SECONDS`, stripped
of identifying metadata and described (`voice.processing`, in the bounded media pool, off the
event loop). Only the sanitized bytes are written, with their description, chunk by chunk;
a failure while writing aborts the file, which removes what was written, so a failed upload
leaves nothing behind. Once stored, `voice.signals.media_stored` is sent: `rooms` touches
the room on it (voice never imports rooms).

Memory: one upload holds its file (≤ 10 MiB by default) and, while processing, the
sanitized copy; how many run at once is bounded by the pool (queued jobs hold only the input
their request already holds) and by the per-IP upload rate limit.

Thumbnails (`media_thumbnail`) are made on the first request of a width, in the pool, and
stored; later requests read the stored one.
"""

import logging
from dataclasses import dataclass

from bson import ObjectId
from django.conf import settings

from chillout_project import metrics
from chillout_project.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from chillout_project.validators import check_username
from voice.detect import HEAD_BYTES
from voice.kinds import IMAGE, MediaKind, media_path_parse
from voice.media import (
    MediaFile,
    media_delete,
    media_delete_by_path,
    media_open,
    media_thumbnail_open,
    media_thumbnail_store,
    media_upload_open,
)
from voice.processing import THUMBNAIL_TYPE, media_make_thumbnail, media_process_image, media_process_voice
from voice.multipart import MultipartStream, PartData, PartEnd, PartStart
from voice.signals import media_stored

__all__ = [
    "UploadedMedia",
    "check_thumbnail_width",
    "media_delete",
    "media_delete_by_path",
    "media_path_parse",
    "media_thumbnail",
    "media_upload",
]

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
MAX_TEXT_FIELD = 4096


@dataclass
class UploadedMedia:
    file_id: ObjectId
    content_type: str
    length: int  # as stored (sanitized)
    description: dict


class _FilePart:
    """One file part: the head decides the type, then the bytes are held up to the kind's limit."""

    def __init__(self, kind: MediaKind, room_id: str, filename: str):
        self.kind = kind
        self.room_id = room_id
        self.filename = filename or kind.name
        self.data = bytearray()
        self.content_type: str | None = None
        self.ended = False

    async def write(self, data: bytes) -> None:
        if len(self.data) + len(data) > self.kind.max_bytes:
            raise PayloadTooLarge(f"{self.kind.name} file larger than {self.kind.max_bytes} bytes")
        self.data += data
        if self.content_type is None and len(self.data) >= HEAD_BYTES:
            self._detect()

    def _detect(self) -> None:
        self.content_type = self.kind.detect(bytes(self.data[:HEAD_BYTES]))
        if self.content_type is None:
            raise UnsupportedMediaType(f"the {self.kind.name} file is not a supported type")

    async def finish(self, username: str) -> UploadedMedia:
        if not self.data:
            raise InvalidInput(f"the {self.kind.name} file is empty")
        if self.content_type is None:
            self._detect()
        data, self.data = bytes(self.data), bytearray()
        sanitized, description = await _process(kind=self.kind, data=data, content_type=self.content_type)
        del data
        stream = media_upload_open(
            kind=self.kind,
            room_id=self.room_id,
            filename=self.filename,
            content_type=sanitized.content_type,
            description=description,
        )
        try:
            for start in range(0, len(sanitized.data), READ_CHUNK * 16):
                await stream.write(sanitized.data[start : start + READ_CHUNK * 16])
            file_id = await stream.close(username=username)
        except BaseException:
            await _abort(stream, self.kind)
            raise
        return UploadedMedia(file_id, sanitized.content_type, len(sanitized.data), description)


async def _process(*, kind: MediaKind, data: bytes, content_type: str):
    """Decode, cap, strip and describe, in the media pool: (sanitized, description)."""
    if kind is IMAGE:
        image = await media_process_image(data=data, content_type=content_type)
        return image, {"width": image.width, "height": image.height}
    voice = await media_process_voice(data=data, content_type=content_type)
    return voice, {"duration": voice.duration_ms, "waveform": list(voice.waveform)}


async def _abort(stream, kind: MediaKind) -> None:
    try:
        await stream.abort()
    except Exception:
        logger.exception("could not abort a partial %s upload", kind.name)


async def media_upload(*, kind: MediaKind, room_id: str, content_type: str, body) -> UploadedMedia:
    """Stream the `kind` file of a multipart body into the media store, then announce it (`media_stored`).

    `body` is a file-like object (`read(n)`): Django's request, whose body the ASGI handler
    has already received (capped by `BodyLimitMiddleware`).
    """
    parser = MultipartStream(content_type)
    part: _FilePart | None = None
    current = None  # what the part being parsed is: a _FilePart, a bytearray for username, or None
    username_raw: bytearray | None = None
    try:
        while chunk := body.read(READ_CHUNK):
            for event in parser.feed(chunk):
                if isinstance(event, PartStart):
                    current = None
                    if event.filename is not None:
                        if event.name != kind.name:
                            raise InvalidInput(f"unexpected file field {event.name!r}; expected {kind.name!r}")
                        if part is not None:
                            raise InvalidInput(f"exactly one {kind.name!r} file expected")
                        part = current = _FilePart(kind, room_id, event.filename)
                    elif event.name == "username":
                        username_raw = current = bytearray()
                elif isinstance(event, PartData):
                    if isinstance(current, _FilePart):
                        await current.write(event.data)
                    elif isinstance(current, bytearray):
                        current += event.data
                        if len(current) > MAX_TEXT_FIELD:
                            raise InvalidInput("username field too long")
                elif isinstance(event, PartEnd):
                    if isinstance(current, _FilePart):
                        current.ended = True
                    current = None
        if part is None:
            raise InvalidInput(f"No {kind.name} file provided")
        if not part.ended:
            raise InvalidInput("incomplete multipart body")
        username = check_username(username_raw.decode("utf-8", "replace") if username_raw is not None else None)
        uploaded = await part.finish(username)
    finally:
        if part is not None:
            part.data = bytearray()
    await media_stored.asend(sender=media_upload, room_id=room_id, kind=kind, file_id=uploaded.file_id, username=username)
    metrics.upload_observe(kind=kind.name, size=uploaded.length)
    return uploaded


def check_thumbnail_width(raw: str) -> int:
    """`?w=`: one of THUMBNAIL_WIDTHS, else InvalidInput (400)."""
    widths = settings.THUMBNAIL_WIDTHS
    try:
        width = int(raw)
    except ValueError:
        width = None
    if width not in widths:
        raise InvalidInput(f"w must be one of {', '.join(str(w) for w in widths)}")
    return width


async def media_thumbnail(*, file_id: ObjectId, width: int) -> MediaFile | None:
    """The `width` thumbnail (WebP) of image `file_id`, made and stored on first request;
    None if there is no such image.

    Two first requests at once may both make it; the store keeps one (unique index) and both
    answer with the stored one."""
    stored = await media_thumbnail_open(file_id=file_id, width=width)
    if stored is not None:
        return stored
    image = await media_open(kind=IMAGE, file_id=file_id)
    if image is None:
        return None
    data = b"".join([piece async for piece in image.read_range(start=0, length=image.length)])
    thumbnail = await media_make_thumbnail(data=data, width=width)
    await media_thumbnail_store(kind=IMAGE, file_id=file_id, width=width, data=thumbnail, content_type=THUMBNAIL_TYPE)
    return await media_thumbnail_open(file_id=file_id, width=width)
