"""Lossless metadata removal: walk an image container and keep only what draws the picture.

Why a walker of our own: Pillow removes metadata only by decoding and re-encoding, which
costs a JPEG generation of quality and a PNG/WebP/GIF its exact bytes. These four
containers are simple lists of tagged blocks, so dropping blocks is exact. It is a
WHITELIST: only blocks known to affect rendering are kept (pixel data, palettes,
transparency, colour profiles and colour space, animation control), so a vendor's next
private block is dropped rather than leaked (C2PA/JUMBF content credentials included). Bytes after the end marker (Apple/Samsung MPF
secondary images, gain maps, appended archives) are dropped too.

Each walker also reads the canvas size and the frame count from the header, so the pixel cap
is enforced before any pixel is decoded, and returns the EXIF block found before the image
data (its Orientation is applied by the caller before the block is dropped).

Pure functions over bytes; no shared state, safe in any thread.
"""

import struct
from dataclasses import dataclass

from chillout_project.errors import UnsupportedMediaType


@dataclass(frozen=True)
class Walked:
    data: bytes  # the file with every non-rendering block removed
    width: int
    height: int
    frames: int
    exif: bytes | None  # the first EXIF block before the image data, if any


def _broken(kind: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"The {kind} file is damaged or truncated")


# --- JPEG -------------------------------------------------------------------------

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# APPn segments that change how the pixels look, by their identifier.
_JPEG_KEPT_APP = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}


def _jfif_without_thumbnail(segment: bytes) -> bytes:
    """APP0 JFIF may carry a thumbnail (perhaps of the uncropped original): keep its header only."""
    if len(segment) < 18:
        return segment
    payload = segment[4:16] + b"\x00\x00"  # JFIF\0, version, units, densities; no thumbnail
    return b"\xff\xe0" + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data that starts at `pos` ends (the next real marker)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            raise _broken("JPEG")
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1
            continue
        return pos


def jpeg_walk(data: bytes) -> Walked:
    if data[:2] != b"\xff\xd8":
        raise _broken("JPEG")
    kept = [b"\xff\xd8"]
    width = height = 0
    exif = None
    pos = 2
    while True:
        pos = data.find(b"\xff", pos)  # stray bytes between segments are skipped, as libjpeg does
        if pos < 0 or pos + 1 >= len(data):
            raise _broken("JPEG")
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI: everything after it is dropped
            kept.append(b"\xff\xd9")
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            kept.append(data[pos : pos + 2])
            pos += 2
            continue
        if pos + 4 > len(data):
            raise _broken("JPEG")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise _broken("JPEG")
        payload = data[pos + 4 : end]
        if marker in _JPEG_SOF:
            if len(payload) < 5:
                raise _broken("JPEG")
            height, width = struct.unpack_from(">HH", payload, 1)
            kept.append(data[pos:end])
        elif 0xE0 <= marker <= 0xEF:
            if marker == 0xE1 and exif is None and payload.startswith(b"Exif\x00\x00"):
                exif = payload
            kept_prefix = _JPEG_KEPT_APP.get(marker)
            if kept_prefix and payload.startswith(kept_prefix):
                kept.append(_jfif_without_thumbnail(data[pos:end]) if marker == 0xE0 else data[pos:end])
        elif marker == 0xFE:  # COM
            pass
        elif marker == 0xDA:  # SOS: header, then entropy-coded data up to the next marker
            if not width or not height:
                raise _broken("JPEG")
            scan_end = _jpeg_scan_end(data, end)
            kept.append(data[pos:scan_end])
            pos = scan_end
            continue
        else:  # tables (DQT, DHT, DRI, DAC, …)
            kept.append(data[pos:end])
        pos = end
    if not width or not height:
        raise _broken("JPEG")
    return Walked(b"".join(kept), width, height, 1, exif)


# --- PNG --------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND",  # critical
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs",  # colour, display
    b"cICP", b"mDCV", b"cLLI",  # HDR colour
    b"acTL", b"fcTL", b"fdAT",  # APNG animation
}  # fmt: skip


