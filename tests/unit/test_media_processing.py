"""voice.processing on real files made in the test: metadata gone, pictures and sound kept."""

import io
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from chillout_project.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from tests.factories import tagged_media
from tests import factories
from voice.detect import detect_audio, detect_image
from voice.processing import (
    WAVEFORM_POINTS,
    image_sanitize,
    image_thumbnail,
    media_make_thumbnail,
    media_process_image,
    media_process_voice,
    voice_sanitize,
)
from voice.processing.containers import jpeg_walk

MAX_PIXELS = 40_000_000
ROOT = Path(__file__).resolve().parents[2]


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def assert_no_metadata(data: bytes) -> None:
    for marker in tagged_media.SECRETS + (b"Exif", b"xmpmeta", b"XMP", b"Photoshop", b"8BIM", b"FPXR"):
        assert marker not in data, marker
    with Image.open(io.BytesIO(data)) as image:
        assert not dict(image.getexif())
        assert not image.getexif().get_ifd(tagged_media.GPS_IFD)
        assert not {key for key in image.info if key in ("exif", "xmp", "comment", "Author", "Comment")}
        assert not {key for key in image.info if key.startswith("XML")}


def scan_data(data: bytes) -> bytes:
    """The entropy-coded image data of a JPEG: from its first SOS to EOI."""
    walked = jpeg_walk(data)
    return walked.data[walked.data.index(b"\xff\xda") :]


# --- images ---------------------------------------------------------------------


def test_jpeg_without_rotation_is_stripped_losslessly():
    original = tagged_media.jpeg(orientation=1)
    assert b"Exif" in original and b"Photoshop" in original and b"after EOI" in original

    stored = image_sanitize(data=original, content_type="image/jpeg", max_pixels=MAX_PIXELS)

    assert (stored.content_type, stored.width, stored.height) == ("image/jpeg", 64, 32)
    assert_no_metadata(stored.data)
    assert b"after EOI" not in stored.data and stored.data.endswith(b"\xff\xd9")
    assert stored.data.startswith(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    assert scan_data(stored.data) == original[original.index(b"\xff\xda") : original.index(b"\xff\xd9") + 2]
    assert np.array_equal(pixels(stored.data), pixels(original))
    assert detect_image(stored.data) == "image/jpeg"


def test_jpeg_stray_bytes_between_segments_are_skipped_like_libjpeg_does():
    original = tagged_media.jpeg(orientation=1)
    scan = original.index(b"\xff\xda")
    padded = original[:scan] + b"\x00\x00" + original[scan:]
    stored = image_sanitize(data=padded, content_type="image/jpeg", max_pixels=MAX_PIXELS)
    assert stored.data == image_sanitize(data=original, content_type="image/jpeg", max_pixels=MAX_PIXELS).data


def test_jpeg_orientation_is_applied_before_exif_is_dropped():
    original = tagged_media.jpeg(orientation=6)
    with Image.open(io.BytesIO(original)) as image:
        shown = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.int16)

    stored = image_sanitize(data=original, content_type="image/jpeg", max_pixels=MAX_PIXELS)

    assert (stored.width, stored.height) == (32, 64)
    assert_no_metadata(stored.data)
    stored_pixels = pixels(stored.data)
    assert stored_pixels.shape == shown.shape == (64, 32, 3)
    assert np.abs(stored_pixels - shown).mean() < 6  # one more JPEG generation, same quality tables
    # Orientation 6 turns the green top strip into the right-hand column.
    assert stored_pixels[32, -1, 1] > 100 and stored_pixels[32, -1, 0] < 100


def test_png_text_chunks_and_exif_are_removed_and_pixels_kept():
    original = tagged_media.png()
    assert b"tEXt" in original and b"iTXt" in original and b"eXIf" in original

    stored = image_sanitize(data=original, content_type="image/png", max_pixels=MAX_PIXELS)

    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
        assert chunk not in stored.data
    assert_no_metadata(stored.data)
    assert np.array_equal(pixels(stored.data), pixels(original))
    assert (stored.width, stored.height) == (64, 32)


