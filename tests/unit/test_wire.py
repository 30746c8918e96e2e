"""`rooms.wire`: the wire shapes, key order included (the web client's contract §2–§3)."""

import tracemalloc
from datetime import UTC, datetime, timedelta, timezone

import orjson
from bson import ObjectId

from rooms.wire import iso_timestamp, message_part, message_part_kept, message_wire, messages_json, room_json, utc_now
from tests.factories import message_doc

BASE = "https://chat.example"


def test_timestamps_are_javascript_iso_strings():
    moment = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
    assert iso_timestamp(moment) == "2026-03-04T05:06:07.891Z"
    assert iso_timestamp(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-03-04T05:06:07.891Z"
    assert utc_now().microsecond % 1000 == 0


def test_a_text_message_in_contract_key_order():
    doc = message_doc("r", "hello", username="ann")
    wire = message_wire(doc, media_base=BASE)
    assert list(wire) == ["username", "message", "type", "url", "_id", "createdAt"]
    assert wire["url"] is None and wire["_id"] == str(doc["_id"])


def test_a_media_url_becomes_absolute_and_a_call_notice_names_its_initiator():
    file_id = ObjectId()
    doc = message_doc("r", "Voice message", type="voice", url=f"/api/voice/{file_id}")
    assert message_wire(doc, media_base=BASE)["url"] == f"{BASE}/api/voice/{file_id}"
    notice = {**message_doc("r", "call", type="call_notification"), "callInitiator": "ann"}
    assert list(message_wire(notice, media_base=BASE))[-1] == "callInitiator"


def test_history_parts_give_the_same_json_as_the_wire_dicts():
    text = message_doc("r", "hi")
    media = message_doc("r", "Image message", type="image", url=f"/api/image/{ObjectId()}")
    parts = [message_part(text), message_part(media)]
    assert isinstance(parts[0], bytes) and isinstance(parts[1], dict)
    assert orjson.loads(messages_json(parts, media_base=BASE)) == [
        message_wire(text, media_base=BASE), message_wire(media, media_base=BASE)
    ]


def test_a_room_in_contract_key_order():
    room = {"_id": ObjectId(), "roomId": "r", "lastActivity": datetime(2026, 1, 2, tzinfo=UTC), "__v": 0}
    body = orjson.loads(room_json(room, [message_part(message_doc("r", "hi"))], media_base=BASE))
    assert list(body) == ["_id", "roomId", "messages", "lastActivity", "__v"]
    assert body["lastActivity"] == "2026-01-02T00:00:00.000Z" and body["messages"][0]["message"] == "hi"


def traced_bytes_per_part(make, doc, count: int = 500) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parts = [make(doc) for _ in range(count)]
        return (tracemalloc.get_traced_memory()[0] - before) / len(parts)
    finally:
        tracemalloc.stop()


def test_a_kept_part_holds_about_its_length_in_memory_not_a_json_buffer():
    """The history cache keeps parts for minutes: each must cost about its own length (a
    bytes object's header is 33 bytes), not the 4 KiB buffer orjson allocates."""
    doc = message_doc("r", "a short line", username="ann")
    kept = message_part_kept(doc)
    assert kept == message_part(doc)
    assert traced_bytes_per_part(message_part_kept, doc) < len(kept) + 100


def test_a_kept_media_part_is_its_wire_dict():
    media = message_doc("r", "Image message", type="image", url=f"/api/image/{ObjectId()}")
    assert message_part_kept(media) == message_part(media)
