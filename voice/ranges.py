"""HTTP `Range: bytes=…` parsing (RFC 9110 §14), for one range.

A header with several ranges, or one that does not parse, is ignored and the whole file is
served (RFC 9110 lets a server ignore Range; audio players ask for one range at a time, so
multipart/byteranges responses are not worth their complexity).
"""

from dataclasses import dataclass


class Unsatisfiable(Exception):
    pass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end}/{total}"


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """None: serve the whole file. Raises `Unsatisfiable` for a range outside the file."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":  # suffix: the last N bytes
            suffix = int(last)
            if suffix <= 0 or total == 0:
                raise Unsatisfiable()
            return ByteRange(max(total - suffix, 0), total - 1)
        start = int(first)
        end = int(last) if last else total - 1
    except ValueError:
        return None
    if start >= total:
        raise Unsatisfiable()
    if end < start:
        return None
    return ByteRange(start, min(end, total - 1))
