"""`voice.ranges`: one `Range: bytes=…` header against a file of `total` bytes (RFC 9110 §14)."""

import pytest

from voice.ranges import ByteRange, Unsatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # a suffix longer than the file is the whole file
        ("bytes=990-5000", ByteRange(990, 999)),  # an end past the file is clamped
        ("BYTES = 5-5", ByteRange(5, 5)),
    ],
)
def test_a_satisfiable_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", [None, "", "items=0-1", "bytes=0-1,5-6", "bytes=abc-", "bytes=5", "bytes=9-3"])
def test_an_ignored_header_serves_the_whole_file(header):
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(("header", "total"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=-1", 0)])
def test_a_range_outside_the_file_is_unsatisfiable(header, total):
    with pytest.raises(Unsatisfiable):
        parse_range(header, total)


def test_length_and_content_range():
    byte_range = ByteRange(10, 19)
    assert byte_range.length == 10
    assert byte_range.content_range(1000) == "bytes 10-19/1000"
