"""Transcript parser over every Amazon Transcribe output in tests/fixtures/transcribe-output, with an
equivalence check against tscribe's rows where tscribe is right, and the layouts it gets wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import tscribe

from medscribe.domain.transcript_lines import TranscriptFormatError, parse_transcribe_output
from tests import FIXTURES

DATA = FIXTURES / "transcribe-output"
HAND_MADE = FIXTURES / "transcribe"
SAMPLES = sorted([*DATA.glob("tscribe/**/*.json"), *DATA.glob("aws-docs/strict_json/*.json")])


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def has(document: dict[str, Any], key: str) -> bool:
    return key in document["results"]


def words_of(document: dict[str, Any]) -> list[str]:
    """Every item's best content in document order: what the lines must contain, nothing more or less."""
    out = []
    for item in document["results"]["items"]:
        best = max(enumerate(item["alternatives"]), key=lambda p: (float(p[1].get("confidence") or 0), p[0]))[1]
        out.append(best["content"])
    return out


def test_every_sample_is_found() -> None:
    assert len(SAMPLES) >= 14


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_lines_are_numbered_and_keep_every_word(path: Path) -> None:
    document = load(path)
    lines = parse_transcribe_output(document)
    assert [line.n for line in lines] == list(range(1, len(lines) + 1))
    joined = " ".join(line.text for line in lines).replace(" ", "")
    assert joined == "".join(w for w in words_of(document) if w)
    for line in lines:
        assert line.start <= line.end
        assert line.speaker
        assert line.confidence is None or 0.0 <= line.confidence <= 1.0


@pytest.mark.parametrize("path", [p for p in SAMPLES if has(load(p), "speaker_labels")], ids=lambda p: p.name)
def test_speaker_labels_equal_tscribe_rows(path: Path) -> None:
    document = load(path)
    rows = list(tscribe.decode_transcript(document).itertuples(index=False))
    lines = parse_transcribe_output(document)
    assert [(r.speaker, r.start_time, r.end_time, r.comment) for r in rows] == [
        (line.speaker, tscribe.convert_time_stamp(line.start), tscribe.convert_time_stamp(line.end), line.text)
        for line in lines
    ]


@pytest.mark.parametrize("path", [p for p in SAMPLES if has(load(p), "channel_labels")], ids=lambda p: p.name)
def test_channel_labels_equal_tscribe_rows_except_its_end_time(path: Path) -> None:
    document = load(path)
    rows = list(tscribe.decode_transcript(document).itertuples(index=False))
    lines = parse_transcribe_output(document)
    assert [(r.speaker, r.start_time, r.comment) for r in rows] == [
        (line.speaker, tscribe.convert_time_stamp(line.start), line.text) for line in lines
    ]
    # tscribe ends a channel row at its FIRST word's end time; ours ends at the last word's.
    for line in lines:
        assert line.end >= line.start


@pytest.mark.parametrize(
    "path", [p for p in SAMPLES if not has(load(p), "channel_labels") and not has(load(p), "speaker_labels")],
    ids=lambda p: p.name,
)
def test_single_speaker_is_split_into_sentences_where_tscribe_doubles_punctuation(path: Path) -> None:
    document = load(path)
    [row] = list(tscribe.decode_transcript(document).itertuples(index=False))
    lines = parse_transcribe_output(document)
    assert all(line.text[-1] in ".?!" for line in lines[:-1])
    # tscribe writes each punctuation mark twice ("fell. ."); with that undone the text is ours
    undoubled = row.comment
    for mark in ".,?!":
        undoubled = undoubled.replace(f"{mark} {mark}", mark)
    assert undoubled == " ".join(line.text for line in lines)


def test_audio_segments_layout() -> None:
    document = load(HAND_MADE / "audio-segments-diarization.json")
    del document["results"]["speaker_labels"]  # the newer layout on its own
    lines = parse_transcribe_output(document)
    assert [(line.n, line.speaker, line.start, line.end, line.text) for line in lines] == [
        (1, "spk_0", 4.87, 6.88, "I've been on hold for an hour."),
        (2, "spk_1", 8.49, 9.24, "Sorry about that."),
    ]
    assert lines[1].confidence == pytest.approx((0.989 + 1 + 1) / 3, abs=1e-4)
    # tscribe does not know this layout: everything lands in one row
    assert len(tscribe.decode_transcript(document)) == 1


def test_audio_segments_agree_with_speaker_labels_when_both_are_present() -> None:
    both = load(HAND_MADE / "audio-segments-diarization.json")
    legacy = copy.deepcopy(both)
    del legacy["results"]["audio_segments"]
    assert [(x.speaker, x.text) for x in parse_transcribe_output(both)] == [
        (x.speaker, x.text) for x in parse_transcribe_output(legacy)
    ]


def test_medical_output_with_speaker_labels() -> None:
    lines = parse_transcribe_output(load(DATA / "aws-docs/strict_json/medical-conversation-diarization-batch.json"))
    assert [(line.speaker, line.text) for line in lines] == [("spk_0", "Professional answer.")]
    assert lines[0].confidence == pytest.approx((0.8162 + 0.9939) / 2, abs=1e-4)


def test_alternatives_take_the_most_confident() -> None:
    document = {"results": {"items": [
        {"type": "pronunciation", "start_time": 0, "end_time": 1,
         "alternatives": [{"content": "hypertension", "confidence": 0.4},
                          {"content": "hypotension", "confidence": 0.9}]},
    ]}}
    assert parse_transcribe_output(document)[0].text == "hypotension"


def test_not_a_transcribe_document() -> None:
    with pytest.raises(TranscriptFormatError):
        parse_transcribe_output({"results": {}})


def test_long_transcript_keeps_every_segment() -> None:
    """The 03 sample repeated 20 times (times shifted): every segment stays its own line.
    Speed against tscribe is measured in bench/transcript.py, not asserted here."""
    document = load(DATA / "tscribe/03-speaker-identification.json")
    big = copy.deepcopy(document)
    results = big["results"]
    segments, items = results["speaker_labels"]["segments"], results["items"]
    for k in range(1, 20):
        shift = k * 1000.0
        for segment in document["results"]["speaker_labels"]["segments"]:
            clone = copy.deepcopy(segment)
            for ref in [clone, *clone["items"]]:
                ref["start_time"] = f"{float(ref['start_time']) + shift:.2f}"
                ref["end_time"] = f"{float(ref['end_time']) + shift:.2f}"
            segments.append(clone)
        for item in document["results"]["items"]:
            clone = copy.deepcopy(item)
            if "start_time" in clone:
                clone["start_time"] = f"{float(clone['start_time']) + shift:.2f}"
                clone["end_time"] = f"{float(clone['end_time']) + shift:.2f}"
            items.append(clone)
    assert len(parse_transcribe_output(big)) == 20 * len(parse_transcribe_output(document))