def test_png_exif_orientation_before_the_image_data_is_applied_losslessly():
    original = tagged_media.png(orientation=6)
    with Image.open(io.BytesIO(original)) as image:
        shown = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.int16)

    stored = image_sanitize(data=original, content_type="image/png", max_pixels=MAX_PIXELS)

    assert (stored.width, stored.height) == (32, 64)
    assert_no_metadata(stored.data)
    assert np.array_equal(pixels(stored.data), shown)


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_exif_and_xmp_are_removed_without_reencoding(lossless):
    original = tagged_media.webp(lossless=lossless)
    assert b"EXIF" in original and b"XMP " in original

    stored = image_sanitize(data=original, content_type="image/webp", max_pixels=MAX_PIXELS)

    assert b"EXIF" not in stored.data and b"XMP " not in stored.data
    assert_no_metadata(stored.data)
    # The pixels as they were: WebP's EXIF follows the image data, where browsers ignore it.
    assert np.array_equal(pixels(stored.data), pixels(original))
    assert (stored.width, stored.height) == (64, 32)
    assert detect_image(stored.data) == "image/webp"


def test_gif_comment_and_xmp_extension_are_removed_and_animation_kept():
    original = tagged_media.gif()
    stored = image_sanitize(data=original, content_type="image/gif", max_pixels=MAX_PIXELS)

    assert_no_metadata(stored.data)
    assert b"NETSCAPE2.0" in stored.data  # the loop count stays
    with Image.open(io.BytesIO(stored.data)) as before, Image.open(io.BytesIO(original)) as after:
        assert before.n_frames == after.n_frames == 2
        for frame in range(2):
            before.seek(frame)
            after.seek(frame)
            assert np.array_equal(np.asarray(before.convert("RGB")), np.asarray(after.convert("RGB")))


def displayed_frames(data: bytes, *, apply_orientation: bool) -> list[np.ndarray]:
    """Every frame as a browser shows it (EXIF orientation applied where it honours it)."""
    frames = []
    with Image.open(io.BytesIO(data)) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frame = ImageOps.exif_transpose(image) if apply_orientation else image
            frames.append(np.asarray(frame.convert("RGBA"), dtype=np.int16))
    return frames


@pytest.mark.parametrize("name", list(tagged_media.image_variants()))
def test_encoding_variants_are_shown_as_before(name):
    content_type, original = tagged_media.image_variants()[name]
    stored = image_sanitize(data=original, content_type=content_type, max_pixels=MAX_PIXELS)

    assert_no_metadata(stored.data)
    before = displayed_frames(original, apply_orientation=content_type != "image/webp")
    after = displayed_frames(stored.data, apply_orientation=False)
    assert len(after) == len(before)
    assert after[0].shape[:2] == (stored.height, stored.width)
    re_encoded = content_type == "image/jpeg" and name.endswith("_turned")
    for shown, kept in zip(before, after, strict=True):
        assert shown.shape == kept.shape
        assert np.abs(shown - kept).mean() < (3 if re_encoded else 0.001)
    with Image.open(io.BytesIO(original)) as source, Image.open(io.BytesIO(stored.data)) as result:
        assert result.info.get("icc_profile") == source.info.get("icc_profile")
        assert result.info.get("transparency") == source.info.get("transparency")


@pytest.mark.parametrize(
    "content_type, make",
    [("image/jpeg", tagged_media.jpeg), ("image/png", tagged_media.png), ("image/webp", tagged_media.webp), ("image/gif", tagged_media.gif)],
)
def test_pixel_cap_is_read_from_each_formats_header(content_type, make):
    data = make(width=300, height=200) if content_type != "image/gif" else make(width=300, height=200, frames=1)
    with pytest.raises(PayloadTooLarge) as refused:
        image_sanitize(data=data, content_type=content_type, max_pixels=300 * 200 - 1)
    assert refused.value.message == "The image has 60,000 pixels; the limit is 59,999"
    assert image_sanitize(data=data, content_type=content_type, max_pixels=300 * 200).width == 300


def test_pixel_cap_counts_every_frame():
    animated = tagged_media.gif(width=64, height=32, frames=2)
    with pytest.raises(PayloadTooLarge):
        image_sanitize(data=animated, content_type="image/gif", max_pixels=64 * 32 * 2 - 1)
    assert image_sanitize(data=animated, content_type="image/gif", max_pixels=64 * 32 * 2).width == 64


