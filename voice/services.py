"""Writes of media: streaming an upload into the media store, deleting files.

An upload is parsed as it is read and written to the store chunk by chunk, so a file is
never held whole in memory. Its type is decided from its first bytes before anything is
stored. Whatever goes wrong midway (too large, wrong type, malformed body, client gone),
the partial file is aborted, which removes what was written: a failed upload leaves
nothing behind. Once stored, `voice.signals.media_stored` is sent: `rooms` touches the
room on it (voice never imports rooms).
"""

import logging
from dataclasses import dataclass

from bson import ObjectId

from chillout_project import metrics
from chillout_project.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from chillout_project.validators import check_username
from voice.detect import HEAD_BYTES
from voice.kinds import MediaKind, media_path_parse
from voice.media import MediaUpload, media_delete, media_delete_by_path, media_upload_open
from voice.multipart import MultipartStream, PartData, PartEnd, PartStart
from voice.signals import media_stored

__all__ = ["UploadedMedia", "media_delete", "media_delete_by_path", "media_path_parse", "media_upload"]

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
MAX_TEXT_FIELD = 4096


@dataclass
class UploadedMedia:
    file_id: ObjectId
    content_type: str
    length: int


class _FilePart:
    """One file part on its way into the store: buffers the head, detects, then streams."""

    def __init__(self, kind: MediaKind, room_id: str, filename: str):
        self.kind = kind
        self.room_id = room_id
        self.filename = filename or kind.name
        self.head = b""
        self.length = 0
        self.content_type: str | None = None
        self.stream: MediaUpload | None = None
        self.ended = False

    async def write(self, data: bytes) -> None:
        self.length += len(data)
        if self.length > self.kind.max_bytes:
            raise PayloadTooLarge(f"{self.kind.name} file larger than {self.kind.max_bytes} bytes")
        if self.stream is None:
            self.head += data
            if len(self.head) >= HEAD_BYTES:
                await self._open()
        else:
            await self.stream.write(data)

    async def _open(self) -> None:
        self.content_type = self.kind.detect(self.head)
        if self.content_type is None:
            raise UnsupportedMediaType(f"the {self.kind.name} file is not a supported type")
        self.stream = media_upload_open(
            kind=self.kind, room_id=self.room_id, filename=self.filename, content_type=self.content_type
        )
        head, self.head = self.head, b""
        await self.stream.write(head)

    async def finish(self, username: str) -> UploadedMedia:
        if self.length == 0:
            raise InvalidInput(f"the {self.kind.name} file is empty")
        if self.stream is None:
            await self._open()
        file_id = await self.stream.close(username=username)  # the field may come after the file part
        return UploadedMedia(file_id, self.content_type, self.length)

    async def abort(self) -> None:
        if self.stream is not None and not self.stream.closed:
            try:
                await self.stream.abort()
            except Exception:
                logger.exception("could not abort a partial %s upload", self.kind.name)


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
    except BaseException:
        if part is not None:
            await part.abort()
        raise
    await media_stored.asend(sender=media_upload, room_id=room_id, kind=kind, file_id=uploaded.file_id, username=username)
    metrics.upload_observe(kind=kind.name, size=uploaded.length)
    return uploaded
