"""The de-identified copies of an encounter: its transcript and its note with PHI replaced. Pure.

The entities stage writes them beside its entities (redacted/<id>/transcript.json, redacted/<id>/note.json,
and redacted/<id>/emr.json for a Korean recording's EMR record) from the same lines it codes:
`medscribe.domain.redaction`'s rules for every language, plus, in AWS and for English, the spans
Amazon Comprehend Medical's DetectPHI finds (a `PhiDetector`). The copies keep every line number,
speaker, time and citation, so a claim still cites the same lines; they hold no count or key that
names a person. The redacted copy is what may leave the PHI stores (see the README, "Redacted copies").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from medscribe.domain.redaction import PhiSpan, free_texts, redact_document
from medscribe.domain.transcript_lines import Line

REDACTED_FOLDER = "redacted"  # redacted/<encounter id>/...: erased with the encounter's other artifacts
RULES = "rules"

# (texts, language) -> the PHI spans found in each text (offsets into that text), e.g. DetectPHI
PhiDetector = Callable[[Sequence[str], str], list[list[PhiSpan]]]


def redacted_keys(encounter_id: str) -> dict[str, str]:
    folder = f"{REDACTED_FOLDER}/{encounter_id}"
    return {"transcript": f"{folder}/transcript.json", "note": f"{folder}/note.json", "emr": f"{folder}/emr.json"}


def remembering(detector: PhiDetector) -> PhiDetector:
    """`detector`, asked about each distinct text once: a note's lines repeat the transcript's, and
    DetectPHI is billed per character sent."""
    known: dict[tuple[str, str], list[PhiSpan]] = {}

    def detect(texts: Sequence[str], language: str) -> list[list[PhiSpan]]:
        new = [text for text in dict.fromkeys(texts) if (language, text) not in known]
        if new:
            for text, spans in zip(new, detector(new, language), strict=True):
                known[(language, text)] = spans
        return [list(known[(language, text)]) for text in texts]

    return detect


def _detected(detector: PhiDetector | None, texts: Sequence[str], language: str) -> list[list[PhiSpan]]:
    return detector(texts, language) if detector is not None and texts else []


def redacted_transcript(encounter_id: str, lines: Sequence[Line], language: str, *,
                        detector: PhiDetector | None = None, engine: str = RULES) -> dict[str, Any]:
    """The lines (transcripts/<id>/lines.json's shape: `lines_from_json` reads it) with PHI replaced
    by `[CATEGORY]`, and how many spans of each category were replaced."""
    document = {"lines": [line.as_dict() for line in lines]}
    texts = free_texts(document)
    copy, counts = redact_document(document, language, _detected(detector, texts, language))
    return {"encounter_id": encounter_id, "language": language, "engine": engine,
            "lines": cast(dict[str, Any], copy)["lines"],
            "redacted": dict(sorted(counts.items()))}


def redacted_note(encounter_id: str, note: Mapping[str, Any], language: str, *,
                  detector: PhiDetector | None = None, engine: str = RULES) -> dict[str, Any]:
    """A note or EMR record (as stored) with PHI replaced in every free-text value, its structure
    (sections, citations, status, template) kept."""
    texts = free_texts(dict(note))
    copy, counts = redact_document(dict(note), language, _detected(detector, texts, language))
    return {"encounter_id": encounter_id, "language": language, "engine": engine, "document": copy,
            "redacted": dict(sorted(counts.items()))}
