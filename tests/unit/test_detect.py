"""`voice.detect` and `voice.kinds`: a file's type from its first bytes; media paths both ways."""

import pytest
from bson import ObjectId

from tests import factories
from voice.detect import detect_audio, detect_image
from voice.kinds import IMAGE, KINDS, VOICE, media_path_parse


@pytest.mark.parametrize("served", list(factories.AUDIO))
def test_every_accepted_audio_type_is_detected_as_audio(served):
    assert detect_audio(factories.AUDIO[served]()) == served


@pytest.mark.parametrize("served", list(factories.IMAGES))
def test_every_accepted_image_type_is_detected(served):
    assert detect_image(factories.IMAGES[served]()) == served


@pytest.mark.parametrize("brand", [b"isom", b"mp42", b"M4A ", b"qt  "])
def test_mp4_containers_in_the_voice_bucket_are_audio(brand):
    assert detect_audio(factories.mp4(brand)) == "audio/mp4"


@pytest.mark.parametrize("data", [factories.SVG, factories.HTML, b"plain text", b""], ids=["svg", "html", "text", "empty"])
def test_what_is_neither_is_refused_by_both(data):
    assert detect_audio(data) is None and detect_image(data) is None


def test_an_image_is_not_audio_and_audio_is_not_an_image():
    assert detect_audio(factories.png()) is None
    assert detect_image(factories.wav()) is None


def test_a_path_parses_back_to_its_kind_and_id():
    file_id = ObjectId()
    for kind in KINDS.values():
        assert media_path_parse(kind.path(file_id)) == (kind, file_id)
    assert VOICE.path(file_id) == f"/api/voice/{file_id}" and IMAGE.path(file_id) == f"/api/image/{file_id}"


@pytest.mark.parametrize(
    "path",
    ["", "/api/voice/", "/api/video/" + "a" * 24, "/api/voice/" + "g" * 24, "/api/voice/" + "a" * 23,
     "api/voice/" + "a" * 24, "/api/voice/" + "a" * 24 + "/x", "/x/voice/" + "a" * 24],
)
def test_anything_else_is_not_a_media_path(path):
    assert media_path_parse(path) is None
