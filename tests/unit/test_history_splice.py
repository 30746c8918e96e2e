"""`rooms.history`'s merge: the re-read window replaces what the cache held from its boundary
on, except the ranges of this process's own noted messages, which it does not read back."""

from datetime import UTC, datetime, timedelta

import orjson
from bson import ObjectId

from rooms.history import OWN_SPAN_MIN, docs_new, history_gaps, history_merge, history_splice, own_spans
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


# This process's own messages: the re-read skips their (second, process) ranges.

def own(second: int, count: int, process: bytes = b"\x42" * 5) -> list[dict]:
    """`count` messages of one process made in one second (ids `second | process | n`)."""
    stamp = int((START + timedelta(seconds=second)).timestamp())
    return [
        {**doc(second, f"own{second}.{n}"), "_id": ObjectId(stamp.to_bytes(4, "big") + process + n.to_bytes(3, "big"))}
        for n in range(count)
    ]


def test_own_spans_need_enough_notes_from_the_boundary_on():
    many, few, early = own(10, OWN_SPAN_MIN), own(11, OWN_SPAN_MIN - 1), own(2, OWN_SPAN_MIN)
    prefixes: dict[bytes, int] = {}
    for d in many + few + early:
        prefixes[d["_id"].binary[:9]] = prefixes.get(d["_id"].binary[:9], 0) + 1
    assert own_spans(prefixes=prefixes, boundary=boundary(5)) == {many[0]["_id"].binary[:9]}


def test_gaps_leave_out_exactly_the_skipped_ranges():
    mine = own(10, 1)[0]["_id"].binary[:9]
    (first, last) = history_gaps(boundary=boundary(5), skipped=frozenset({mine}))
    assert first == (boundary(5), ObjectId(mine + b"\0\0\0"))
    assert last == (ObjectId(mine[:8] + bytes([mine[8] + 1]) + b"\0\0\0"), None)
    other_below = ObjectId(mine[:4] + b"\x41" + b"\xff" * 7)  # another process, same second
    other_above = ObjectId(mine[:4] + b"\x43" + bytes(7))
    assert first[0] <= other_below < first[1] and last[0] <= other_above
    assert history_gaps(boundary=boundary(5), skipped=frozenset()) == [(boundary(5), None)]


def test_merge_takes_skipped_ranges_from_what_it_held_and_its_notes():
    old = [doc(1)]
    held_own = own(10, 20)[:10]
    ids, parts = held(old + held_own)
    later_own = own(10, 20)[10:]
    other = doc(10, "other process")
    skipped = frozenset({held_own[0]["_id"].binary[:9]})
    noted = dict(zip(*held(later_own)))
    new_ids, new_parts, dropped = history_merge(
        ids=ids, parts=parts, docs=[other], boundary=boundary(5), cap=100, skipped=skipped, noted=noted
    )
    expected = sorted(old + held_own + later_own + [other], key=lambda d: d["_id"])
    assert new_ids == [d["_id"] for d in expected] and not dropped
    assert dict(zip(new_ids, new_parts))[held_own[0]["_id"]] is parts[1]  # held, not rebuilt
    assert [orjson.loads(p)["message"] for p in new_parts] == [d["message"] for d in expected]


def test_a_note_older_than_the_boundary_is_put_in_its_place_once():
    ids, parts = held([doc(1), doc(3)])
    late = doc(2, "late own")
    noted = {late["_id"]: message_part(late), ids[1]: parts[1]}
    new_ids, _, _ = history_merge(ids=ids, parts=parts, docs=[], boundary=boundary(5), cap=10, noted=noted)
    assert new_ids == [ids[0], late["_id"], ids[1]]


def test_docs_new_says_whether_a_read_brought_anything_not_held():
    ids, _ = held([doc(1), doc(2)])
    assert not docs_new(ids=ids, docs=[doc(2)])
    assert docs_new(ids=ids, docs=[doc(2), doc(3)])
