"""Amazon Transcribe output -> numbered speaker lines. Pure and linear in the number of items.

Layouts understood (checked against real outputs in tests/fixtures/transcribe-output):
- `audio_segments` (the newer layout): one line per segment; words from the segment's item ids.
- `speaker_labels`: one line per diarization segment (as tscribe does), words matched to items by
  their (start, end) times through a dictionary, not a scan per word.
- `channel_labels`, or items carrying `channel_label`/`speaker_label` themselves: a new line whenever
  the label changes.
- none of these (a single speaker): one line per sentence.

Alternatives: the highest-confidence alternative of each item (ties: the last, as tscribe does).
Redaction (`[PII]`), vocabulary-filter masks (`***`) and removed words pass through as content.
Transcribe Medical output has the same shape. Numbers arrive as strings or numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

SENTENCE_END = frozenset({".", "?", "!", "\u3002", "\uff1f", "\uff01"})  # with CJK full-width forms


@dataclass(frozen=True)
class Line:
    """One numbered transcript line: a speaker turn (or a sentence when speakers are unknown)."""

    n: int
    speaker: str
    start: float
    end: float
    text: str
    confidence: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Word:
    content: str
    punctuation: bool
    start: float | None
    end: float | None
    confidence: float | None


class TranscriptFormatError(ValueError):
    """The document is not an Amazon Transcribe output this parser understands."""


def _num(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _word(item: Mapping[str, Any]) -> _Word:
    alternatives = item.get("alternatives") or [{"content": "", "confidence": None}]
    best = max(enumerate(alternatives), key=lambda pair: (_num(pair[1].get("confidence")) or 0.0, pair[0]))[1]
    return _Word(
        content=str(best.get("content", "")),
        punctuation=item.get("type") == "punctuation",
        start=_num(item.get("start_time")),
        end=_num(item.get("end_time")),
        confidence=_num(best.get("confidence")),
    )


def _time_key(start: Any, end: Any) -> tuple[str, str]:
    return (str(start), str(end))


class _LineBuilder:
    def __init__(self) -> None:
        self.lines: list[Line] = []

    def add(self, speaker: str, words: Iterable[_Word], start: float | None = None, end: float | None = None) -> None:
        parts: list[str] = []
        confidences: list[float] = []
        first: float | None = start
        last: float | None = end
        for word in words:
            if not word.content:
                continue
            if word.punctuation and parts:
                parts[-1] += word.content
            else:
                parts.append(word.content)
            if not word.punctuation:
                if word.confidence is not None:
                    confidences.append(word.confidence)
                if start is None and first is None:
                    first = word.start
                if end is None and word.end is not None:
                    last = word.end
        if not parts:
            return
        self.lines.append(Line(
            n=len(self.lines) + 1, speaker=speaker, start=first or 0.0, end=last or first or 0.0,
            text=" ".join(parts), confidence=round(sum(confidences) / len(confidences), 4) if confidences else None,
        ))


def _with_trailing_punctuation(items: Sequence[Mapping[str, Any]], index: int) -> list[_Word]:
    words = [_word(items[index])]
    if index + 1 < len(items) and items[index + 1].get("type") == "punctuation":
        words.append(_word(items[index + 1]))
    return words


def _from_audio_segments(results: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> list[Line]:
    by_id = {int(item["id"]): item for item in items if "id" in item}
    builder = _LineBuilder()
    for segment in results["audio_segments"]:
        speaker = str(segment.get("speaker_label") or segment.get("channel_label") or "spk_0")
        ids = [int(i) for i in segment.get("items", [])]
        words = [_word(by_id[i]) for i in ids if i in by_id]
        builder.add(speaker, words, _num(segment.get("start_time")), _num(segment.get("end_time")))
    return builder.lines


def _from_speaker_segments(results: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> list[Line]:
    # first occurrence -> where its trailing punctuation is; last occurrence -> its content (tscribe's choice)
    first_index: dict[tuple[str, str], int] = {}
    last_index: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        if item.get("type") == "pronunciation":
            key = _time_key(item.get("start_time"), item.get("end_time"))
            first_index.setdefault(key, index)
            last_index[key] = index
    builder = _LineBuilder()
    for segment in results["speaker_labels"].get("segments", []):
        words: list[_Word] = []
        for ref in segment.get("items", []):
            key = _time_key(ref.get("start_time"), ref.get("end_time"))
            if key not in last_index:
                continue
            words.append(_word(items[last_index[key]]))
            words.extend(_with_trailing_punctuation(items, first_index[key])[1:])
        if segment.get("items"):
            builder.add(str(segment.get("speaker_label", "spk_0")), words,
                        _num(segment.get("start_time")), _num(segment.get("end_time")))
    return builder.lines


def _label_of_items(results: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    labels: dict[tuple[str, str], str] = {}
    for channel in (results.get("channel_labels") or {}).get("channels", []):
        for item in channel.get("items", []):
            if item.get("type") == "pronunciation":
                labels[_time_key(item.get("start_time"), item.get("end_time"))] = str(channel["channel_label"])
    return labels


def _from_item_labels(results: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> list[Line]:
    labels = _label_of_items(results)
    builder = _LineBuilder()
    current: str | None = None
    run: list[_Word] = []
    for item in items:
        word = _word(item)
        if word.punctuation:
            run.append(word)
            continue
        label = (item.get("channel_label") or item.get("speaker_label")
                 or labels.get(_time_key(item.get("start_time"), item.get("end_time"))) or current or "spk_0")
        if label != current and run:
            builder.add(current or "spk_0", run)
            run = []
        current = str(label)
        run.append(word)
    if run:
        builder.add(current or "spk_0", run)
    return builder.lines


def _by_sentence(items: Sequence[Mapping[str, Any]]) -> list[Line]:
    builder = _LineBuilder()
    run: list[_Word] = []
    for item in items:
        word = _word(item)
        run.append(word)
        if word.punctuation and word.content in SENTENCE_END:
            builder.add("spk_0", run)
            run = []
    if run:
        builder.add("spk_0", run)
    return builder.lines


def parse_transcribe_output(document: Mapping[str, Any]) -> list[Line]:
    """Numbered lines from a Transcribe (or Transcribe Medical) batch output document."""
    results = document.get("results")
    if not isinstance(results, Mapping) or not isinstance(results.get("items"), list):
        raise TranscriptFormatError("not an Amazon Transcribe output: results.items is missing")
    items: list[Mapping[str, Any]] = results["items"]
    if results.get("audio_segments") and all("id" in item for item in items):
        return _from_audio_segments(results, items)
    if results.get("speaker_labels", {}).get("segments"):
        return _from_speaker_segments(results, items)
    if results.get("channel_labels") or any("channel_label" in i or "speaker_label" in i for i in items):
        return _from_item_labels(results, items)
    return _by_sentence(items)


def lines_from_json(document: dict[str, Any]) -> list[Line]:
    """The numbered lines of a stored transcript (transcripts/<id>/lines.json: {"lines": [...]})."""
    return [Line(n=int(x["n"]), speaker=str(x["speaker"]), start=float(x.get("start") or 0.0),
                 end=float(x.get("end") or 0.0), text=str(x["text"]), confidence=x.get("confidence"))
            for x in document["lines"]]


def note_text_lines(text: str) -> list[Line]:
    """A text note's non-blank lines, numbered as in the file (1-based), as Line records: what the
    entities stage codes and the after-visit summary of a text note cites."""
    return [Line(n=number, speaker="", start=0.0, end=0.0, text=raw.strip(), confidence=None)
            for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1)
            if raw.strip()]
