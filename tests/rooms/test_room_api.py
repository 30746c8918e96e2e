"""Contract §3: GET /api/room/<roomId> — get-or-create, history, paging, errors."""

import concurrent.futures

import httpx
import pytest
from bson import ObjectId

from tests.rooms.test_health import ISO_MS


def insert_messages(mongo, room_id: str, count: int) -> list[ObjectId]:
    """Store `count` text messages directly, the way the services store them."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    docs = [
        {
            "_id": ObjectId(),
            "roomId": room_id,
            "username": f"user{i % 3}",
            "message": f"message {i}",
            "type": "text",
            "url": None,
            "createdAt": start + timedelta(milliseconds=i),
        }
        for i in range(count)
    ]
    if docs:
        mongo.messages.insert_many(docs)
    return [doc["_id"] for doc in docs]


def test_a_new_room_is_created_with_the_original_shape(http, mongo, room_id):
    response = http.get(f"/api/room/{room_id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"_id", "roomId", "messages", "lastActivity", "__v"}
    assert body["roomId"] == room_id and body["messages"] == [] and body["__v"] == 0
    assert ISO_MS.match(body["lastActivity"])
    stored = mongo.rooms.find_one({"roomId": room_id})
    assert str(stored["_id"]) == body["_id"]
    assert stored["__v"] == 0


def test_reading_a_room_again_returns_the_same_room(http, room_id):
    first = http.get(f"/api/room/{room_id}").json()
    second = http.get(f"/api/room/{room_id}").json()
    assert first["_id"] == second["_id"]


def test_thirty_parallel_first_requests_get_200_and_one_room(server, mongo, room_id):
    def fetch(_):
        return httpx.get(f"{server.url}/api/room/{room_id}", timeout=60)

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        responses = list(pool.map(fetch, range(30)))
    assert [r.status_code for r in responses] == [200] * 30
    assert len({r.json()["_id"] for r in responses}) == 1
    assert mongo.rooms.count_documents({"roomId": room_id}) == 1


def test_history_is_oldest_first_with_the_wire_key_order(http, mongo, room_id):
    ids = insert_messages(mongo, room_id, 5)
    messages = http.get(f"/api/room/{room_id}").json()["messages"]
    assert [m["_id"] for m in messages] == [str(i) for i in ids]
    assert list(messages[0]) == ["username", "message", "type", "url", "_id", "createdAt"]
    assert messages[0]["url"] is None and messages[0]["type"] == "text"
    assert messages[0]["createdAt"] == "2026-01-01T00:00:00.000Z"


def test_limit_returns_the_newest_n_oldest_first(http, mongo, room_id):
    ids = insert_messages(mongo, room_id, 10)
    page = http.get(f"/api/room/{room_id}", params={"limit": 3}).json()["messages"]
    assert [m["_id"] for m in page] == [str(i) for i in ids[-3:]]


def test_before_pages_back_through_history(http, mongo, room_id):
    ids = insert_messages(mongo, room_id, 10)
    page = http.get(f"/api/room/{room_id}", params={"limit": 4, "before": str(ids[6])}).json()["messages"]
    assert [m["_id"] for m in page] == [str(i) for i in ids[2:6]]
    first_page = http.get(f"/api/room/{room_id}", params={"limit": 4, "before": str(ids[1])}).json()["messages"]
    assert [m["_id"] for m in first_page] == [str(ids[0])]


def test_the_other_rooms_messages_never_leak_into_a_room(http, mongo, room_id):
    insert_messages(mongo, room_id + "-other", 3)
    assert http.get(f"/api/room/{room_id}").json()["messages"] == []


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5"])
def test_limit_out_of_range_is_400(http, room_id, limit):
    response = http.get(f"/api/room/{room_id}", params={"limit": limit})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "limit" in response.json()["error"]


def test_limit_bounds_are_accepted(http, room_id):
    assert http.get(f"/api/room/{room_id}", params={"limit": 1}).status_code == 200
    assert http.get(f"/api/room/{room_id}", params={"limit": 1000}).status_code == 200


@pytest.mark.parametrize("before", ["nothex", "123", str(ObjectId())])
def test_before_that_is_not_a_message_of_the_room_is_400(http, room_id, before):
    response = http.get(f"/api/room/{room_id}", params={"limit": 5, "before": before})
    assert response.status_code == 400
    assert "before" in response.json()["error"]


def test_before_naming_a_message_of_another_room_is_400(http, mongo, room_id):
    other = insert_messages(mongo, room_id + "-x", 1)[0]
    response = http.get(f"/api/room/{room_id}", params={"limit": 5, "before": str(other)})
    assert response.status_code == 400


def test_room_id_limits(http):
    assert http.get("/api/room/" + "r" * 128).status_code == 200
    too_long = http.get("/api/room/" + "r" * 129)
    assert too_long.status_code == 400
    assert "128" in too_long.json()["error"]


def test_room_id_with_an_encoded_slash_is_400(http):
    response = http.get("/api/room/a%2Fb")
    assert response.status_code == 400
    assert response.json() == {"error": "roomId must not contain '/'"}


def test_url_decoded_room_ids_work(http, mongo):
    response = http.get("/api/room/caf%C3%A9%20bar")
    assert response.status_code == 200
    assert response.json()["roomId"] == "café bar"


def store_media_message(mongo, room_id: str, path: str) -> None:
    from datetime import UTC, datetime

    mongo.messages.insert_one(
        {
            "_id": ObjectId(),
            "roomId": room_id,
            "username": "alice",
            "message": "Voice message",
            "type": "voice",
            "url": path,
            "createdAt": datetime.now(UTC),
        }
    )


def test_media_urls_in_history_are_absolute_on_the_request_host(http, server, mongo, room_id):
    store_media_message(mongo, room_id, "/api/voice/" + "a" * 24)
    message = http.get(f"/api/room/{room_id}").json()["messages"][0]
    assert message["url"] == f"{server.url}/api/voice/{'a' * 24}"


def test_media_urls_use_public_url_when_set(server_factory, mongo, room_id):
    other = server_factory(PUBLIC_URL="https://chat.example.com/")
    store_media_message(mongo, room_id, "/api/image/" + "b" * 24)
    message = httpx.get(f"{other.url}/api/room/{room_id}", timeout=30).json()["messages"][0]
    assert message["url"] == "https://chat.example.com/api/image/" + "b" * 24


def test_wrong_method_on_a_room_is_405_json(http, room_id):
    response = http.post(f"/api/room/{room_id}")
    assert response.status_code == 405
    assert response.json() == {"error": "method POST not allowed"}
    assert "GET" in response.headers["allow"]


# --- the full history of a large room is streamed (bounded memory, same bytes) ---------------


def test_the_streamed_full_history_is_the_same_bytes_as_the_one_piece_answer(server_factory, mongo, room_id):
    """A server without the cache streams every full history from the database cursor (two
    messages per batch here); one with the cache answers this small room in one piece."""
    one_piece = server_factory(PUBLIC_URL="https://chat.example")
    streaming = server_factory(PUBLIC_URL="https://chat.example", HISTORY_CACHE_ROOMS="0", HISTORY_STREAM_BATCH="2")
    httpx.get(f"{one_piece.url}/api/room/{room_id}", timeout=30)  # creates the room
    insert_messages(mongo, room_id, 5)
    store_media_message(mongo, room_id, "/api/image/" + "c" * 24)
    insert_messages(mongo, room_id, 2)

    whole = httpx.get(f"{one_piece.url}/api/room/{room_id}", timeout=30)
    streamed = httpx.get(f"{streaming.url}/api/room/{room_id}", timeout=30)

    assert whole.status_code == streamed.status_code == 200
    assert streamed.headers["content-type"] == whole.headers["content-type"] == "application/json"
    assert streamed.content == whole.content
    body = streamed.json()
    assert list(body) == ["_id", "roomId", "messages", "lastActivity", "__v"]
    assert len(body["messages"]) == 8
    assert all(list(m) == ["username", "message", "type", "url", "_id", "createdAt"] for m in body["messages"])
    assert body["messages"][5]["url"] == "https://chat.example/api/image/" + "c" * 24


def server_rss_mb(server) -> float:
    for line in open(f"/proc/{server.process.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_reading_a_large_room_does_not_grow_the_server_by_its_size(server_factory, mongo_uri, room_id):
    """20,000 messages of 2,000 characters: a 42 MB answer. Read whole, it would be held as
    documents, parts and one joined body (well over 100 MB); streamed, the server's RSS grows
    by a few batches. The bound is generous (a quarter of the body): it is a memory bound,
    not a timing."""
    from pymongo import MongoClient

    from tests.ops_support import separate_db_uri

    uri = separate_db_uri(mongo_uri)
    server = server_factory(MONGO_URI=uri, HISTORY_CACHE_MESSAGES="100")
    db = MongoClient(uri, tz_aware=True).get_default_database()
    try:
        assert httpx.get(f"{server.url}/api/room/{room_id}", timeout=30).status_code == 200
        text = "é" * 1000 + "x" * 1000
        for batch in range(20):
            ids = insert_messages(db, room_id, 1000)
            db.messages.update_many({"_id": {"$in": ids}}, {"$set": {"message": text}})
        for _ in range(2):  # warm up: the code paths, the cache's partial entry, pools
            httpx.get(f"{server.url}/api/room/{room_id}?limit=10", timeout=30)
        before = server_rss_mb(server)
        peak, size, count = before, 0, 0
        with httpx.stream("GET", f"{server.url}/api/room/{room_id}", timeout=120) as response:
            assert response.status_code == 200
            for piece in response.iter_bytes():
                size += len(piece)
                count += 1
                if count % 20 == 0:
                    peak = max(peak, server_rss_mb(server))
        peak = max(peak, server_rss_mb(server))
        assert size > 40 * 1024 * 1024
        growth = peak - before
        print(f"RSS before {before:.1f} MB, peak {peak:.1f} MB, body {size / 2**20:.1f} MB")
        assert growth < size / 2**20 / 4, f"RSS grew {growth:.1f} MB reading a {size / 2**20:.1f} MB history"
    finally:
        db.client.drop_database(db.name)
        db.client.close()
