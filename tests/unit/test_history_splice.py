"""`rooms.history.history_splice`: the re-read window replaces what the cache held from its boundary on."""

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from rooms.history import history_splice
from rooms.wire import message_part

START = datetime(2026, 1, 1, tzinfo=UTC)


def doc(second: int, text: str | None = None) -> dict:
    oid = ObjectId.from_datetime(START + timedelta(seconds=second))
    return {"_id": oid, "roomId": "r", "username": "ann", "message": text or f"m{second}", "type": "text",
            "url": None, "createdAt": START + timedelta(seconds=second)}


def held(docs: list[dict]) -> tuple[list, list]:
    return [d["_id"] for d in docs], [message_part(d) for d in docs]


def boundary(second: int) -> ObjectId:
    return ObjectId.from_datetime(START + timedelta(seconds=second))


def test_new_messages_are_appended_and_held_ones_keep_their_part():
    old = [doc(1), doc(2), doc(3)]
    ids, parts = held(old)
    window = [doc(3), doc(4)]
    new_ids, new_parts, dropped = history_splice(ids=ids, parts=parts, docs=window, boundary=boundary(3), cap=10)
    assert new_ids == ids + [window[1]["_id"]]
    assert new_parts[2] is parts[2]  # not rebuilt
    assert new_parts[3] == message_part(window[1]) and not dropped


def test_a_message_missing_from_the_window_goes_and_a_late_one_takes_its_place_in_id_order():
    ids, parts = held([doc(1), doc(5), doc(6)])
    late = doc(4)
    new_ids, _, _ = history_splice(ids=ids, parts=parts, docs=[late, doc(6)], boundary=boundary(3), cap=10)
    assert new_ids == [ids[0], late["_id"], ids[2]]


def test_overflow_keeps_the_newest_and_says_so():
    ids, parts = held([doc(n) for n in range(5)])
    window = [doc(5), doc(6)]
    new_ids, new_parts, dropped = history_splice(ids=ids, parts=parts, docs=window, boundary=boundary(5), cap=4)
    assert new_ids == ids[3:] + [d["_id"] for d in window]
    assert len(new_parts) == 4 and dropped


def test_an_empty_cache_takes_the_window():
    window = [doc(1), doc(2)]
    new_ids, new_parts, dropped = history_splice(ids=[], parts=[], docs=window, boundary=boundary(0), cap=10)
    assert (new_ids, new_parts, dropped) == held(window) + (False,)
