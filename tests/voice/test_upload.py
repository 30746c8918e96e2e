"""Contract §3 and §6: POST /api/room/<roomId>/voice|image into the media store (GridFS)."""

import io
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from bson import ObjectId
from PIL import Image

from chillout_project.observe import UNMATCHED
from tests import factories
from tests.conftest import TEST_SERVER
from tests.factories import media_content, media_file, media_files_of_room, media_orphan_chunks


@pytest.mark.parametrize("content_type", list(factories.AUDIO))
def test_every_accepted_audio_type_is_stored_with_its_detected_type(upload, mongo, room_id, content_type):
    data = factories.AUDIO[content_type]()
    response = upload(room_id, "voice", data, username="alice")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["url"]
    file_id = body["url"].removeprefix("/api/voice/")
    assert body["url"] == f"/api/voice/{file_id}" and ObjectId.is_valid(file_id)
    stored = media_file(mongo, kind="voice", file_id=file_id)
    description = stored["metadata"].pop("description")
    assert stored["metadata"] == {"roomId": room_id, "username": "alice", "contentType": content_type, "attachedTo": None}
    assert list(description) == ["duration", "waveform"] and description["duration"] >= 450
    assert len(description["waveform"]) == 64
    assert stored["length"] == len(media_content(mongo, kind="voice", file_id=file_id)) > 0


@pytest.mark.parametrize("content_type", list(factories.IMAGES))
def test_every_accepted_image_type_is_stored_with_its_detected_type(upload, mongo, room_id, content_type):
    data = factories.IMAGES[content_type]()
    w, h = Image.open(io.BytesIO(data)).size
    response = upload(room_id, "image", data, username="bob")
    assert response.status_code == 200
    file_id = response.json()["url"].removeprefix("/api/image/")
    stored = media_file(mongo, kind="image", file_id=file_id)
    assert stored["metadata"] == {
        "roomId": room_id, "username": "bob", "contentType": content_type, "description": {"width": w, "height": h},
        "attachedTo": None,
    }


@pytest.mark.parametrize("kind", ["voice", "image"])
def test_a_detected_type_that_does_not_decode_is_415_and_not_stored(upload, mongo, room_id, kind):
    response = upload(room_id, kind, factories.undecodable(kind))
    assert response.status_code == 415
    assert list(response.json()) == ["error"]
    assert media_files_of_room(mongo, kind=kind, room_id=room_id) == []
    assert media_orphan_chunks(mongo, kind=kind) == set()


def test_the_declared_type_is_ignored_only_the_bytes_count(http, mongo, room_id):
    response = http.post(
        f"/api/room/{room_id}/voice", files={"voice": ("blob", factories.ogg(), "audio/webm")}, data={"username": "a"}
    )
    assert response.status_code == 200
    assert media_files_of_room(mongo, kind="voice", room_id=room_id)[0]["metadata"]["contentType"] == "audio/ogg"


def test_mp4_from_safari_is_audio_in_the_voice_bucket(upload, mongo, room_id):
    for brand in (b"iso5", b"mp42", b"M4A "):
        assert upload(room_id, "voice", factories.mp4(brand)).status_code == 200
    assert {f["metadata"]["contentType"] for f in media_files_of_room(mongo, kind="voice", room_id=room_id)} == {"audio/mp4"}


@pytest.mark.parametrize("data", [factories.SVG, factories.HTML, b"just some text", factories.png()], ids=["svg", "html", "text", "png"])
def test_voice_that_is_not_audio_is_415_and_not_stored(upload, mongo, room_id, data):
    response = upload(room_id, "voice", data)
    assert response.status_code == 415
    assert response.json() == {"error": "the voice file is not a supported type"}
    assert media_files_of_room(mongo, kind="voice", room_id=room_id) == []


@pytest.mark.parametrize("data", [factories.SVG, factories.HTML, factories.wav()], ids=["svg", "html", "wav"])
def test_image_that_is_not_png_jpeg_gif_webp_is_415(upload, mongo, room_id, data):
    response = upload(room_id, "image", data)
    assert response.status_code == 415
    assert media_files_of_room(mongo, kind="image", room_id=room_id) == []


def test_upload_creates_the_room_and_moves_last_activity(upload, http, mongo, room_id):
    assert mongo.rooms.find_one({"roomId": room_id}) is None
    upload(room_id, "voice", factories.wav())
    created = mongo.rooms.find_one({"roomId": room_id})
    assert created is not None and created["__v"] == 0
    time.sleep(0.05)
    upload(room_id, "image", factories.png())
    assert mongo.rooms.find_one({"roomId": room_id})["lastActivity"] > created["lastActivity"]