def test_decompression_bomb_is_refused_before_decoding():
    bomb = tagged_media.png_bomb()
    assert len(bomb) < 1_000_000  # decodes to 300,000,000 bytes
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge) as refused:
            image_sanitize(data=bomb, content_type="image/png", max_pixels=MAX_PIXELS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.status == 413
    assert "100,000,000 pixels" in refused.value.message
    assert peak < 2 * len(bomb) + 1_000_000


def test_pillows_bomb_guard_is_the_second_line():
    """With our cap set absurdly high, Pillow still refuses 225 M pixels when opening (413)."""
    with pytest.raises(PayloadTooLarge):
        image_sanitize(data=tagged_media.png_claiming(15_000, 15_000), content_type="image/png", max_pixels=10**12)


def test_decompression_bomb_needs_no_image_memory():
    """Pillow's pixel buffers are outside tracemalloc's view: measure a fresh process's RSS."""
    script = """
import json, resource, sys
from tests.factories import tagged_media
from voice.processing import image_sanitize
from chillout_project.errors import PayloadTooLarge
bomb = tagged_media.png_bomb()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    image_sanitize(data=bomb, content_type="image/png", max_pixels=40_000_000)
except PayloadTooLarge:
    print(json.dumps({"grew_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DJANGO_SETTINGS_MODULE": "chillout_project.settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["grew_kib"] < 20 * 1024  # a full decode needs 300 MB


@pytest.mark.parametrize(
    "content_type, data",
    [
        ("image/jpeg", tagged_media.jpeg()[:400]),
        ("image/png", tagged_media.png()[:-40]),
        ("image/gif", tagged_media.gif()[:100]),
        ("image/webp", tagged_media.webp()[:60]),
        ("image/png", factories.png()[:33] + b"garbage" * 50),
        ("image/jpeg", b"\xff\xd8\xff" + bytes(500)),
        ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(100)),
        ("image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(40)),
        ("image/gif", b"GIF89a" + bytes(40)),
        ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    ],
)
def test_truncated_or_garbage_images_are_unsupported(content_type, data):
    with pytest.raises(UnsupportedMediaType) as refused:
        image_sanitize(data=data, content_type=content_type, max_pixels=MAX_PIXELS)
    assert refused.value.status == 415


def test_png_whose_pixel_data_is_corrupt_is_unsupported():
    original = bytearray(tagged_media.png())
    start = original.index(b"IDAT") + 4
    original[start : start + 20] = b"\x00" * 20  # the chunk is intact, its zlib stream is not
    with pytest.raises(UnsupportedMediaType):
        image_sanitize(data=bytes(original), content_type="image/png", max_pixels=MAX_PIXELS)


# --- thumbnails -----------------------------------------------------------------


def test_thumbnail_is_a_webp_of_the_asked_width():
    stored = image_sanitize(data=tagged_media.jpeg(width=1000, height=500), content_type="image/jpeg", max_pixels=MAX_PIXELS)
    thumbnail = image_thumbnail(data=stored.data, width=320)
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert (image.format, image.size) == ("WEBP", (320, 160))
        assert not image.getexif()


def test_thumbnail_never_upscales():
    stored = image_sanitize(data=tagged_media.png(width=100, height=50), content_type="image/png", max_pixels=MAX_PIXELS)
    with Image.open(io.BytesIO(image_thumbnail(data=stored.data, width=640))) as image:
        assert (image.format, image.size) == ("WEBP", (100, 50))


def test_thumbnail_of_an_animated_gif_is_its_first_frame():
    with Image.open(io.BytesIO(image_thumbnail(data=tagged_media.gif(), width=160))) as image:
        assert (image.format, image.size, getattr(image, "n_frames", 1)) == ("WEBP", (64, 32), 1)


# --- voice ----------------------------------------------------------------------


def assert_no_tags(data: bytes) -> None:
    for marker in tagged_media.SECRETS:
        assert marker not in data, marker
    with av.open(io.BytesIO(data)) as result:
        assert not {key.lower() for key in result.metadata} & {"title", "artist", "comment", "location"}
        assert len(result.streams) == 1
        for metadata in (result.metadata, result.streams[0].metadata):
            assert not any(marker in value for value in metadata.values() for marker in ("Sherlock", "SECRET", "Phone"))


@pytest.mark.parametrize("kind", list(tagged_media.VOICE_FORMATS))
def test_voice_keeps_its_audio_and_loses_its_tags(kind):
    content_type = tagged_media.VOICE_FORMATS[kind][0]
    original = tagged_media.voice(kind, seconds=2.0)
    assert b"Sherlock" in original

    stored = voice_sanitize(data=original, content_type=content_type, max_seconds=600)

    assert stored.content_type == content_type
    assert_no_tags(stored.data)
    # The same packets: the same samples. MP3 differs only at the start: the remuxed file's
    # Xing/LAME header states the encoder delay, which the decoder then trims (gapless).
    before, after = tagged_media.decoded_audio(original), tagged_media.decoded_audio(stored.data)
    trimmed = before.shape[1] - after.shape[1]
    assert trimmed == 0 or (kind == "mp3" and 0 < trimmed <= 1152)
    assert np.array_equal(after, before[:, trimmed:])
    assert abs(stored.duration_ms - 2000) <= 60  # codec priming and padding
    assert detect_audio(stored.data[:8192]) == content_type


def test_recorder_webm_without_duration_gets_its_length_from_the_decoded_audio():
    recorded = tagged_media.voice("webm", seconds=3.0, streamed=True)
    with av.open(io.BytesIO(recorded)) as source:
        assert source.duration is None  # as Chrome's MediaRecorder writes it

    stored = voice_sanitize(data=recorded, content_type="audio/webm", max_seconds=600)

    assert stored.duration_ms == 3000
    assert_no_tags(stored.data)
    with av.open(io.BytesIO(stored.data)) as result:
        assert result.duration is not None  # the remuxed file states its length: seekable
    with pytest.raises(UnsupportedMediaType, match="longer than 2.5 seconds"):
        voice_sanitize(data=recorded, content_type="audio/webm", max_seconds=2.5)


def test_voice_waveform_follows_the_loudness():
    stored = voice_sanitize(data=tagged_media.voice("webm", seconds=4.0, silent_first_half=True), content_type="audio/webm", max_seconds=600)
    assert len(stored.waveform) == WAVEFORM_POINTS == 64
    assert all(isinstance(value, int) and 0 <= value <= 255 for value in stored.waveform)
    assert max(stored.waveform[:28]) < 20  # silence (Opus leaves a little noise near the edge)
    assert min(stored.waveform[36:]) > 200 and max(stored.waveform) == 255
    assert stored.duration_ms == 4000


def test_voice_over_the_length_cap_is_unsupported():
    for kind in ("webm", "wav"):
        note = tagged_media.voice(kind, seconds=3.0, tags={})
        with pytest.raises(UnsupportedMediaType) as refused:
            voice_sanitize(data=note, content_type=tagged_media.VOICE_FORMATS[kind][0], max_seconds=2.0)
        assert refused.value.status == 415 and "longer than 2 seconds" in refused.value.message


@pytest.mark.parametrize(
    "content_type, data",
    [
        ("audio/webm", factories.AUDIO_HEADS["audio/webm"]),
        ("audio/ogg", factories.AUDIO_HEADS["audio/ogg"]),
        ("audio/mp4", factories.AUDIO_HEADS["audio/mp4"]),
        ("audio/mpeg", factories.AUDIO_HEADS["audio/mpeg"]),
        ("audio/wav", b"RIFF\x24\x00\x00\x00WAVE" + bytes(64)),
        ("audio/webm", b"\x1a\x45\xdf\xa3" + b"garbage" * 100),
        ("video/x-matroska", tagged_media.voice("webm")),
    ],
)
def test_garbage_voice_is_unsupported(content_type, data):
    with pytest.raises(UnsupportedMediaType) as refused:
        voice_sanitize(data=data, content_type=content_type, max_seconds=600)
    assert refused.value.status == 415


def webm_with_video(*, audio: bool) -> bytes:
    """A WebM with a small camera stream (and a tagged tone if `audio`)."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as target:
        target.metadata["title"] = "SECRET title"
        video = target.add_stream("libvpx", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = target.add_stream("libopus", rate=48_000, layout="mono") if audio else None
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index * 20, np.uint8), format="rgb24")
            frame.pts = index
            target.mux(video.encode(frame))
        if sound is not None:
            samples = tagged_media.tone(1.0, 48_000)
            for start in range(0, len(samples), 960):
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 960], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 48_000, start
                target.mux(sound.encode(chunk))
            target.mux(sound.encode(None))
        target.mux(video.encode(None))
    return out.getvalue()


