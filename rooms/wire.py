"""The wire shapes of rooms and messages (contract §2–§3), built from stored documents.

Key order of a message is part of the web client's contract:
`username, message, type, url, _id, createdAt` (+ `callInitiator` for call notices).
Media are stored as server paths (`/api/voice/<id>`); on the wire they become absolute URLs
with the base the caller passes (`PUBLIC_URL`, else the request's scheme and host).
"""

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, truncated to milliseconds: the precision MongoDB stores, so emitted == stored."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and `Z`, as JavaScript's `toISOString()`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message_wire(doc: dict, *, media_base: str) -> dict:
    url = doc.get("url")
    wire = {
        "username": doc["username"],
        "message": doc["message"],
        "type": doc["type"],
        "url": f"{media_base}{url}" if url else None,
        "_id": str(doc["_id"]),
        "createdAt": iso_timestamp(doc["createdAt"]),
    }
    if "callInitiator" in doc:
        wire["callInitiator"] = doc["callInitiator"]
    return wire
