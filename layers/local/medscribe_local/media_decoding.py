"""Media decoding for the local speech engine: probe a media file, check it as Amazon Transcribe
does (container, declared format, sample rate) and decode it to what Whisper hears, 16 kHz float32
(mono, plus both channels of two-channel audio for speaker attribution), whole or window by window.

The samples are faster_whisper.decode_audio's, but a path or file is read as it decodes, decoded
arrays longer than ten minutes are memory-mapped temporary files, and `pcm_windows` holds one window
at a time, so hours of audio need not fit in memory. A failure is a `MediaError` whose reason is the
job's FailureReason (Transcribe's own wording; it never names the object).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000  # what Whisper hears

Audio = npt.NDArray[np.float32]

# -- failure reasons (Transcribe's own wording, see TranscriptionJob.FailureReason) ------------------

UNSUPPORTED_FORMAT = "Unsupported media format"
FORMAT_MISMATCH = (
    "The media format provided does not match the detected media format. "
    "Check the media format and try your request again."
)
# Transcribe's wording for media with no sound track is not documented: the local engine says what it found
NO_AUDIO_STREAM = "The media file has no audio stream (video only?). Upload a file with a sound track."
RATE_MISMATCH = (
    "The sample rate provided does not match the detected sample rate. "
    "Check the sample rate of your media file and try your request again."
)

# Transcribe MediaFormat -> the container names FFmpeg (PyAV) reports for it
_CONTAINERS: Mapping[str, frozenset[str]] = {
    "mp3": frozenset({"mp3"}),
    "wav": frozenset({"wav"}),
    "flac": frozenset({"flac"}),
    "ogg": frozenset({"ogg"}),
    "amr": frozenset({"amr"}),
    "webm": frozenset({"matroska", "webm"}),
    "mp4": frozenset({"mov", "mp4", "m4a"}),
    "m4a": frozenset({"mov", "mp4", "m4a"}),
}


class MediaError(Exception):
    """The media cannot be transcribed; `reason` is the job's FailureReason (never names the object)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- decoding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedAudio:
    mono: Audio  # 16 kHz float32: what the recognizer hears
    channels: tuple[Audio, ...]  # 16 kHz per channel when there are exactly two, else ()
    source_sample_rate: int
    source_channels: int
    media_format: str  # the detected Transcribe MediaFormat

    @property
    def duration(self) -> float:
        return len(self.mono) / SAMPLE_RATE


def _detected_format(container: str) -> str | None:
    names = set(container.split(","))
    for media_format, containers in _CONTAINERS.items():
        if names & containers:
            return media_format
    return None


MediaSource = bytes | str | Path | BinaryIO
# FFmpeg's frames are resampled in blocks of this many source samples (as faster_whisper.decode_audio
# does: the resampler's output depends on how its input is cut, and the samples must stay identical)
RESAMPLE_BLOCK = 500_000
WINDOW_SECONDS = 30.0  # what `pcm_windows` yields at a time: Whisper's own window
IN_MEMORY_SAMPLES = 10 * 60 * SAMPLE_RATE  # decoded arrays longer than 10 minutes are memory-mapped files


