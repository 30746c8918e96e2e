"""Voice notes as stored: the same audio, no tags naming the device, place or author.

`voice_sanitize` demuxes the upload with FFmpeg (PyAV), decodes its first audio stream to
prove it is audio, measure its length and draw its waveform, and remuxes the very same
packets (no re-encoding, so no quality loss) into a fresh container of the same kind that
carries no container or stream tags, no chapters, no attachments or cover art, no other
streams, and — with FFmpeg's `bitexact` flag — not even the muxer's own version string.

Safety: the demuxer is chosen from the type detected from the bytes, never probed, so FFmpeg
cannot be steered into playlist or network demuxers (HLS, concat) by a crafted file. The
length cap is enforced while decoding: a note is refused (415) as soon as its decoded audio
passes `max_seconds`, and also up front when the container's header already says so.

Memory: the input is at most MAX_VOICE_BYTES, held in memory with its remuxed copy; the
waveform keeps one peak per 5 ms of audio (120,000 floats for 10 minutes), never the samples.

CPU-bound and blocking: call it through voice.processing.pool, never on the event loop.
No shared state; FFmpeg releases the GIL while decoding, so threads run it in parallel.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import av

from chillout_project.errors import ChilloutError, UnsupportedMediaType

if TYPE_CHECKING:
    import numpy as np

WAVEFORM_POINTS = 64
_PEAK_RATE = 8000  # the waveform is drawn from audio resampled to this rate, mono
_PEAK_BLOCK = _PEAK_RATE // 200  # one peak per 5 ms


@dataclass(frozen=True)
class _Container:
    demuxer: str
    muxer: str
    options: dict[str, str]


_MUXER_OPTIONS = {"fflags": "+bitexact"}
CONTAINERS = {
    "audio/webm": _Container("matroska", "webm", _MUXER_OPTIONS),
    "audio/ogg": _Container("ogg", "ogg", _MUXER_OPTIONS),
    "audio/mp4": _Container("mov", "mp4", _MUXER_OPTIONS),
    "audio/mpeg": _Container("mp3", "mp3", {**_MUXER_OPTIONS, "id3v2_version": "0", "write_id3v1": "0"}),
    "audio/wav": _Container("wav", "wav", _MUXER_OPTIONS),
    "audio/aac": _Container("aac", "adts", _MUXER_OPTIONS),
}


@dataclass(frozen=True)
class SanitizedVoice:
    data: bytes
    content_type: str
    duration_ms: int
    waveform: tuple[int, ...]  # WAVEFORM_POINTS values 0–255, peak per slice, loudest = 255


class _Listener:
    """Counts the decoded audio and keeps one peak per 5 ms of it."""

    def __init__(self, max_seconds: float):
        import numpy as np  # here, not at import: loading numpy starts OpenBLAS's threads

        self.max_seconds = max_seconds
        self.seconds = 0.0
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=_PEAK_RATE)
        self.carry = np.zeros(0, dtype=np.float32)
        self.peaks: list[np.ndarray] = []

    def hear(self, frame: av.AudioFrame | None) -> None:
        if frame is not None:
            self.seconds += frame.samples / frame.sample_rate
            if self.seconds > self.max_seconds:
                raise UnsupportedMediaType(f"The voice note is longer than {self.max_seconds:g} seconds")
        for mono in self.resampler.resample(frame):
            self._keep_peaks(mono.to_ndarray().reshape(-1))

    def _keep_peaks(self, samples: np.ndarray) -> None:
        import numpy as np

        samples = np.concatenate((self.carry, np.abs(samples)))
        whole = len(samples) // _PEAK_BLOCK * _PEAK_BLOCK
        self.peaks.append(samples[:whole].reshape(-1, _PEAK_BLOCK).max(axis=1))
        self.carry = samples[whole:]

    def waveform(self) -> tuple[int, ...]:
        import numpy as np

        tail = [self.carry.max(keepdims=True)] if len(self.carry) else []
        peaks = np.concatenate(self.peaks + tail) if self.peaks or tail else np.zeros(1, np.float32)
        if len(peaks) < WAVEFORM_POINTS:  # shorter than 64 blocks: stretch
            peaks = peaks[np.arange(WAVEFORM_POINTS) * len(peaks) // WAVEFORM_POINTS]
        slices = np.array([part.max() for part in np.array_split(peaks, WAVEFORM_POINTS)])
        loudest = float(slices.max())
        if loudest <= 0:
            return (0,) * WAVEFORM_POINTS
        return tuple(int(value) for value in np.round(np.clip(slices / loudest, 0, 1) * 255))


def _refuse_long_header(source: av.container.InputContainer, max_seconds: float) -> None:
    if source.duration is not None and source.duration / av.time_base > max_seconds + 1:
        raise UnsupportedMediaType(f"The voice note is longer than {max_seconds:g} seconds")


def _remux(source: av.container.InputContainer, container: _Container, max_seconds: float):
    audio = next((stream for stream in source.streams if stream.type == "audio"), None)
    if audio is None:
        raise UnsupportedMediaType("The file has no audio")
    listener = _Listener(max_seconds)
    out = io.BytesIO()
    with av.open(out, "w", format=container.muxer, container_options=container.options) as target:
        copy = target.add_stream_from_template(audio)
        copy.metadata.clear()
        for packet in source.demux(audio):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            for frame in packet.decode():
                listener.hear(frame)
            packet.stream = copy
            target.mux(packet)
        for frame in audio.codec_context.decode(None):
            listener.hear(frame)
        listener.hear(None)
    return out.getvalue(), listener


def voice_sanitize(*, data: bytes, content_type: str, max_seconds: float) -> SanitizedVoice:
    """The same audio packets in a tag-free container, with duration (ms) and waveform.

    `content_type` is the type detected from the bytes (voice.detect.detect_audio).
    Raises UnsupportedMediaType (415) for an unaccepted type, data that does not demux or
    decode as audio, no audio at all, or audio longer than `max_seconds`.
    """
    container = CONTAINERS.get(content_type)
    if container is None:
        raise UnsupportedMediaType(f"Voice notes of type {content_type!r} are not accepted")
    try:
        with av.open(io.BytesIO(data), "r", format=container.demuxer) as source:
            _refuse_long_header(source, max_seconds)
            stored, listener = _remux(source, container, max_seconds)
    except ChilloutError:
        raise
    except Exception as error:  # FFmpegError, and PyAV's ValueError/TypeError on odd streams
        raise UnsupportedMediaType("The voice note could not be decoded as audio") from error
    duration_ms = round(listener.seconds * 1000)
    if duration_ms <= 0:  # none, or less than half a millisecond (a damaged file's stray frame)
        raise UnsupportedMediaType("The voice note contains no audio")
    return SanitizedVoice(stored, content_type, duration_ms, listener.waveform())
