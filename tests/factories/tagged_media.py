"""Real media files made in memory, carrying the metadata a phone or recorder would leave.

Images come from Pillow, voice notes from PyAV's bundled FFmpeg encoders; each file carries
the marker strings in SECRETS (author, device, place) so a test can check they are gone.

"""

import functools
import io
import struct
import zlib

import av
import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

SECRETS = (b"SECRET", b"Sherlock", b"PhoneModelX", b"48.8577")
GPS_IFD = 0x8825
ORIENTATION = 0x0112
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Sherlock SECRET"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def picture(width: int = 64, height: int = 32, mode: str = "RGB") -> Image.Image:
    """A picture whose orientation shows: red left half, blue right half, a green top strip."""
    image = Image.new(mode, (width, height), "blue")
    image.paste("red", (0, 0, width // 2, height))
    image.paste("green", (0, 0, width, max(1, height // 8)))
    return image


def exif(orientation: int = 1) -> Image.Exif:
    data = Image.Exif()
    data[ORIENTATION] = orientation
    data[0x010F] = "SECRET maker"  # Make
    data[0x0110] = "PhoneModelX"  # Model
    data[0x013B] = "Sherlock"  # Artist
    gps = data.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (48.0, 51.0, 27.72)  # 48.8577 N
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    return data


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(*, width: int = 64, height: int = 32, orientation: int = 1, quality: int = 90) -> bytes:
    """A JPEG with EXIF (GPS, device, author), XMP, IPTC, a comment, a JFIF thumbnail and a
    trailer after EOI."""
    out = io.BytesIO()
    picture(width, height).save(out, "JPEG", quality=quality, exif=exif(orientation), xmp=XMP, comment=b"SECRET comment")
    data = out.getvalue()
    iptc = _jpeg_segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0c\x1c\x02\x50\x00\x08Sherlock")
    # An APP2 that is not a colour profile (FlashPix), and a second image appended after EOI
    # as phones do (MPF, gain maps).
    flashpix = _jpeg_segment(0xE2, b"FPXR\x00SECRET")
    # A JFIF header with a 2×1 thumbnail (6 bytes of RGB) in place of Pillow's plain one.
    jfif_length = struct.unpack_from(">H", data, 4)[0]
    jfif = _jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x02\x01SECRET")
    rest = data[4 + jfif_length :]
    return b"\xff\xd8" + jfif + iptc + flashpix + rest + b"SECRET second image after EOI"


def jpeg_photo(*, width: int = 4000, height: int = 3000, orientation: int = 6) -> bytes:
    """A phone-like photo: detailed pixels (noise over gradients), EXIF with GPS."""
    rng = np.random.default_rng(7)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    base = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=85, exif=exif(orientation))
    return out.getvalue()


def png(*, width: int = 64, height: int = 32, orientation: int = 1) -> bytes:
    """A PNG with tEXt, zTXt, iTXt (XMP) and an eXIf chunk before the image data."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Sherlock")
    info.add_text("Comment", "SECRET " * 20, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    out = io.BytesIO()
    picture(width, height).save(out, "PNG", pnginfo=info, exif=exif(orientation))
    return out.getvalue()


def webp(*, width: int = 64, height: int = 32, lossless: bool = False) -> bytes:
    """A WebP with EXIF and XMP chunks."""
    out = io.BytesIO()
    picture(width, height).save(out, "WEBP", exif=exif(6), xmp=XMP, lossless=lossless, quality=90)
    return out.getvalue()


def gif(*, width: int = 64, height: int = 32, frames: int = 2) -> bytes:
    """An animated GIF with a comment and an XMP application extension."""
    images = [picture(width, height).convert("P"), picture(width, height).rotate(180).convert("P")][:frames]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], comment=b"SECRET Sherlock", loop=0, duration=100)
    data = out.getvalue()
    xmp_extension = b"\x21\xff\x0bXMP DataXMP" + bytes([len(XMP[:255])]) + XMP[:255] + b"\x00"
    assert data.endswith(b";")
    return data[:-1] + xmp_extension + b";"


def image_variants() -> dict[str, tuple[str, bytes]]:
    """Encodings that exercise the container walkers: name → (content type, bytes)."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    base = picture(200, 120)
    made = {
        "progressive_jpeg_with_restarts_and_icc": ("image/jpeg", "JPEG", base, {"progressive": True, "restart_marker_blocks": 4, "icc_profile": srgb}),
        "cmyk_jpeg_turned": ("image/jpeg", "JPEG", base.convert("CMYK"), {"exif": exif(6)}),
        "jpeg_with_icc_turned": ("image/jpeg", "JPEG", base, {"exif": exif(8), "icc_profile": srgb}),
        "palette_png_with_transparency_turned": ("image/png", "PNG", base.convert("P"), {"transparency": 0, "exif": exif(3)}),
        "grey_alpha_png": ("image/png", "PNG", base.convert("LA"), {"exif": exif(1)}),
        "apng": ("image/png", "PNG", base, {"save_all": True, "append_images": [base.rotate(180)], "duration": 100, "exif": exif(1)}),
        "animated_webp": ("image/webp", "WEBP", base, {"save_all": True, "append_images": [base.rotate(180)], "duration": 100, "exif": exif(6), "xmp": XMP}),
        "webp_with_alpha_and_icc": ("image/webp", "WEBP", base.convert("RGBA"), {"exif": exif(1), "icc_profile": srgb, "lossless": True}),
    }
    variants = {}
    for name, (content_type, pillow_format, image, options) in made.items():
        out = io.BytesIO()
        image.save(out, pillow_format, **options)
        variants[name] = (content_type, out.getvalue())
    return variants


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height over a token IDAT: refused or undecodable."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@functools.cache
def png_bomb(side: int = 10_000) -> bytes:
    """A real, valid side×side RGB PNG of a few hundred KB that decodes to side²×3 bytes."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + side * 3)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


# --- voice notes ----------------------------------------------------------------

VOICE_TAGS = {
    "title": "SECRET title",
    "artist": "Sherlock",
    "comment": "SECRET comment",
    "location": "+48.8577+002.2950/",
    "encoder": "PhoneModelX Recorder",
}
# (content type, muxer, encoder, sample rate) of each format the contract accepts.
VOICE_FORMATS = {
    "webm": ("audio/webm", "webm", "libopus", 48_000),
    "ogg": ("audio/ogg", "ogg", "libopus", 48_000),
    "m4a": ("audio/mp4", "mp4", "aac", 48_000),
    "mp3": ("audio/mpeg", "mp3", "libmp3lame", 44_100),
    "wav": ("audio/wav", "wav", "pcm_s16le", 16_000),
}


def tone(seconds: float, rate: int, *, silent_first_half: bool = False, noisy: bool = False) -> np.ndarray:
    """A 440 Hz tone, float32 in [-0.5, 0.5]; optionally silent for its first half, or with
    syllable-like bursts of noise over it (so that codecs spend speech-like bitrates)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if noisy:
        bursts = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
        noise = np.random.default_rng(7).normal(0, 0.15, len(t)).astype(np.float32)
        samples = np.clip(samples * 0.5 + noise * bursts, -1, 1).astype(np.float32)
    if silent_first_half:
        samples[: len(samples) // 2] = 0
    return samples


def _as_format(samples: np.ndarray, name: str) -> np.ndarray:
    if name.startswith("s16"):
        return (samples * 32767).astype(np.int16)
    if name.startswith("s32"):
        return (samples * 2_147_483_647).astype(np.int32)
    return samples


def voice(
    kind: str = "webm",
    *,
    seconds: float = 2.0,
    tags: dict | None = None,
    silent_first_half: bool = False,
    noisy: bool = False,
    streamed: bool = False,
) -> bytes:
    """A mono voice note of `kind` (a VOICE_FORMATS key) with container and stream tags.

    `streamed` writes it to a pipe-like sink, as a browser's MediaRecorder does: a WebM then
    has no duration and no cues in its header.
    """
    _, muxer, encoder, rate = VOICE_FORMATS[kind]
    tags = VOICE_TAGS if tags is None else tags
    samples = tone(seconds, rate, silent_first_half=silent_first_half, noisy=noisy)
    out = _Sink() if streamed else io.BytesIO()
    with av.open(out, "w", format=muxer) as target:
        target.metadata.update(tags)
        stream = target.add_stream(encoder, rate=rate, layout="mono")
        stream.metadata.update(tags)
        name = stream.codec_context.format.name
        step = stream.codec_context.frame_size or 1024
        for start in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(_as_format(samples[start : start + step], name)[None, :], format=name, layout="mono")
            frame.sample_rate, frame.pts = rate, start
            target.mux(stream.encode(frame))
        target.mux(stream.encode(None))
    return out.getvalue()


class _Sink:
    """A write-only file: the muxer cannot go back to fill in the header."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def decoded_audio(data: bytes) -> np.ndarray:
    """Every decoded sample of the first audio stream, channels first."""
    with av.open(io.BytesIO(data)) as source:
        frames = [frame.to_ndarray() for frame in source.decode(audio=0)]
    return np.concatenate(frames, axis=1)