def png_walk(data: bytes) -> Walked:
    if not data.startswith(_PNG_SIGNATURE):
        raise _broken("PNG")
    kept = [_PNG_SIGNATURE]
    width = height = 0
    frames = 1
    exif = None
    seen_idat = False
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise _broken("PNG")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise _broken("PNG")
        payload = data[pos + 8 : pos + 8 + length]
        if pos == len(_PNG_SIGNATURE):
            if kind != b"IHDR" or length < 8:
                raise _broken("PNG")
            width, height = struct.unpack_from(">II", payload)
        if kind == b"acTL" and length >= 4:
            frames = max(1, struct.unpack_from(">I", payload)[0])
        if kind == b"eXIf" and exif is None and not seen_idat:
            exif = payload  # browsers honour an eXIf before the image data only
        seen_idat = seen_idat or kind == b"IDAT"
        if kind in _PNG_KEPT:
            kept.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    if not width or not height or not seen_idat:
        raise _broken("PNG")
    return Walked(b"".join(kept), width, height, frames, exif)


# --- GIF --------------------------------------------------------------------------

# Application extensions that change playback or colour: loop count, ICC profile. Plain-text
# extensions (0x01) go too: browsers do not draw them.
_GIF_KEPT_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012")


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise _broken("GIF")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def gif_walk(data: bytes) -> Walked:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise _broken("GIF")
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    kept = [data[:pos]]
    frames = 0
    while True:
        if pos >= len(data):
            if not frames:
                raise _broken("GIF")
            kept.append(b";")  # a missing trailer is common and harmless
            break
        block = data[pos]
        if block == 0x3B:  # trailer: everything after it is dropped
            kept.append(b";")
            break
        if block == 0x21:  # extension: label, then sub-blocks
            if pos + 2 >= len(data):
                raise _broken("GIF")
            label = data[pos + 1]
            end = _gif_sub_blocks_end(data, pos + 2)
            app_id = data[pos + 3 : pos + 3 + data[pos + 2]]
            if label == 0xF9 or (label == 0xFF and app_id in _GIF_KEPT_APPS):
                kept.append(data[pos:end])
        elif block == 0x2C:  # image: descriptor, local colour table, LZW data
            if pos + 11 > len(data):
                raise _broken("GIF")
            local = data[pos + 9]
            table = 3 << ((local & 7) + 1) if local & 0x80 else 0
            end = _gif_sub_blocks_end(data, pos + 10 + table + 1)
            kept.append(data[pos:end])
            frames += 1
        else:
            raise _broken("GIF")
        pos = end
    if not width or not height:
        raise _broken("GIF")
    return Walked(b"".join(kept), width, height, frames, None)


# --- WebP -------------------------------------------------------------------------

_WEBP_KEPT = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _webp_size(kind: bytes, payload: bytes) -> tuple[int, int]:
    if kind == b"VP8X" and len(payload) >= 10:
        width = int.from_bytes(payload[4:7], "little") + 1
        height = int.from_bytes(payload[7:10], "little") + 1
        return width, height
    if kind == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", payload, 6)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        (bits,) = struct.unpack_from("<I", payload, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise _broken("WebP")


def webp_walk(data: bytes) -> Walked:
    if len(data) < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _broken("WebP")
    riff_end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    kept: list[bytes] = []
    width = height = 0
    frames = 0
    exif = None
    pos = 12
    while pos + 8 <= riff_end:
        kind, length = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > riff_end:
            raise _broken("WebP")
        payload = data[pos + 8 : pos + 8 + length]
        if not kept:
            width, height = _webp_size(kind, payload)
        if kind == b"EXIF" and exif is None:
            exif = payload
        if kind == b"ANMF":
            frames += 1
        if kind == b"VP8X":
            flags = payload[0] & ~(_VP8X_EXIF | _VP8X_XMP)
            kept.append(data[pos : pos + 8] + bytes([flags]) + data[pos + 9 : end])
        elif kind in _WEBP_KEPT:
            kept.append(data[pos:end])
        pos = end
    if not kept:
        raise _broken("WebP")
    body = b"WEBP" + b"".join(kept)
    return Walked(b"RIFF" + struct.pack("<I", len(body)) + body, width, height, max(frames, 1), exif)


WALKERS = {"image/jpeg": jpeg_walk, "image/png": png_walk, "image/gif": gif_walk, "image/webp": webp_walk}
