"""Speaker diarization for mono recordings in the local speech engine (the optional `diarization` extra).

Amazon Transcribe separates speakers in a mono recording (ShowSpeakerLabels); locally this module
does, with nothing downloaded at run time:
1. voice activity: the Silero VAD that faster-whisper ships (`faster_whisper.vad`), speech regions
   split at pauses of 250 ms or more, padded by 60 ms;
2. speaker embeddings: Resemblyzer's GE2E voice encoder, whose weights ship in its wheel
   (`resemblyzer/pretrained.pt`), on 1.5 s windows every 0.75 s inside each region (a shorter
   region is one window);
3. clustering: agglomerative, cosine distance, average linkage, into at most `max_speakers`
   clusters; a cluster pair whose centroids are closer than MERGE_SIMILARITY is one speaker, so a
   monologue stays one speaker; then one reassignment of every window to its nearest centroid;
4. words: each recognized word takes the speaker of the window nearest its midpoint (in its region,
   else the nearest), and a run of under MIN_RUN_SECONDS between two runs of one speaker joins them.
Speakers are numbered in order of first appearance (spk_0 speaks first). The output names the
method: results.medscribe_attribution = "embedding-clustering".

The extra (Resemblyzer, and PyTorch's CPU build, which it needs) is installed by `make install`;
without it a mono recording is one speaker, as before, and the log says why. `bench/diarization.py`
measures the diarization error rate and real-time factor on mono mixes with known turns.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medscribe_local.media_decoding import SAMPLE_RATE

log = logging.getLogger("medscribe_local")

METHOD = "embedding-clustering"
WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
MIN_REGION_SECONDS = 0.25  # shorter speech is not embedded; its words follow their neighbours
MERGE_SIMILARITY = 0.86  # centroids at least this similar (cosine) are one speaker
MIN_RUN_SECONDS = 0.6
VAD_MIN_SILENCE_MS = 250
VAD_SPEECH_PAD_MS = 60  # faster-whisper pads 400 ms for recognition, which joins turns 0.5 s apart


def _module(name: str) -> Any:
    """The optional extra's modules, imported when first needed (untyped: PyTorch is not type-checked here)."""
    return importlib.import_module(name)


