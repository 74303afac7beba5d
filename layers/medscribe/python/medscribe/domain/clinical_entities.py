"""Coded clinical entities with their transcript evidence: the shape every entity engine returns. Pure.

An engine (Amazon Comprehend Medical in AWS, the deterministic offline extractor locally) reads the
numbered transcript lines (or a text note) and returns an `EntitySet`: entities in Comprehend
Medical's categories and types, each with its traits (negation and the like), its attributes (dose,
route, frequency...), its codes (ICD-10-CM, RxNorm, SNOMED CT) and the transcript lines it came
from, as (line, begin, end) spans into each line's text. Nothing here holds more than the engine
found in the text; an entity that could not be coded says why in `not_coded`.

`LineText` joins the lines into one text with stable offsets (what is sent to an engine, in pieces
when a service limits the request size) and maps an engine's offsets back to line spans.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medscribe.domain.transcript_lines import Line

# Comprehend Medical's categories (DetectEntitiesV2); PHI is not an entity category here (see redaction).
CATEGORIES = ("MEDICAL_CONDITION", "MEDICATION", "TEST_TREATMENT_PROCEDURE", "ANATOMY", "TIME_EXPRESSION")
TRAITS = ("NEGATION", "DIAGNOSIS", "SIGN", "SYMPTOM", "PERTAINS_TO_FAMILY", "HYPOTHETICAL", "LOW_CONFIDENCE",
          "PAST_HISTORY", "FUTURE")
CODE_SYSTEMS = ("ICD-10-CM", "RxNorm", "SNOMED CT")
SEPARATOR = "\n"  # between lines in the joined text; engines never see a speaker label


def entities_key(encounter_id: str) -> str:
    """Where the entities stage stores an encounter's EntitySet in the artifacts bucket."""
    return f"entities/{encounter_id}.json"


@dataclass(frozen=True)
class Span:
    """Characters [begin, end) of transcript line `line` (1-based line number, as Line.n)."""

    line: int
    begin: int
    end: int

    def as_dict(self) -> dict[str, int]:
        return {"line": self.line, "begin": self.begin, "end": self.end}


@dataclass(frozen=True)
class Code:
    system: str  # one of CODE_SYSTEMS
    code: str
    description: str
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "description": self.description, "score": self.score}


@dataclass(frozen=True)
class Attribute:
    """A modifier of an entity (DOSAGE, ROUTE_OR_MODE, FREQUENCY, STRENGTH, DURATION, FORM, ...)."""

    type: str
    text: str
    spans: tuple[Span, ...]
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text, "spans": [s.as_dict() for s in self.spans], "score": self.score}


@dataclass(frozen=True)
class Entity:
    id: str
    category: str  # one of CATEGORIES
    type: str  # Comprehend Medical's entity type, e.g. DX_NAME, GENERIC_NAME, TEST_NAME, PROCEDURE_NAME
    text: str
    spans: tuple[Span, ...]
    score: float | None = None
    traits: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    codes: tuple[Code, ...] = ()
    not_coded: str | None = None  # why no code was given (e.g. "offline: RxNorm is not available")

    @property
    def lines(self) -> tuple[int, ...]:
        """The transcript line numbers that are this entity's evidence, in order."""
        return tuple(sorted({s.line for s in self.spans}))

    @property
    def negated(self) -> bool:
        return "NEGATION" in self.traits

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "type": self.type, "text": self.text,
                "spans": [s.as_dict() for s in self.spans], "lines": list(self.lines), "score": self.score,
                "traits": list(self.traits), "attributes": [a.as_dict() for a in self.attributes],
                "codes": [c.as_dict() for c in self.codes], "not_coded": self.not_coded}


@dataclass(frozen=True)
class EntitySet:
    """Everything one engine found in one encounter's transcript (or text note)."""

    encounter_id: str
    engine: str  # "comprehend-medical" or "offline"
    language: str
    entities: tuple[Entity, ...] = ()
    notes: tuple[str, ...] = field(default=())  # what the engine could not do (no PHI), e.g. "Korean: not coded"

    def as_dict(self) -> dict[str, Any]:
        return {"encounter_id": self.encounter_id, "engine": self.engine, "language": self.language,
                "entities": [e.as_dict() for e in self.entities], "notes": list(self.notes)}

    def with_code(self, system: str, code: str) -> tuple[Entity, ...]:
        """The entities carrying `code` in `system` (what a search by code finds)."""
        return tuple(e for e in self.entities if any(c.system == system and c.code == code for c in e.codes))


