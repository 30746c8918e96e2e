"""`voice.multipart`: a multipart/form-data body fed in any chunking gives the same events."""

import pytest

from chillout_project.errors import InvalidInput
from tests import factories
from voice.multipart import MultipartStream, PartData, PartEnd, PartStart

BOUNDARY = "XyZ123"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def body(file_bytes: bytes) -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n"
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"voice\"; filename=\"blob\"\r\n"
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + file_bytes + f"\r\n--{BOUNDARY}--\r\n".encode()


def parts(stream: MultipartStream, data: bytes, chunk: int) -> list[tuple[str, str | None, bytes]]:
    """(field name, filename, content) per part, from the events of `data` fed `chunk` bytes at a time."""
    found, current = [], None
    for start in range(0, len(data), chunk):
        for event in stream.feed(data[start : start + chunk]):
            if isinstance(event, PartStart):
                current = [event.name, event.filename, b""]
            elif isinstance(event, PartData):
                current[2] += event.data
            elif isinstance(event, PartEnd):
                found.append(tuple(current))
    return found


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_fields_and_files_arrive_whole_in_any_chunking(chunk):
    wav = factories.wav(frames=300)
    assert parts(MultipartStream(CONTENT_TYPE), body(wav), chunk) == [("username", None, b"alice"), ("voice", "blob", wav)]


def test_part_headers_are_kept_lowercased():
    stream = MultipartStream(CONTENT_TYPE)
    starts = [e for e in stream.feed(body(b"x")) if isinstance(e, PartStart)]
    assert starts[1].headers["content-type"] == "audio/wav"


@pytest.mark.parametrize("content_type", ["", "application/json", "multipart/form-data", "multipart/mixed; boundary=a"])
def test_a_body_that_is_not_multipart_form_data_is_refused(content_type):
    with pytest.raises(InvalidInput, match="multipart/form-data"):
        MultipartStream(content_type)


def test_broken_framing_is_invalid_input():
    stream = MultipartStream(CONTENT_TYPE)
    with pytest.raises(InvalidInput, match="malformed multipart body"):
        list(stream.feed(b"--" + BOUNDARY.encode() + b"\r\nno-colon-header\r\n\r\n"))