def test_a_voice_note_keeps_only_its_audio_stream():
    stored = voice_sanitize(data=webm_with_video(audio=True), content_type="audio/webm", max_seconds=600)
    assert_no_tags(stored.data)  # one stream: the camera's is gone
    assert stored.duration_ms == 1000


def test_a_file_without_audio_is_unsupported():
    with pytest.raises(UnsupportedMediaType, match="no audio"):
        voice_sanitize(data=webm_with_video(audio=False), content_type="audio/webm", max_seconds=600)


# --- the pool -------------------------------------------------------------------


async def test_async_entry_points_run_in_the_media_pool(settings):
    settings.MAX_IMAGE_PIXELS = 64 * 32 - 1
    with pytest.raises(PayloadTooLarge):
        await media_process_image(data=tagged_media.png(), content_type="image/png")
    image = await media_process_image(data=tagged_media.png(), content_type="image/png", max_pixels=MAX_PIXELS)
    assert (image.width, image.height) == (64, 32)

    voice = await media_process_voice(data=tagged_media.voice("ogg"), content_type="audio/ogg")
    assert voice.duration_ms == 2000 and len(voice.waveform) == 64

    with pytest.raises(InvalidInput) as refused:
        await media_make_thumbnail(data=image.data, width=333)
    assert refused.value.status == 400 and refused.value.message == "Thumbnail width must be one of 160, 320, 640"
    with Image.open(io.BytesIO(await media_make_thumbnail(data=image.data, width=160))) as thumbnail:
        assert thumbnail.size == (64, 32)