def claim_entities(entities: EntitySet | None, cited: Iterable[object]) -> tuple[Entity, ...]:
    """The entities whose evidence lines overlap a claim's cited lines (what the review page and the
    workspace show beside the claim), in the set's order."""
    lines = {int(str(n)) for n in cited if str(n).strip().isdigit()}
    if entities is None or not lines:
        return ()
    return tuple(entity for entity in entities.entities if lines.intersection(entity.lines))


def claims_with_entities(note: Mapping[str, Any] | None, entities: EntitySet | None) -> list[dict[str, Any]]:
    """For every claim of a note (`{"sections": [{"name", "items": [{"text", "lines"}]}]}`) that has
    any: `{"section", "item" (1-based), "entities": [entity ids]}`, the entities of its cited lines."""
    found: list[dict[str, Any]] = []
    for section in (note or {}).get("sections") or []:
        for index, item in enumerate(section.get("items") or [], start=1):
            ids = [entity.id for entity in claim_entities(entities, item.get("lines") or [])]
            if ids:
                found.append({"section": str(section.get("name", "")), "item": index, "entities": ids})
    return found


def _spans(raw: Iterable[Mapping[str, Any]]) -> tuple[Span, ...]:
    return tuple(Span(int(s["line"]), int(s["begin"]), int(s["end"])) for s in raw)


def entity_set_from_dict(raw: Mapping[str, Any]) -> EntitySet:
    """The inverse of EntitySet.as_dict (stored JSON -> model); raises KeyError/ValueError on bad input."""
    entities = tuple(
        Entity(id=str(e["id"]), category=str(e["category"]), type=str(e["type"]), text=str(e["text"]),
               spans=_spans(e["spans"]), score=e.get("score"), traits=tuple(e.get("traits", ())),
               attributes=tuple(Attribute(type=str(a["type"]), text=str(a["text"]), spans=_spans(a["spans"]),
                                          score=a.get("score")) for a in e.get("attributes", ())),
               codes=tuple(Code(system=str(c["system"]), code=str(c["code"]), description=str(c["description"]),
                                score=c.get("score")) for c in e.get("codes", ())),
               not_coded=e.get("not_coded"))
        for e in raw["entities"])
    return EntitySet(encounter_id=str(raw["encounter_id"]), engine=str(raw["engine"]),
                     language=str(raw["language"]), entities=entities, notes=tuple(raw.get("notes", ())))


class LineText:
    """Transcript lines joined by SEPARATOR, with offsets that map back to (line, begin, end) spans."""

    def __init__(self, lines: Sequence[Line]) -> None:
        self.lines = tuple(lines)
        starts: list[int] = []
        position = 0
        for line in self.lines:
            starts.append(position)
            position += len(line.text) + len(SEPARATOR)
        self._starts = starts
        self.text = SEPARATOR.join(line.text for line in self.lines)

    def spans(self, begin: int, end: int) -> tuple[Span, ...]:
        """The line spans covering text[begin:end] (one per line it touches); empty if out of range."""
        if not self.lines or end <= begin or begin < 0 or begin >= len(self.text):
            return ()
        end = min(end, len(self.text))
        found: list[Span] = []
        index = bisect.bisect_right(self._starts, begin) - 1
        while index < len(self.lines) and self._starts[index] < end:
            start, line = self._starts[index], self.lines[index]
            low, high = max(begin - start, 0), min(end - start, len(line.text))
            if high > low:
                found.append(Span(line.n, low, high))
            index += 1
        return tuple(found)

    def chunks(self, limit: int) -> list[tuple[int, str]]:
        """(offset, text) pieces of at most `limit` characters, cut at line boundaries where possible
        (a single line longer than `limit` is cut at its last space before the limit, else hard)."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        pieces: list[tuple[int, str]] = []
        begin = 0
        while begin < len(self.text):
            end = min(begin + limit, len(self.text))
            if end < len(self.text):
                cut = self.text.rfind(SEPARATOR, begin, end)
                if cut <= begin:
                    cut = self.text.rfind(" ", begin, end)
                end = cut + 1 if cut > begin else end
            pieces.append((begin, self.text[begin:end]))
            begin = end
        return pieces
