"""The Amazon Transcribe output document the local Transcribe service writes, from recognized words.

Speaker attribution:
- two-channel audio (one speaker per channel: a telephone line, two microphones): each word goes to
  the channel with more energy over the word's time span (ch_0 = left, ch_1 = right); with speaker
  labels, ch_0 is spk_0 and ch_1 is spk_1. A stereo mix-down of one room is not separated.
- mono audio with speaker labels asked for: the speakers diarization.py finds (the diarization
  extra), numbered spk_0, spk_1... in order of first appearance;
- otherwise (mono without the extra or without speaker labels, more than two channels): every word
  is spk_0 / ch_0.
The output names the rule it used: results.medscribe_attribution = "channel-energy" |
"embedding-clustering" | "single-speaker".

Output layout (the newer Transcribe layout): items with ids (punctuation split off the words as
separate items), speaker_labels and/or channel_labels as the job's settings ask, and audio_segments:
runs of one speaker's words, split at pauses over 1.5 s (and at a sentence end once a run is 30 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medscribe_local.media_decoding import SAMPLE_RATE, Audio
from medscribe_local.whisper_engine import Word

PAUSE_SPLIT_SECONDS = 1.5
LONG_SEGMENT_SECONDS = 30.0
MIN_ENERGY_WINDOW_SECONDS = 0.1


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
    language_scores: Sequence[tuple[str, float]] = (), attribution: str | None = None,
) -> dict[str, Any]:
    """The batch output document Amazon Transcribe writes, from attributed words (`attribution`: the
    method that numbered the speakers of a mono recording, when one did)."""
    attribution = attribution or ("channel-energy" if two_channels else "single-speaker")
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
