"""Reads of media files."""

from bson import ObjectId
from gridfs.errors import NoFile

from chillout_project.mongo import async_db
from voice.kinds import MediaKind
from voice.storage import media_bucket


async def media_open(*, kind: MediaKind, file_id: ObjectId):
    """An open `AsyncGridOut` of this kind's bucket, or None."""
    try:
        return await media_bucket(kind).open_download_stream(file_id)
    except NoFile:
        return None


async def media_file_in_room(*, kind: MediaKind, file_id: ObjectId, room_id: str) -> bool:
    """True when `file_id` is a file of this kind uploaded to `room_id`."""
    found = await async_db()[f"{kind.bucket}.files"].find_one(
        {"_id": file_id, "metadata.roomId": room_id}, projection={"_id": 1}
    )
    return found is not None