def _opened(source: MediaSource) -> str | BinaryIO:
    """What av.open reads: a path, or a file object (bytes are wrapped, never copied again)."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if isinstance(source, Path):
        return str(source)
    return source


def _rewound(source: MediaSource) -> MediaSource:
    if not isinstance(source, (bytes, str, Path)):
        source.seek(0)
    return source


def decode_media(media: MediaSource, media_format: str | None = None, sample_rate: int | None = None) -> DecodedAudio:
    """Probe and decode media (bytes, a path or a seekable file; any container FFmpeg reads) to 16 kHz
    float32. A path is read as it decodes: the encoded bytes are never all in memory.

    Checks what Transcribe checks: the container is a supported format, it matches `media_format`
    when one is given, and the sample rate matches `sample_rate` when one is given."""
    try:
        with av.open(_opened(_rewound(media)), mode="r") as container:
            streams = container.streams.audio
            if not streams:  # a container FFmpeg read, holding no sound: video only, or subtitles
                raise MediaError(NO_AUDIO_STREAM if _detected_format(container.format.name) else UNSUPPORTED_FORMAT)
            detected = _detected_format(container.format.name)
            rate = int(streams[0].sample_rate or 0)
            channels = int(streams[0].layout.nb_channels)
            estimate = _estimated_samples(container, streams[0])
    except av.error.FFmpegError as exc:
        raise MediaError(FORMAT_MISMATCH if media_format else UNSUPPORTED_FORMAT) from exc
    if detected is None:
        raise MediaError(UNSUPPORTED_FORMAT)
    if media_format is not None and media_format != detected and not (
        _CONTAINERS.get(media_format, frozenset()) & _CONTAINERS[detected]
    ):
        raise MediaError(FORMAT_MISMATCH)
    if sample_rate is not None and sample_rate != rate:
        raise MediaError(RATE_MISMATCH)
    stereo = channels == 2
    try:
        sink = _Sink(estimate, stereo)
        for block in pcm_blocks(_rewound(media), stereo=stereo):
            sink.add(block)
    except av.error.FFmpegError as exc:
        raise MediaError(FORMAT_MISMATCH if media_format else UNSUPPORTED_FORMAT) from exc
    return DecodedAudio(sink.mono(), sink.channels(), rate, channels, media_format or detected)


def _estimated_samples(container: Any, stream: Any) -> int:
    """16 kHz samples per channel the media should decode to, from its header (0 when unknown)."""
    seconds = 0.0
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    return int(seconds * SAMPLE_RATE) + SAMPLE_RATE  # a second of slack: headers round


class _Sink:
    """Decoded 16 kHz samples written in place into arrays sized from the header's duration (grown by
    doubling if it understated): the only full-length copies are the results themselves. Beyond
    IN_MEMORY_SAMPLES they are memory-mapped temporary files (deleted on close; the kernel writes
    them out and drops them under pressure), so hours of audio do not have to fit in memory."""

    def __init__(self, estimate: int, stereo: bool) -> None:
        self.stereo = stereo
        self.length = 0
        count = 3 if stereo else 1  # mono, plus left and right
        self.arrays = [_array(max(estimate, SAMPLE_RATE)) for _ in range(count)]

    def add(self, block: Audio) -> None:
        left, right = block[0::2], block[1::2]
        parts: list[Audio] = [((left + right) / 2).astype(np.float32), left, right] if self.stereo else [block]
        size = len(parts[0])
        if self.length + size > len(self.arrays[0]):
            grown = max(self.length + size, 2 * len(self.arrays[0]))
            self.arrays = [_copied(array[:self.length], grown) for array in self.arrays]
        for array, part in zip(self.arrays, parts, strict=True):
            array[self.length:self.length + size] = part
        self.length += size

    def mono(self) -> Audio:
        return self.arrays[0][:self.length]

    def channels(self) -> tuple[Audio, ...]:
        return tuple(array[:self.length] for array in self.arrays[1:])


def _array(size: int) -> Audio:
    if size <= IN_MEMORY_SAMPLES:
        return np.empty(size, dtype=np.float32)
    with tempfile.TemporaryFile(prefix="medscribe-pcm-") as backing:  # the mapping outlives the file object
        return np.memmap(backing, dtype=np.float32, mode="w+", shape=(size,))


def _copied(samples: Audio, size: int) -> Audio:
    grown = _array(size)
    grown[:len(samples)] = samples
    return grown


def pcm_blocks(media: MediaSource, stereo: bool) -> Iterator[Audio]:
    """16 kHz float32 samples (interleaved left/right when `stereo`) block by block, as
    faster_whisper.decode_audio computes them: frames FFmpeg cannot decode are skipped, the rest
    resampled to s16 in blocks of RESAMPLE_BLOCK source samples and scaled to [-1, 1). Memory is one
    block, whatever the length. (decode_audio also runs a full `gc.collect()` per call, to free PyAV
    resampler cycles sooner; in the local runtime's process, which holds the emulator's whole state,
    that pass cost more than the decoding, under the GIL, for every job. The cycles are left to
    Python's automatic collector.)"""
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="stereo" if stereo else "mono",
                                                  rate=SAMPLE_RATE)
    fifo = av.audio.fifo.AudioFifo()

    def resample(frame: av.AudioFrame | None) -> Iterator[Audio]:
        for out in resampler.resample(frame):
            samples: Audio = out.to_ndarray().reshape(-1).astype(np.float32) / np.float32(32768.0)
            yield samples

    with av.open(_opened(media), mode="r", metadata_errors="ignore") as container:
        frames = container.decode(audio=0)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.InvalidDataError:
                continue
            frame.pts = None
            fifo.write(frame)
            if fifo.samples >= RESAMPLE_BLOCK:
                yield from resample(fifo.read())
        if fifo.samples > 0:
            yield from resample(fifo.read())
        yield from resample(None)  # flush


def pcm_windows(media: MediaSource, seconds: float = WINDOW_SECONDS) -> Iterator[Audio]:
    """The media's 16 kHz mono samples in consecutive windows of `seconds` (the last one shorter),
    decoded as they are asked for: what long audio is processed by, in memory of one window."""
    size = int(seconds * SAMPLE_RATE)
    pending: list[Audio] = []
    held = 0
    for block in pcm_blocks(media, stereo=False):
        pending.append(block)
        held += len(block)
        while held >= size:
            joined = np.concatenate(pending)
            yield joined[:size]
            pending, held = [joined[size:]], held - size
    if held:
        yield np.concatenate(pending)