def test_upload_stores_the_file_only_no_message(upload, mongo, room_id):
    upload(room_id, "voice", factories.wav())
    assert mongo.messages.count_documents({"roomId": room_id}) == 0


def test_missing_username_binds_anonymous(http, mongo, room_id):
    response = http.post(f"/api/room/{room_id}/voice", files={"voice": ("blob", factories.wav(), "audio/wav")})
    assert response.status_code == 200
    assert media_files_of_room(mongo, kind="voice", room_id=room_id)[0]["metadata"]["username"] == "Anonymous"


def test_username_sent_after_the_file_is_recorded(http, mongo, room_id):
    boundary = "chilloutboundary"
    parts = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"voice\"; filename=\"blob\"\r\n"
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + factories.wav() + (
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nlate-name\r\n--{boundary}--\r\n"
    ).encode()
    response = http.post(
        f"/api/room/{room_id}/voice", content=parts, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 200
    assert media_files_of_room(mongo, kind="voice", room_id=room_id)[0]["metadata"]["username"] == "late-name"


def test_no_file_is_400(http, mongo, room_id):
    response = http.post(f"/api/room/{room_id}/voice", files={}, data={"username": "alice"})
    assert response.status_code == 400
    response = http.post(f"/api/room/{room_id}/voice", data={"username": "alice"}, files={"other": ("a", b"", "text/plain")})
    assert response.status_code == 400


def test_no_body_is_400(http, room_id):
    response = http.post(f"/api/room/{room_id}/voice")
    assert response.status_code == 400
    assert response.json() == {"error": "expected a multipart/form-data body"}


def test_json_body_is_400(http, room_id):
    response = http.post(f"/api/room/{room_id}/image", json={"image": "data"})
    assert response.status_code == 400


def test_wrong_field_name_is_400(upload, mongo, room_id):
    response = upload(room_id, "voice", factories.wav(), field="audio")
    assert response.status_code == 400
    assert response.json() == {"error": "unexpected file field 'audio'; expected 'voice'"}
    assert media_files_of_room(mongo, kind="voice", room_id=room_id) == []


def test_a_second_file_is_400_and_nothing_is_kept(http, mongo, room_id):
    response = http.post(
        f"/api/room/{room_id}/voice",
        files=[("voice", ("a", factories.wav(), "audio/wav")), ("voice", ("b", factories.wav(), "audio/wav"))],
    )
    assert response.status_code == 400
    assert response.json() == {"error": "exactly one 'voice' file expected"}
    assert media_files_of_room(mongo, kind="voice", room_id=room_id) == []
    assert media_orphan_chunks(mongo, kind="voice") == set()


def test_empty_file_is_400(upload, room_id):
    response = upload(room_id, "voice", b"")
    assert response.status_code == 400
    assert response.json() == {"error": "the voice file is empty"}


def test_malformed_multipart_is_400(http, room_id):
    response = http.post(
        f"/api/room/{room_id}/voice",
        content=b"--xx\r\nContent-Disposition: form-data; name=\"voice\"; filename=\"b\"\r\n\r\nRIFF",
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "incomplete multipart body"}


def test_a_multipart_body_without_a_boundary_is_a_json_400(http, room_id):
    """Under Daphne, Twisted's own form parser once refused it first: a bare HTML 400."""
    response = http.post(
        f"/api/room/{room_id}/voice", content=factories.wav(), headers={"Content-Type": "multipart/form-data"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "expected a multipart/form-data body"}


def test_bad_room_id_or_username_is_400(upload, room_id):
    assert upload("r" * 129, "voice", factories.wav()).status_code == 400
    assert upload(room_id, "voice", factories.wav(), username="System").status_code == 400
    assert upload(room_id, "voice", factories.wav(), username="u" * 65).status_code == 400


def test_get_on_an_upload_route_is_405(http, room_id):
    response = http.get(f"/api/room/{room_id}/voice")
    assert response.status_code == 405
    assert response.json()["error"] == "method GET not allowed"


@pytest.fixture(scope="module")
def small_limit_server(server_factory):
    return server_factory(MAX_VOICE_BYTES="50000", MAX_IMAGE_BYTES="40000", MAX_REQUEST_OVERHEAD_BYTES="20000")


def test_file_over_the_limit_is_413_and_nothing_is_kept(small_limit_server, mongo, room_id):
    data = factories.wav(frames=30000)  # 60 KB of WAV: over 50 000, inside the body cap
    response = httpx.post(
        f"{small_limit_server.url}/api/room/{room_id}/voice", files={"voice": ("blob", data, "audio/wav")}, timeout=60
    )
    assert response.status_code == 413
    assert response.json() == {"error": "voice file larger than 50000 bytes"}
    assert media_files_of_room(mongo, kind="voice", room_id=room_id) == []
    assert media_orphan_chunks(mongo, kind="voice") == set()


def test_file_at_the_limit_is_accepted(small_limit_server, room_id):
    data = factories.wav(frames=24978)  # 44-byte header + 2 bytes per frame
    assert len(data) == 50000
    response = httpx.post(
        f"{small_limit_server.url}/api/room/{room_id}/voice", files={"voice": ("blob", data, "audio/wav")}, timeout=60
    )
    assert response.status_code == 200


def test_body_over_the_cap_is_refused_before_reading(small_limit_server, mongo, room_id):
    data = factories.png() + bytes(200_000)
    response = httpx.post(
        f"{small_limit_server.url}/api/room/{room_id}/image", files={"image": ("big.png", data, "image/png")}, timeout=60
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert media_files_of_room(mongo, kind="image", room_id=room_id) == []


def test_upload_aborted_mid_stream_leaves_nothing(server, mongo, room_id, http):
    """The client promises 2 MB, sends 300 KB of a real WAV, then disconnects.

    uvicorn calls the application before the body is complete: the request ends when it reads
    the disconnect, logged as 499 (the barrier). Daphne hands a request over only once its
    body is complete, so this one never reaches the application."""
    boundary = "abortboundary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"voice\"; filename=\"blob\"\r\n"
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port)) as conn:
        conn.sendall(
            (
                f"POST /api/room/{room_id}/voice HTTP/1.1\r\nHost: {address.netloc}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 2000000\r\n\r\n"
            ).encode()
            + head
            + factories.wav(frames=150000)
        )
    if TEST_SERVER == "uvicorn":
        assert f"POST {UNMATCHED} 499" in server.log_wait(f"POST {UNMATCHED} 499")
    assert http.get("/api/health").status_code == 200
    assert media_files_of_room(mongo, kind="voice", room_id=room_id) == []
    assert media_orphan_chunks(mongo, kind="voice") == set()
    assert mongo.rooms.find_one({"roomId": room_id}) is None


# --- uploads per client IP (UPLOAD_RATE / UPLOAD_BURST) -------------------------------------

BURST = 3


def post_image(base_url: str, room: str, *, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return httpx.post(f"{base_url}/api/room/{room}/image", files={"image": ("blob", factories.png(), "image/png")},
                      data={"username": "ann"}, headers=headers, timeout=60)


def refusals(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    line = next(l for l in text.splitlines() if l.startswith('chillout_uploads_refused_total{reason="rate_limited"}'))
    return float(line.rsplit(" ", 1)[1])


@pytest.fixture(scope="module")
def limited_server(server_factory):
    # A refill of one token per 1000 s: nothing comes back during the test.
    return server_factory(UPLOAD_RATE="0.001", UPLOAD_BURST=str(BURST), METRICS="open")


@pytest.fixture(scope="module")
def limited_proxied_server(server_factory):
    return server_factory(UPLOAD_RATE="0.001", UPLOAD_BURST=str(BURST), daphne_args=("--proxy-headers",))


def test_uploads_past_the_burst_from_one_ip_are_429_and_nothing_is_stored(limited_server, mongo, room_id):
    statuses = [post_image(limited_server.url, room_id).status_code for _ in range(BURST)]
    assert statuses == [200] * BURST
    refused = post_image(limited_server.url, room_id)
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate limited"}
    assert len(media_files_of_room(mongo, kind="image", room_id=room_id)) == BURST
    assert refusals(limited_server.url) >= 1


@pytest.mark.daphne_only(reason="uvicorn trusts X-Forwarded-For from 127.0.0.1 by default (--forwarded-allow-ips)")
def test_without_proxy_headers_a_forwarded_ip_is_the_same_client(limited_server, room_id):
    for _ in range(BURST):
        post_image(limited_server.url, room_id, forwarded_for="203.0.113.8")
    assert post_image(limited_server.url, room_id, forwarded_for="203.0.113.9").status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_ip_has_its_own_bucket(limited_proxied_server, mongo, room_id):
    url = limited_proxied_server.url
    assert [post_image(url, room_id, forwarded_for="198.51.100.1").status_code for _ in range(BURST)] == [200] * BURST
    assert post_image(url, room_id, forwarded_for="198.51.100.1").status_code == 429
    assert post_image(url, room_id, forwarded_for="198.51.100.2").status_code == 200
