"""Issue 13: GET /api/image/<id>?w=<width> — a stored WebP thumbnail per width of THUMBNAIL_WIDTHS,
made once, served with the original's headers, and gone with its image and its room."""

import asyncio
import io
import json
from datetime import timedelta

import httpx
import pytest
from bson import ObjectId
from PIL import Image

from tests.factories import (
    media_thumbnails,
    media_thumbnails_of_room,
    now,
    room_leftovers,
    tagged_media,
    thumbnail_orphan_chunks,
)
from tests.ops_support import manage

WIDTHS = [160, 320, 640]  # settings.THUMBNAIL_WIDTHS' default
SHARED_HEADERS = {
    "accept-ranges": "bytes",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "content-disposition": "inline",
    "cross-origin-resource-policy": "cross-origin",
    "content-security-policy": "default-src 'none'; sandbox",
}


@pytest.fixture
def photo(upload, room_id) -> str:
    """A 800×600 JPEG (with EXIF) uploaded to the room: its URL."""
    response = upload(room_id, "image", tagged_media.jpeg(width=800, height=600))
    assert response.status_code == 200
    return response.json()["url"]


def file_id_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.parametrize("width", WIDTHS)
def test_each_width_is_a_webp_of_that_width_stored_once(http, mongo, photo, width):
    first = http.get(photo, params={"w": width})
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/webp"
    for name, value in SHARED_HEADERS.items():
        assert first.headers[name] == value, name
    assert first.headers["content-length"] == str(len(first.content))
    thumbnail = Image.open(io.BytesIO(first.content))
    assert thumbnail.format == "WEBP"
    assert thumbnail.size == (width, round(width * 600 / 800))
    (stored,) = media_thumbnails(mongo, file_id=file_id_of(photo))
    assert stored["metadata"]["width"] == width and stored["length"] == len(first.content) and stored["chunks"] >= 1

    second = http.get(photo, params={"w": width})
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"] != http.get(photo).headers["etag"]
    (again,) = media_thumbnails(mongo, file_id=file_id_of(photo))
    assert again["_id"] == stored["_id"]  # not made a second time


def test_a_narrow_image_is_never_upscaled(http, upload, room_id):
    url = upload(room_id, "image", tagged_media.png(width=40, height=20)).json()["url"]
    response = http.get(url, params={"w": 160})
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).size == (40, 20)


def test_every_width_is_its_own_file(http, mongo, photo):
    for width in WIDTHS:
        assert http.get(photo, params={"w": width}).status_code == 200
    stored = media_thumbnails(mongo, file_id=file_id_of(photo))
    assert sorted(doc["metadata"]["width"] for doc in stored) == WIDTHS


def test_if_none_match_is_304_with_the_content_type(http, photo):
    etag = http.get(photo, params={"w": 320}).headers["etag"]
    response = http.get(photo, params={"w": 320}, headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["content-type"] == "image/webp"
    for name, value in SHARED_HEADERS.items():
        assert response.headers[name] == value, name
    assert http.get(photo, params={"w": 320}, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_range_of_a_thumbnail_is_206(http, photo):
    whole = http.get(photo, params={"w": 160}).content
    response = http.get(photo, params={"w": 160}, headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.content == whole[:10]
    assert response.headers["content-range"] == f"bytes 0-9/{len(whole)}"


@pytest.mark.parametrize("width", ["100", "0", "-160", "abc", "", "160.0", "1e3", "99999999999999999999"])
def test_an_unknown_width_is_400_and_nothing_is_stored(http, mongo, photo, width):
    response = http.get(photo, params={"w": width})
    assert response.status_code == 400
    assert response.json() == {"error": "w must be one of 160, 320, 640"}
    assert media_thumbnails(mongo, file_id=file_id_of(photo)) == []


def test_w_on_a_voice_file_is_400(http, upload, room_id):
    url = upload(room_id, "voice", tagged_media.voice("webm", seconds=0.5)).json()["url"]
    response = http.get(url, params={"w": 160})
    assert response.status_code == 400 and list(response.json()) == ["error"]


def test_an_unknown_image_is_404(http):
    assert http.get(f"/api/image/{ObjectId()}", params={"w": 160}).json() == {"error": "File not found"}
    assert http.get("/api/image/not-an-id", params={"w": 160}).status_code == 404


def test_delete_room_deletes_the_thumbnails(http, mongo, mongo_uri, photo, room_id):
    assert http.get(photo, params={"w": 160}).status_code == 200
    assert len(media_thumbnails_of_room(mongo, room_id=room_id)) == 1
    result = manage("delete_room", room_id, mongo_uri=mongo_uri)
    assert result.returncode == 0, result.stderr
    assert set(room_leftovers(mongo, room_id).values()) == {0}


def test_the_purge_of_an_expired_room_deletes_the_thumbnails(http, mongo, mongo_uri, photo, room_id):
    assert http.get(photo, params={"w": 640}).status_code == 200
    mongo.rooms.update_one({"roomId": room_id}, {"$set": {"lastActivity": now() - timedelta(days=31)}})
    result = manage("purge_expired", "--json", mongo_uri=mongo_uri, PURGE_GRACE_SECONDS="0")
    assert result.returncode == 0, result.stderr
    assert set(room_leftovers(mongo, room_id).values()) == {0}
    assert http.get(photo, params={"w": 640}).status_code == 404


def test_room_stats_shows_thumbnail_bytes(http, mongo_uri, photo):
    body = http.get(photo, params={"w": 160}).content
    result = manage("room_stats", "--json", mongo_uri=mongo_uri)
    assert result.returncode == 0, result.stderr
    thumbnails = json.loads(result.stdout)["media"]["thumbnails"]
    assert thumbnails["files"] >= 1 and thumbnails["bytes"] >= len(body)
    assert "thumbnails" in manage("room_stats", mongo_uri=mongo_uri).stdout


async def test_concurrent_first_requests_store_one_thumbnail(server, mongo, photo):
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        responses = await asyncio.gather(*(client.get(photo, params={"w": 320}) for _ in range(6)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1 and len({r.headers["etag"] for r in responses}) == 1
    (stored,) = media_thumbnails(mongo, file_id=file_id_of(photo))
    assert stored["length"] == len(responses[0].content)
    assert thumbnail_orphan_chunks(mongo) == set()