def test_importing_the_processing_package_starts_nothing():
    script = (
        "import threading, voice.processing, voice.processing.pool as pool;"
        "print(threading.active_count(), pool._executor is None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"DJANGO_SETTINGS_MODULE": "chillout_project.settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True"]


# --- fuzzing: damaged uploads end in 413/415 or a clean image, never anything else ---

IMAGES = {
    "image/jpeg": tagged_media.jpeg(orientation=6),
    "image/png": tagged_media.png(orientation=6),
    "image/gif": tagged_media.gif(),
    "image/webp": tagged_media.webp(),
}
VOICES = {kind: tagged_media.voice(kind, seconds=0.5) for kind in ("webm", "ogg", "m4a", "mp3", "wav")}


@st.composite
def damaged(draw, originals: dict):
    key = draw(st.sampled_from(sorted(originals)))
    data = bytearray(originals[key])
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(len(data) // 2, len(data)))
    return key, bytes(data[:cut])


@fuzz_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(IMAGES))
def test_damaged_images_are_refused_cleanly_or_stored_clean(sample):
    content_type, data = sample
    try:
        stored = image_sanitize(data=data, content_type=content_type, max_pixels=MAX_PIXELS)
    except (PayloadTooLarge, UnsupportedMediaType):
        return
    assert_no_metadata(stored.data)
    with Image.open(io.BytesIO(stored.data)) as image:
        image.load()
        assert image.size == (stored.width, stored.height)


@fuzz_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(VOICES))
def test_damaged_voice_notes_are_refused_cleanly_or_stored_clean(sample):
    kind, data = sample
    content_type = tagged_media.VOICE_FORMATS[kind][0]
    try:
        stored = voice_sanitize(data=data, content_type=content_type, max_seconds=600)
    except UnsupportedMediaType:
        return
    assert len(stored.waveform) == WAVEFORM_POINTS and stored.duration_ms > 0
    assert_no_tags(stored.data)
