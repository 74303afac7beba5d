"""Coded clinical entities by Amazon Comprehend Medical: DetectEntitiesV2 for the entities (traits,
attributes, scores) and InferICD10CM, InferRxNorm, InferSNOMEDCT for their codes; DetectPHI for the
spans the redacted copies hide (medscribe.domain.redacted_copies), beside the offline rules.

Request limits (API reference, Request Parameters, Text; botocore comprehendmedical 2018-10-30):
DetectEntitiesV2 and DetectPHI take "fewer than 20,000 bytes of characters"; the Infer* calls take "a string from 1
to 10000 characters". The transcript's joined text (medscribe.domain.clinical_entities.LineText) is cut
at line boundaries into pieces measured in UTF-8 **bytes** (a piece of 10,000 bytes is at most 10,000
characters, so one measure serves both rules), and each piece's offsets are shifted by the piece's
offset before they are mapped back to line spans. The service's offsets count characters (code
points), as Python's do.

Merging: an Infer* entity gives its best concept to the entity it overlaps with the same category
(ICD-10-CM for MEDICAL_CONDITION, RxNorm for MEDICATION, SNOMED CT for MEDICAL_CONDITION, ANATOMY and
TEST_TREATMENT_PROCEDURE); one that overlaps none is an entity of its own. PHI and
BEHAVIORAL_ENVIRONMENTAL_SOCIAL entities are not kept (see medscribe.domain.clinical_entities.CATEGORIES).

Throttling (TooManyRequestsException, HTTP 429; also ThrottlingException and 5xx) backs off with jitter
and retries; when the attempts are spent the call is a TransientError (the message returns to its
queue). Other SDK errors are typed by `errors.classify`. English only: any other language gets an
EntitySet with no entities and a note. Nothing here logs a text: counts and sizes only.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify, error_code
from medscribe.adapters.llm.retry import backoff_delay
from medscribe.domain.clinical_entities import (
    CATEGORIES,
    SEPARATOR,
    TRAITS,
    Attribute,
    Code,
    Entity,
    EntitySet,
    LineText,
)
from medscribe.domain.errors import TransientError
from medscribe.domain.redaction import PhiSpan, service_span
from medscribe.domain.transcript_lines import Line
from medscribe.observability import logger

ENGINE = "comprehend-medical"
DETECT_TEXT_BYTES = 19_999  # DetectEntitiesV2 and DetectPHI: fewer than 20,000 bytes
INFER_TEXT_BYTES = 10_000  # InferICD10CM / InferRxNorm / InferSNOMEDCT: 1 to 10,000 characters
KOREAN_NOTE = "Comprehend Medical does not read Korean; not coded"
OTHER_LANGUAGE_NOTE = "Comprehend Medical reads English only; not coded"


@dataclass(frozen=True)
class Ontology:
    """One Infer* call: its operation, its code system, where its concepts are, and the categories of
    DetectEntitiesV2 entities its codes belong to."""

    operation: str
    method: str
    system: str
    concepts: str
    categories: frozenset[str]


ONTOLOGIES = (
    Ontology("InferICD10CM", "infer_icd10_cm", "ICD-10-CM", "ICD10CMConcepts", frozenset({"MEDICAL_CONDITION"})),
    Ontology("InferRxNorm", "infer_rx_norm", "RxNorm", "RxNormConcepts", frozenset({"MEDICATION"})),
    Ontology("InferSNOMEDCT", "infer_snomedct", "SNOMED CT", "SNOMEDCTConcepts",
             frozenset({"MEDICAL_CONDITION", "ANATOMY", "TEST_TREATMENT_PROCEDURE"})),
)


def utf8_pieces(text: str, max_bytes: int) -> list[tuple[int, str]]:
    """(offset, piece) of `text` in pieces of at most `max_bytes` UTF-8 bytes, cut after a line break
    where possible, else after a space, else between two characters (never inside one); offsets in
    characters. Pieces with nothing but whitespace are left out (the service takes none)."""
    if max_bytes < 4:
        raise ValueError("max_bytes must hold any one character (4 bytes)")
    ends = [0]  # ends[i]: UTF-8 bytes of text[:i]
    for character in text:
        ends.append(ends[-1] + len(character.encode("utf-8")))
    pieces: list[tuple[int, str]] = []
    begin = 0
    while begin < len(text):
        end = bisect.bisect_right(ends, ends[begin] + max_bytes) - 1  # the most characters that fit
        if end < len(text):
            cut = text.rfind("\n", begin, end)
            if cut <= begin:
                cut = text.rfind(" ", begin, end)
            end = cut + 1 if cut > begin else end
        if text[begin:end].strip():
            pieces.append((begin, text[begin:end]))
        begin = end
    return pieces


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass
class _Found:
    """An entity while the calls are merged: its character range in the joined text and the model."""

    bounds: tuple[int, int]
    entity: Entity


class ComprehendMedicalEntities:
    """`extract(encounter_id, lines, language) -> EntitySet` by Amazon Comprehend Medical."""

    def __init__(self, client: Any | None = None, *, attempts: int = 5, base_delay: float = 0.5,
                 max_delay: float = 8.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("comprehendmedical")

    def extract(self, encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
        base = language.split("-")[0].lower()
        if base != "en":
            note = KOREAN_NOTE if base == "ko" else OTHER_LANGUAGE_NOTE
            return EntitySet(encounter_id=encounter_id, engine=ENGINE, language=language, notes=(note,))
        joined = LineText(lines)
        found: list[_Found] = []
        calls = 0
        for offset, piece in utf8_pieces(joined.text, DETECT_TEXT_BYTES):
            response = self._call("DetectEntitiesV2", self.client.detect_entities_v2, piece)
            calls += 1
            for raw in response.get("Entities", []):
                entity = self._entity(joined, offset, raw, None)
                if entity is not None:
                    found.append(entity)
        for ontology in ONTOLOGIES:
            method = getattr(self.client, ontology.method)
            for offset, piece in utf8_pieces(joined.text, INFER_TEXT_BYTES):
                response = self._call(ontology.operation, method, piece)
                calls += 1
                for raw in response.get("Entities", []):
                    self._merge(found, self._entity(joined, offset, raw, ontology), ontology)
        ordered = sorted(found, key=lambda item: item.bounds)
        entities = tuple(replace(item.entity, id=f"e{number}", not_coded=_not_coded(item.entity))
                         for number, item in enumerate(ordered, start=1))
        logger.info("clinical entities coded", extra={
            "encounter_id": encounter_id, "calls": calls, "characters": len(joined.text),
            "entities": len(entities), "codes": sum(len(entity.codes) for entity in entities)})
        return EntitySet(encounter_id=encounter_id, engine=ENGINE, language=language, entities=entities)

    def detect_phi(self, texts: Sequence[str], language: str) -> list[list[PhiSpan]]:
        """The PHI spans DetectPHI finds in each of `texts` (offsets into that text). The texts are joined
        by line breaks and sent in pieces of fewer than 20,000 UTF-8 bytes cut at line boundaries, and each
        answer's offsets are shifted by its piece's offset and mapped back to the text they fall in.
        English only: any other language gets no spans (the rules still run on it)."""
        found: list[list[PhiSpan]] = [[] for _ in texts]
        if language.split("-")[0].lower() != "en":
            return found
        starts, position = [], 0
        for text in texts:
            starts.append(position)
            position += len(text) + len(SEPARATOR)
        calls = 0
        for offset, piece in utf8_pieces(SEPARATOR.join(texts), DETECT_TEXT_BYTES):
            response = self._call("DetectPHI", self.client.detect_phi, piece)
            calls += 1
            for raw in response.get("Entities", []):
                begin, end = offset + int(raw["BeginOffset"]), offset + int(raw["EndOffset"])
                index = bisect.bisect_right(starts, begin) - 1
                while 0 <= index < len(texts) and starts[index] < end:  # clipped to each text it touches
                    local = (max(begin, starts[index]) - starts[index], min(end, starts[index] + len(texts[index]))
                             - starts[index])
                    span = service_span(str(raw.get("Type", "")), str(raw.get("Text", "")), *local)
                    if span is not None:
                        found[index].append(span)
                    index += 1
        logger.info("phi detected", extra={"calls": calls, "texts": len(texts),
                                           "spans": sum(len(spans) for spans in found)})
        return found

    def _call(self, operation: str, method: Callable[..., dict[str, Any]], text: str) -> dict[str, Any]:
        """One request (`method(Text=text)`), with backoff on throttling and 5xx."""
        for attempt in range(1, self.attempts + 1):
            try:
                return method(Text=text)
            except ClientError as exc:
                error = classify(exc)
                if not isinstance(error, TransientError):
                    raise error from exc
                if attempt == self.attempts:
                    raise TransientError(f"Comprehend Medical {operation} {error_code(exc)} after {attempt} attempts") \
                        from exc
                logger.warning("comprehend medical throttled; backing off",
                               extra={"operation": operation, "code": error_code(exc), "attempt": attempt})
                self.sleep(backoff_delay(attempt, self.base_delay, self.max_delay))
        raise AssertionError("unreachable")

    @staticmethod
    def _entity(joined: LineText, offset: int, raw: dict[str, Any], ontology: Ontology | None) -> _Found | None:
        category = str(raw.get("Category", ""))
        if category not in CATEGORIES:
            return None  # PHI, BEHAVIORAL_ENVIRONMENTAL_SOCIAL
        begin, end = offset + int(raw["BeginOffset"]), offset + int(raw["EndOffset"])
        spans = joined.spans(begin, end)
        if not spans:
            return None
        codes: tuple[Code, ...] = ()
        if ontology is not None:
            concepts = sorted(raw.get(ontology.concepts, []), key=lambda c: -float(c.get("Score", 0.0)))
            codes = tuple(Code(ontology.system, str(c["Code"]), str(c.get("Description", "")), _score(c))
                          for c in concepts[:1])  # the best concept: what the entity is coded as
        return _Found((begin, end), Entity(
            id="", category=category, type=str(raw.get("Type", "")), text=str(raw.get("Text", "")), spans=spans,
            score=_score(raw), traits=_traits(raw), attributes=_attributes(joined, offset, raw), codes=codes))

    @staticmethod
    def _merge(found: list[_Found], coded: _Found | None, ontology: Ontology) -> None:
        if coded is None:
            return
        for index, item in enumerate(found):
            if item.entity.category in ontology.categories and item.entity.category == coded.entity.category \
                    and _overlaps(item.bounds, coded.bounds):
                known = {(code.system, code.code) for code in item.entity.codes}
                extra = tuple(code for code in coded.entity.codes if (code.system, code.code) not in known)
                found[index] = _Found(item.bounds, replace(item.entity, codes=item.entity.codes + extra))
                return
        found.append(coded)


def _score(raw: dict[str, Any]) -> float | None:
    return float(raw["Score"]) if raw.get("Score") is not None else None


def _traits(raw: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(trait["Name"]) for trait in raw.get("Traits", []) if trait.get("Name") in TRAITS)


def _attributes(joined: LineText, offset: int, raw: dict[str, Any]) -> tuple[Attribute, ...]:
    attributes = []
    for attribute in raw.get("Attributes", []):
        if "BeginOffset" not in attribute or "EndOffset" not in attribute:
            continue
        spans = joined.spans(offset + int(attribute["BeginOffset"]), offset + int(attribute["EndOffset"]))
        if spans:
            attributes.append(Attribute(type=str(attribute.get("Type", "")), text=str(attribute.get("Text", "")),
                                        spans=spans, score=_score(attribute)))
    return tuple(attributes)


CODED_CATEGORIES = {"MEDICAL_CONDITION": "ICD-10-CM or SNOMED CT", "MEDICATION": "RxNorm",
                    "TEST_TREATMENT_PROCEDURE": "SNOMED CT", "ANATOMY": "SNOMED CT"}


def _not_coded(entity: Entity) -> str | None:
    """Why a codable entity has no code (None when it has one, or its category is never coded)."""
    if entity.codes or entity.category not in CODED_CATEGORIES:
        return None
    return f"Comprehend Medical linked no {CODED_CATEGORIES[entity.category]} concept"

