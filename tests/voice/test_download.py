"""Contract §3: GET /api/voice|image/<fileId> — bytes, Range, ETag revalidation, errors."""

import pytest
from bson import ObjectId

from tests import factories
from tests.factories import media_file_remove


@pytest.fixture
def voice_file(upload, room_id):
    data = factories.wav(frames=200_000)  # 400 KB: more than one GridFS chunk
    url = upload(room_id, "voice", data).json()["url"]
    return url, data


def test_download_serves_the_bytes_with_the_detected_type(http, voice_file):
    url, data = voice_file
    response = http.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"].startswith('"')


def test_webm_and_mp4_voice_files_are_served_as_audio(http, upload, room_id):
    for make, served in ((factories.webm, "audio/webm"), (factories.mp4, "audio/mp4")):
        url = upload(room_id, "voice", make()).json()["url"]
        assert http.get(url).headers["content-type"] == served


def test_images_are_served_as_images(http, upload, room_id):
    data = factories.png()
    url = upload(room_id, "image", data, filename="pic.png").json()["url"]
    response = http.get(url)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/png"


def test_if_none_match_gives_304_without_a_body(http, voice_file):
    url, _ = voice_file
    etag = http.get(url).headers["etag"]
    response = http.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_deleted_file_stops_being_served(http, mongo, voice_file):
    url, _ = voice_file
    etag = http.get(url).headers["etag"]
    media_file_remove(mongo, kind="voice", file_id=url.rsplit("/", 1)[1])
    response = http.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 404
    assert response.json() == {"error": "File not found"}


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=261100-261200", 261100, 261200),  # across a GridFS chunk edge
        ("bytes=1000-", 1000, None),  # open range
        ("bytes=-500", None, None),  # suffix range
        ("bytes=399000-999999999", 399000, None),  # end past the file: clipped
    ],
)
def test_range_requests_get_206_with_content_range(http, voice_file, header, start, end):
    url, data = voice_file
    total = len(data)
    if start is None:
        start = total - 500
    if end is None:
        end = total - 1
    response = http.get(url, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == data[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{total}"
    assert response.headers["content-length"] == str(end - start + 1)


def test_suffix_longer_than_the_file_is_the_whole_file(http, upload, room_id):
    data = factories.png()
    url = upload(room_id, "image", data).json()["url"]
    response = http.get(url, headers={"Range": "bytes=-999999"})
    assert response.status_code == 206
    assert response.content == data
    assert response.headers["content-range"] == f"bytes 0-{len(data) - 1}/{len(data)}"


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=-0"])
def test_unsatisfiable_range_is_416(http, voice_file, header):
    url, data = voice_file
    response = http.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"
    assert response.json() == {"error": "range not satisfiable"}


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-5", "bytes=abc", "bytes=9-3"])
def test_ranges_we_do_not_serve_fall_back_to_the_whole_file(http, voice_file, header):
    url, data = voice_file
    response = http.get(url, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == data


def test_if_range_with_another_validator_sends_the_whole_file(http, voice_file):
    url, data = voice_file
    response = http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert response.status_code == 200 and len(response.content) == len(data)
    etag = http.get(url).headers["etag"]
    assert http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206


def test_head_gives_the_headers_without_a_body(http, voice_file):
    url, data = voice_file
    response = http.head(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.content == b""


@pytest.mark.parametrize("bad_id", ["xyz", "123", "g" * 24, "a" * 25])
def test_an_id_that_is_not_24_hex_is_404(http, bad_id):
    for kind in ("voice", "image"):
        response = http.get(f"/api/{kind}/{bad_id}")
        assert response.status_code == 404
        assert response.json() == {"error": "File not found"}


def test_unknown_id_is_404(http):
    response = http.get(f"/api/voice/{ObjectId()}")
    assert response.status_code == 404
    assert response.json() == {"error": "File not found"}


def test_a_file_of_the_other_bucket_is_404(http, voice_file):
    url, _ = voice_file
    response = http.get(url.replace("/api/voice/", "/api/image/"))
    assert response.status_code == 404
    assert response.json() == {"error": "File not found"}


def test_downloads_answer_cross_origin_requests_of_the_frontend(http, voice_file):
    url, _ = voice_file
    response = http.get(url, headers={"Origin": "http://localhost:3000"})
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


# Issue 11 (browsers): a revalidation keeps the representation headers; media are embeddable
# from any origin and inert when opened directly. tests/browser shows the same in Chromium.
REPRESENTATION_HEADERS = (
    "content-type", "etag", "cache-control", "accept-ranges", "content-disposition", "vary",
    "x-content-type-options", "cross-origin-resource-policy", "content-security-policy",
)
MEDIA_POLICY = {
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "cross-origin",
    "content-security-policy": "default-src 'none'; sandbox",
}


@pytest.mark.parametrize(
    ("kind", "data", "served"), [("image", factories.png(), "image/png"), ("voice", factories.wav(), "audio/wav")]
)
def test_a_304_keeps_the_headers_of_the_200(http, upload, room_id, kind, data, served):
    url = upload(room_id, kind, data).json()["url"]
    frontend = {"Origin": "http://localhost:3000"}
    full = http.get(url, headers=frontend)
    revalidated = http.get(url, headers={**frontend, "If-None-Match": full.headers["etag"]})
    assert (full.status_code, revalidated.status_code) == (200, 304)
    assert revalidated.headers["content-type"] == served  # not Django's default text/html
    assert {name: revalidated.headers.get(name) for name in REPRESENTATION_HEADERS} == {
        name: full.headers.get(name) for name in REPRESENTATION_HEADERS
    }
    assert "content-length" not in revalidated.headers


def test_every_answer_about_a_file_carries_the_media_policy(http, voice_file):
    url, data = voice_file
    etag = http.get(url).headers["etag"]
    answers = {
        200: http.get(url),
        206: http.get(url, headers={"Range": "bytes=0-9"}),
        304: http.get(url, headers={"If-None-Match": etag}),
        416: http.get(url, headers={"Range": f"bytes={len(data)}-"}),
    }
    for status, response in answers.items():
        assert response.status_code == status
        assert {name: response.headers.get(name) for name in MEDIA_POLICY} == MEDIA_POLICY, status
    assert answers[206].headers["content-type"] == answers[304].headers["content-type"] == "audio/wav"
    assert answers[416].headers["content-type"] == "application/json"


# Recently stored files are served from the process's memory (voice/recent_files.py): the
# uploads above are; these check what the cache must never do.


def test_a_file_deleted_behind_the_servers_back_is_404_for_every_kind_of_get(http, mongo, voice_file):
    url, data = voice_file
    assert http.get(url).content == data  # served (from memory: the upload just stored it)
    media_file_remove(mongo, kind="voice", file_id=url.rsplit("/", 1)[1])
    for headers in ({}, {"Range": "bytes=0-9"}, {"If-Range": '"x"', "Range": "bytes=0-9"}):
        response = http.get(url, headers=headers)
        assert response.status_code == 404 and response.json() == {"error": "File not found"}
    assert http.head(url).status_code == 404


def test_the_bytes_served_after_an_upload_are_the_stored_ones(http, mongo, voice_file):
    url, data = voice_file
    file_id = url.rsplit("/", 1)[1]
    stored = factories.media_content(mongo, kind="voice", file_id=file_id)
    assert stored == data
    assert http.get(url).content == stored
    response = http.get(url, headers={"Range": "bytes=261000-270000"})  # across a chunk boundary
    assert response.status_code == 206 and response.content == stored[261000:270001]


def test_a_file_stored_again_under_its_id_with_other_bytes_is_served_as_stored(http, mongo, voice_file):
    url, data = voice_file
    file_id = ObjectId(url.rsplit("/", 1)[1])
    assert http.get(url).content == data
    document = factories.media_file(mongo, kind="voice", file_id=file_id)
    media_file_remove(mongo, kind="voice", file_id=file_id)
    other = factories.wav(frames=1000)
    factories.media_file_restore(mongo, kind="voice", document=document, data=other)
    response = http.get(url)
    assert response.status_code == 200 and response.content == other