def available() -> bool:
    """Whether the diarization extra (Resemblyzer and PyTorch) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("resemblyzer", "torch"))


@dataclass(frozen=True)
class Window:
    start: float  # seconds
    end: float
    region: int

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech, by faster-whisper's packaged Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    stamps = get_speech_timestamps(audio.astype(np.float32), VadOptions(
        min_silence_duration_ms=VAD_MIN_SILENCE_MS, speech_pad_ms=VAD_SPEECH_PAD_MS))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def windows_of(regions: Sequence[tuple[float, float]]) -> list[Window]:
    """Embedding windows: WINDOW_SECONDS every HOP_SECONDS inside each region; a short region is one."""
    found: list[Window] = []
    for index, (start, end) in enumerate(regions):
        if end - start < MIN_REGION_SECONDS:
            continue
        if end - start <= WINDOW_SECONDS + HOP_SECONDS / 2:
            found.append(Window(start, end, index))
            continue
        position = start
        while position + WINDOW_SECONDS < end:
            found.append(Window(position, position + WINDOW_SECONDS, index))
            position += HOP_SECONDS
        found.append(Window(max(start, end - WINDOW_SECONDS), end, index))
    return found


def cluster(embeddings: np.ndarray, max_speakers: int) -> np.ndarray:
    """A speaker index per (L2-normalised) embedding: at most `max_speakers`, merged while two
    centroids are at least MERGE_SIMILARITY alike, then each embedding moved to its nearest centroid."""
    if len(embeddings) == 0:
        return np.zeros(0, dtype=int)
    if len(embeddings) == 1 or max_speakers <= 1:
        return np.zeros(len(embeddings), dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(embeddings, method="average", metric="cosine")
    labels = fcluster(tree, t=max_speakers, criterion="maxclust") - 1
    for _ in range(max_speakers):
        centroids = _centroids(embeddings, labels)
        if len(centroids) < 2:
            break
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -1.0)
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < MERGE_SIMILARITY:
            break
        labels = np.where(labels == b, a, labels)
        labels = np.unique(labels, return_inverse=True)[1]
    centroids = _centroids(embeddings, labels)
    return np.asarray(np.argmax(embeddings @ centroids.T, axis=1), dtype=int)


def _centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    rows = []
    for label in range(int(labels.max()) + 1):
        members = embeddings[labels == label]
        if len(members):
            mean = members.mean(axis=0)
            rows.append(mean / (np.linalg.norm(mean) or 1.0))
    return np.asarray(rows)


def label_words(words: Sequence[tuple[float, float]], windows: Sequence[Window], labels: np.ndarray,
                regions: Sequence[tuple[float, float]]) -> list[int]:
    """A speaker per word (start, end): the label of the window nearest the word's midpoint, preferring
    windows of the region the word falls in; then short runs between two runs of one speaker join them."""
    if not windows:
        return [0] * len(words)
    middles = np.asarray([w.middle for w in windows])
    by_region: dict[int, list[int]] = {}
    for index, window in enumerate(windows):
        by_region.setdefault(window.region, []).append(index)
    starts = np.asarray([r[0] for r in regions]) if regions else np.zeros(0)
    assigned: list[int] = []
    for start, end in words:
        middle = (start + end) / 2
        region = int(np.searchsorted(starts, middle, side="right")) - 1
        candidates = by_region.get(region) if region >= 0 and middle <= regions[region][1] else None
        pool = np.asarray(candidates) if candidates else np.arange(len(windows))
        nearest = pool[int(np.argmin(np.abs(middles[pool] - middle)))]
        assigned.append(int(labels[nearest]))
    return _smoothed(words, assigned)


def _smoothed(words: Sequence[tuple[float, float]], labels: list[int]) -> list[int]:
    runs: list[list[int]] = []  # [label, first index, last index]
    for index, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1][2] = index
        else:
            runs.append([label, index, index])
    result = list(labels)
    for position in range(1, len(runs) - 1):
        label, first, last = runs[position]
        before, after = runs[position - 1][0], runs[position + 1][0]
        if before == after != label and words[last][1] - words[first][0] < MIN_RUN_SECONDS:
            result[first:last + 1] = [before] * (last - first + 1)
            runs[position][0] = before
    return result


def in_order_of_appearance(labels: Sequence[int]) -> list[int]:
    """Speaker numbers renamed so that the first to speak is 0, the next new one 1, and so on."""
    names: dict[int, int] = {}
    return [names.setdefault(label, len(names)) for label in labels]


class Diarizer:
    """Assigns a speaker to every recognized word of a mono recording. One encoder per process."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._encoder: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._encoder is None:
                torch, resemblyzer = _module("torch"), _module("resemblyzer")
                torch.set_num_threads(self.threads)
                self._encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
            return self._encoder

    def embed(self, audio: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
        """An L2-normalised GE2E embedding per window (mel frames computed once for the recording)."""
        if not windows:
            return np.zeros((0, 256), dtype=np.float32)
        torch = _module("torch")
        encoder = self._load()
        mel = _module("resemblyzer.audio").wav_to_mel_spectrogram(audio.astype(np.float32))
        frames_per_second = 1000 / _module("resemblyzer.hparams").mel_window_step
        rows = []
        with self._lock, torch.no_grad():
            for window in windows:
                first = int(window.start * frames_per_second)
                last = max(first + 1, int(window.end * frames_per_second))
                frames = torch.from_numpy(np.ascontiguousarray(mel[first:last])).unsqueeze(0)
                rows.append(encoder(frames).numpy()[0])
        embeddings = np.asarray(rows, dtype=np.float32)
        normalised: np.ndarray = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
        return normalised

    def timeline(self, audio: np.ndarray, max_speakers: int) -> list[tuple[float, float, int]]:
        """Who speaks when, without words: (start, end, speaker) for the speech regions, each region cut
        halfway between neighbouring windows of different speakers (what bench/diarization.py scores)."""
        regions = speech_regions(audio)
        windows = windows_of(regions)
        labels = in_order_of_appearance(list(cluster(self.embed(audio, windows), max_speakers)))
        turns: list[tuple[float, float, int]] = []
        for index, (start, end) in enumerate(regions):
            inside = [(w, label) for w, label in zip(windows, labels, strict=True) if w.region == index]
            if not inside:
                continue
            edge = start
            for (window, label), (following, next_label) in itertools.pairwise(inside):
                if label != next_label:
                    cut = (window.middle + following.middle) / 2
                    turns.append((edge, cut, label))
                    edge = cut
            turns.append((edge, end, inside[-1][1]))
        return turns

    def speakers(self, audio: np.ndarray, words: Sequence[tuple[float, float]], max_speakers: int) -> list[int]:
        """A speaker number per word (start, end seconds), first speaker 0."""
        if not words:
            return []
        regions = speech_regions(audio)
        windows = windows_of(regions)
        labels = cluster(self.embed(audio, windows), max_speakers)
        found = in_order_of_appearance(label_words(words, windows, labels, regions))
        log.info("mono recording diarized: %d speakers over %d windows", len(set(found)), len(windows))
        return found
