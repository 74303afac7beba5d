"""The diarization steps that need no model: windows, clustering, word labels, smoothing, numbering."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medscribe_local.diarization import (
    HOP_SECONDS,
    WINDOW_SECONDS,
    Window,
    cluster,
    in_order_of_appearance,
    label_words,
    windows_of,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def voices(rng: np.random.Generator, centres: list[np.ndarray], counts: list[int], spread: float) -> np.ndarray:
    return unit(np.vstack([centre + spread * rng.standard_normal((count, len(centre)))
                           for centre, count in zip(centres, counts, strict=True)]))


def test_a_short_region_is_one_window_and_a_long_one_is_covered_by_overlapping_windows() -> None:
    found = windows_of([(0.0, 1.0), (2.0, 2.1), (3.0, 7.0)])
    assert found[0] == Window(0.0, 1.0, 0)
    assert all(w.region != 1 for w in found)  # 0.1 s is too short to embed
    long = [w for w in found if w.region == 2]
    assert long[0].start == 3.0
    assert long[-1].end == 7.0
    assert all(w.end - w.start == pytest.approx(WINDOW_SECONDS) for w in long)
    assert all(b.start - a.start <= HOP_SECONDS + 1e-9 for a, b in itertools.pairwise(long))


def test_two_distinct_voices_make_two_clusters_and_one_voice_stays_one() -> None:
    rng = np.random.default_rng(7)
    a, b = unit(rng.standard_normal((2, 32)))
    two = voices(rng, [a, b], [30, 20], 0.08)
    labels = cluster(two, max_speakers=2)
    assert len(set(labels[:30])) == 1
    assert len(set(labels[30:])) == 1
    assert labels[0] != labels[30]
    one = voices(rng, [a], [40], 0.08)
    assert set(cluster(one, max_speakers=2)) == {0}


def test_no_more_clusters_than_max_speakers() -> None:
    rng = np.random.default_rng(3)
    centres = list(unit(rng.standard_normal((4, 32))))
    labels = cluster(voices(rng, centres, [10, 10, 10, 10], 0.05), max_speakers=3)
    assert len(set(labels)) <= 3
    assert len(set(cluster(voices(rng, centres, [10, 10, 10, 10], 0.05), max_speakers=4))) == 4


def test_each_word_takes_the_speaker_of_the_nearest_window_in_its_region() -> None:
    regions = [(0.0, 2.0), (2.5, 4.5)]
    windows = [Window(0.0, 1.5, 0), Window(0.5, 2.0, 0), Window(2.5, 4.0, 1), Window(3.0, 4.5, 1)]
    labels = np.array([0, 0, 1, 1])
    words = [(0.1, 0.4), (1.2, 1.6), (2.6, 3.0), (4.0, 4.4)]
    assert label_words(words, windows, labels, regions) == [0, 0, 1, 1]


def test_a_short_flip_between_two_runs_of_one_speaker_is_smoothed_away() -> None:
    regions = [(0.0, 6.0)]
    windows = [Window(0.0, 1.5, 0), Window(1.5, 3.0, 0), Window(3.0, 4.5, 0), Window(4.5, 6.0, 0)]
    labels = np.array([0, 1, 0, 0])
    words = [(0.2, 0.5), (0.6, 0.9), (2.2, 2.4), (3.5, 3.8), (4.0, 4.3)]  # the flip is one 0.2 s word
    assert label_words(words, windows, labels, regions) == [0, 0, 0, 0, 0]


def test_speakers_are_numbered_in_order_of_first_appearance() -> None:
    assert in_order_of_appearance([3, 3, 1, 3, 0, 1]) == [0, 0, 1, 0, 2, 1]


def test_no_windows_means_one_speaker() -> None:
    assert label_words([(0.0, 0.5), (1.0, 1.2)], [], np.zeros(0, dtype=int), []) == [0, 0]
    assert list(cluster(np.zeros((0, 4)), 2)) == []
