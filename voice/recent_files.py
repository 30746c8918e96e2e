"""The bytes of recently stored media, per process: what a room fetches right after an upload
is served from memory, not decoded chunk by chunk out of the database again.

Why. When a voice note or an image is sent, every member of the room fetches it within
seconds, and each fetch makes the database read, decode and re-encode every chunk (the
embedded server does it in Python: ~4 ms of its CPU per MB). The bytes were in this
process's memory a moment before, since the upload wrote them; so the store keeps them:
files of at most `MEDIA_CACHE_FILE_BYTES`, at most `MEDIA_CACHE_BYTES` in all, the least
recently used out first. `MEDIA_CACHE_BYTES=0` turns it off.

Never a deleted file. Only bytes are cached: a download still reads the file's document
from the database first (`voice.gridfs_store.GridFSStore.open`), so a file deleted by any
process is a 404 whatever this cache holds, and the bytes are used only when their length
is the stored length. A stored file never changes (an import restores a file's own bytes
under its own id). Deletes in this process drop the bytes too, to free the memory.

Concurrency: used from the event loop only, with no await inside, so without a lock.
"""

from __future__ import annotations

from collections import OrderedDict

from bson import ObjectId
from django.conf import settings


class RecentFiles:
    """A byte-bounded LRU of whole files by id."""

    def __init__(self) -> None:
        self._files: OrderedDict[ObjectId, bytes] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def fits(length: int) -> bool:
        """Whether a file of `length` bytes would be kept at all."""
        return 0 < length <= min(settings.MEDIA_CACHE_FILE_BYTES, settings.MEDIA_CACHE_BYTES)

    def put(self, file_id: ObjectId, data: bytes) -> None:
        if not self.fits(len(data)):
            return
        self.drop([file_id])
        self._files[file_id] = data
        self._bytes += len(data)
        while self._bytes > settings.MEDIA_CACHE_BYTES:
            _, oldest = self._files.popitem(last=False)
            self._bytes -= len(oldest)

    def get(self, file_id: ObjectId, *, length: int) -> bytes | None:
        """The file's bytes if held and `length` long (the stored length), else None."""
        data = self._files.get(file_id)
        if data is None or len(data) != length:
            return None
        self._files.move_to_end(file_id)
        return data

    def drop(self, file_ids) -> None:
        for file_id in file_ids:
            data = self._files.pop(file_id, None)
            if data is not None:
                self._bytes -= len(data)

    @property
    def nbytes(self) -> int:
        return self._bytes
