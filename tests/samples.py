"""Small, real files of every media type the contract names, made in memory.

Detection works on magic numbers, so each sample starts exactly as a real file of its type
does (the WAV and PNG are complete, valid files; the others carry their real container
headers followed by filler).
"""

import io
import struct
import wave
import zlib


def wav(frames: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x02" * frames)
    return buffer.getvalue()


def webm(size: int = 4096) -> bytes:
    ebml = bytes.fromhex("1A45DFA3") + b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    ebml += b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"
    return ebml + bytes(size)


def ogg(size: int = 4096) -> bytes:
    return b"OggS\x00\x02" + bytes(22) + b"\x01\x13OpusHead" + bytes(size)


def mp4(brand: bytes = b"iso5", size: int = 4096) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x01" + brand + b"mp41" + bytes(size)


def mp3(size: int = 4096) -> bytes:
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(size)


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg(size: int = 2048) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(size) + b"\xff\xd9"


def gif() -> bytes:
    return b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"


def webp(size: int = 2048) -> bytes:
    body = b"WEBPVP8 " + struct.pack("<I", size) + bytes(size)
    return b"RIFF" + struct.pack("<I", len(body)) + body


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"

AUDIO = {
    "audio/webm": webm,
    "audio/ogg": ogg,
    "audio/mp4": mp4,
    "audio/mpeg": mp3,
    "audio/wav": wav,
}
IMAGES = {
    "image/png": png,
    "image/jpeg": jpeg,
    "image/gif": gif,
    "image/webp": webp,
}
