"""Incremental multipart/form-data parsing, as a stream of small events.

python-multipart's parser works by callbacks; this wrapper collects them into a list per
chunk fed, so that an async consumer can `await` storage writes between chunks and never
holds more than one chunk of a file in memory.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from chillout_project.errors import InvalidInput


@dataclass
class PartStart:
    name: str
    filename: str | None  # None for a plain text field
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PartData:
    data: bytes


@dataclass
class PartEnd:
    pass


class MultipartStream:
    def __init__(self, content_type: str):
        mime, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if mime != b"multipart/form-data" or not boundary:
            raise InvalidInput("expected a multipart/form-data body")
        self._events: list = []
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._header_value = b""
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )
        self.ended = False

    def feed(self, chunk: bytes) -> Iterator[PartStart | PartData | PartEnd]:
        try:
            self._parser.write(chunk)
        except Exception as exc:  # python-multipart raises several error types on bad framing
            raise InvalidInput(f"malformed multipart body: {exc}") from None
        events, self._events = self._events, []
        return iter(events)

    def _on_part_begin(self):
        self._headers = {}

    def _on_header_field(self, data, start, end):
        self._header_name += data[start:end]

    def _on_header_value(self, data, start, end):
        self._header_value += data[start:end]

    def _on_header_end(self):
        self._headers[self._header_name.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_name, self._header_value = b"", b""

    def _on_headers_finished(self):
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._events.append(PartStart(name, filename.decode("utf-8", "replace") if filename is not None else None, self._headers))

    def _on_part_data(self, data, start, end):
        self._events.append(PartData(bytes(data[start:end])))

    def _on_part_end(self):
        self._events.append(PartEnd())
