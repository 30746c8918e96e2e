"""`realtime.payloads` on its own: every payload shape becomes a typed value or `InvalidInput`."""

import pytest
from bson import ObjectId

from chillout_project.errors import InvalidInput
from realtime import payloads
from voice.kinds import IMAGE, VOICE

FILE_ID = ObjectId()


@pytest.mark.parametrize("args", [(), ({}, {}), ([],), (3,), ("text",), (None,)])
def test_payload_must_be_one_object(args):
    with pytest.raises(InvalidInput, match="^payload must be an object$"):
        payloads.payload_object(args)


def test_payload_object_returns_the_object():
    assert payloads.payload_object(({"roomId": "r"},)) == {"roomId": "r"}


def test_join_without_a_name_binds_anonymous_and_room_claims_nothing():
    assert payloads.payload_join({"roomId": "r"}) == payloads.RoomPayload(room_id="r", username="Anonymous")
    assert payloads.payload_room({"roomId": "r", "username": ""}) == payloads.RoomPayload(room_id="r", username=None)
    assert payloads.payload_room({"roomId": "r", "username": "bo"}) == payloads.RoomPayload(room_id="r", username="bo")


@pytest.mark.parametrize("room", [None, 3, {"$ne": None}, ["r"]])
def test_room_id_must_be_a_string(room):
    with pytest.raises(InvalidInput):
        payloads.payload_room({"roomId": room})


def test_text_payload():
    assert payloads.payload_text({"roomId": "r", "message": "hi"}) == payloads.TextPayload(
        room_id="r", username=None, text="hi"
    )
    with pytest.raises(InvalidInput):
        payloads.payload_text({"roomId": "r", "message": {"$gt": ""}})


@pytest.mark.parametrize(
    "url",
    [f"/api/voice/{FILE_ID}", f"http://any.host:8000/api/voice/{FILE_ID}", f"https://h/api/voice/{FILE_ID}"],
)
def test_media_url_relative_or_behind_any_host(url):
    payload = payloads.payload_media({"roomId": "r", "url": url}, kind=VOICE)
    assert payload == payloads.MediaPayload(room_id="r", username=None, file_id=FILE_ID)


@pytest.mark.parametrize(
    "url",
    [
        f"/api/image/{FILE_ID}",  # the other kind
        f"ftp://h/api/voice/{FILE_ID}",
        f"//h/api/voice/{FILE_ID}",
        f"/api/voice/{FILE_ID}?x=1",
        f"/api/voice/{FILE_ID}#f",
        "/api/voice/not-an-id",
        "http://[::1/api/voice/x",
        "/" + "a" * payloads.MAX_MEDIA_URL_CHARS,
        None,
        7,
    ],
)
def test_media_url_refused(url):
    with pytest.raises(InvalidInput, match="^url must be a voice file URL of this server"):
        payloads.payload_media({"roomId": "r", "url": url}, kind=VOICE)


def test_image_kind_names_itself_in_the_error():
    with pytest.raises(InvalidInput, match="^url must be a image file URL"):
        payloads.payload_media({"roomId": "r", "url": f"/api/voice/{FILE_ID}"}, kind=IMAGE)


def test_delete_payload():
    assert payloads.payload_delete({"roomId": "r", "messageId": str(FILE_ID)}) == payloads.DeletePayload(
        room_id="r", message_id=FILE_ID
    )
    with pytest.raises(InvalidInput):
        payloads.payload_delete({"roomId": "r", "messageId": "nope"})


def test_relay_payload():
    assert payloads.payload_relay({"to": "sid", "offer": {"sdp": "x"}}, body_key="offer") == payloads.RelayPayload(
        to="sid", body={"sdp": "x"}
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"offer": {}}, "to must be a socket id"),
        ({"to": "", "offer": {}}, "to must be a socket id"),
        ({"to": "x" * (payloads.MAX_SID_CHARS + 1), "offer": {}}, "to must be a socket id"),
        ({"to": "s", "offer": "sdp"}, "offer must be an object"),
        ({"to": "s"}, "offer must be an object"),
    ],
)
def test_relay_payload_refused(data, error):
    with pytest.raises(InvalidInput, match=f"^{error}$"):
        payloads.payload_relay(data, body_key="offer")
