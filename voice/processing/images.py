"""Images as stored: no metadata that identifies the sender, the same picture on screen.

`image_sanitize` is the upload path: the container walker (containers.py) removes every
non-rendering block losslessly and reads the canvas size and frame count from the header, so
an image over the pixel cap is refused (413) before a pixel is decoded; Pillow then decodes
every frame of the result to prove it is a real image (415 otherwise), with its own
decompression-bomb guard as a second line. When the EXIF Orientation asks for a turn (JPEG,
or a PNG eXIf before the image data — the placements browsers honour), the pixels are turned
and re-encoded (JPEG with the source's quantisation tables and subsampling; PNG is lossless
anyway) so the picture looks as before once the tag is gone. WebP keeps its pixels as they
are: its EXIF chunk follows the image data, where browsers ignore it, so applying it would
change what readers saw. Animated images are never turned.

`image_thumbnail` makes the `?w=` variants: a WebP of the first frame, never upscaled.

CPU-bound and blocking: call these through voice.processing.pool, never on the event loop.
They share no state and are safe to run in several threads at once (Pillow releases the GIL
while decoding, resampling and encoding).
"""

import io
from dataclasses import dataclass

from PIL import Image, ImageSequence, JpegImagePlugin

from chillout_project.errors import ChilloutError, PayloadTooLarge, UnsupportedMediaType
from voice.processing.containers import WALKERS, Walked

PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
THUMBNAIL_TYPE = "image/webp"
THUMBNAIL_QUALITY = 80

_ORIENTATION = 0x0112
_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_TURNED_FORMATS = {"image/jpeg", "image/png"}
_RGB_MODES = {"RGB", "RGBA", "RGBX", "P", "PA"}


@dataclass(frozen=True)
class SanitizedImage:
    data: bytes
    content_type: str
    width: int  # as displayed (after the orientation was applied)
    height: int


def _orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        value = parsed.get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is dropped like any other
        return 1
    return value if value in _TURNS else 1


def _undecodable(error: Exception) -> PayloadTooLarge | UnsupportedMediaType:
    """What a failure while decoding untrusted bytes means for the client.

    Pillow reports corrupt data with many exception types (OSError, SyntaxError, ValueError,
    struct.error, EOFError, …), so every failure of a decode is the data's fault: 415.
    """
    if isinstance(error, Image.DecompressionBombError):
        return PayloadTooLarge("The image has too many pixels")
    return UnsupportedMediaType("The image could not be decoded")


def _too_large(pixels: int, max_pixels: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The image has {pixels:,} pixels; the limit is {max_pixels:,}")


def _open_checked(walked: Walked, content_type: str, *, full_size: bool) -> Image.Image:
    """Open and decode every frame; 415 unless it is a real image of `content_type`.

    A JPEG whose pixels are not needed (`full_size` False) is decoded at 1/8 scale: libjpeg
    still reads every entropy-coded block, at about half the cost.
    """
    try:
        image = Image.open(io.BytesIO(walked.data), formats=[PILLOW_FORMATS[content_type]])
        if image.size != (walked.width, walked.height):
            raise UnsupportedMediaType("The image's header contradicts its data")
        if content_type == "image/jpeg" and not full_size:
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        for frame in ImageSequence.Iterator(image):
            frame.load()
        image.seek(0)
        image.load()
    except ChilloutError:
        raise
    except Exception as error:
        raise _undecodable(error) from error
    return image


def _turned(image: Image.Image, content_type: str, turn: Image.Transpose) -> bytes:
    source_info = image.info
    turned = image.transpose(turn)
    out = io.BytesIO()
    options: dict = {}
    if source_info.get("icc_profile"):
        options["icc_profile"] = source_info["icc_profile"]
    if content_type == "image/jpeg":
        options["qtables"] = image.quantization
        options["subsampling"] = JpegImagePlugin.get_sampling(image)
        if options["subsampling"] == -1:
            del options["subsampling"]
        turned.save(out, "JPEG", **options)
    else:
        if "transparency" in source_info:
            options["transparency"] = source_info["transparency"]
        turned.save(out, "PNG", **options)
    return out.getvalue()


def image_sanitize(*, data: bytes, content_type: str, max_pixels: int) -> SanitizedImage:
    """The image without identifying metadata, oriented as displayed.

    `content_type` is the type detected from the bytes (voice.detect.detect_image).
    Raises PayloadTooLarge (413) over `max_pixels` decoded pixels (all frames counted),
    UnsupportedMediaType (415) for anything that is not a decodable image of that type.
    """
    walker = WALKERS.get(content_type)
    if walker is None:
        raise UnsupportedMediaType(f"Images of type {content_type!r} are not accepted")
    walked = walker(data)
    pixels = walked.width * walked.height * walked.frames
    if pixels > max_pixels:
        raise _too_large(pixels, max_pixels)
    orientation = _orientation(walked.exif)
    turning = orientation != 1 and content_type in _TURNED_FORMATS and walked.frames == 1
    with _open_checked(walked, content_type, full_size=turning) as image:
        if not turning:
            return SanitizedImage(walked.data, content_type, walked.width, walked.height)
        stored = _turned(image, content_type, _TURNS[orientation])
    quarter_turn = orientation >= 5  # 5–8 swap width and height
    width, height = (walked.height, walked.width) if quarter_turn else (walked.width, walked.height)
    return SanitizedImage(stored, content_type, width, height)


def _thumbnail_mode(image: Image.Image) -> str:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return "RGBA" if has_alpha else "RGB"


def image_thumbnail(*, data: bytes, width: int) -> bytes:
    """A WebP of the (first frame of the) stored image, `width` pixels wide at most.

    An image already that narrow or narrower is re-encoded at its own size, never upscaled:
    a thumbnail is always a small WebP, so `?w=` answers one type. Expects an image that
    went through image_sanitize (its pixel cap was checked there); raises
    UnsupportedMediaType if it does not decode.
    """
    if width < 1:
        raise ValueError("width must be positive")
    try:
        with Image.open(io.BytesIO(data), formats=list(PILLOW_FORMATS.values())) as image:
            if image.width > width:
                image.draft("RGB", (width, max(1, image.height * width // image.width)))
            # An RGB profile only: a CMYK or grey one would misdescribe the RGB thumbnail.
            icc_profile = image.info.get("icc_profile") if image.mode in _RGB_MODES else None
            frame = image.convert(_thumbnail_mode(image))
    except Exception as error:
        raise _undecodable(error) from error
    if frame.width > width:
        height = max(1, round(frame.height * width / frame.width))
        frame = frame.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    options = {"icc_profile": icc_profile} if icc_profile else {}
    frame.save(out, "WEBP", quality=THUMBNAIL_QUALITY, method=4, **options)
    return out.getvalue()
