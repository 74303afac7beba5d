"""The entities stage: a documented encounter's clinical entities, with codes and line evidence.

After the documentation stage writes a note (DOCUMENTED or NEEDS_REVIEW) it emits "Encounter Ready
For Entities"; this stage reads the encounter's lines — the numbered transcript lines of a recording,
the turns of a text dialogue, or the non-blank lines of a text note (numbered as in the file) — runs
the configured engine (`entity_engine`: Amazon Comprehend Medical, the offline extractor, or off) and
writes `entities/<id>.json` (medscribe.domain.clinical_entities.EntitySet) to the artifacts bucket.
The encounter item gains `entity_count` and `entity_codes` ("system:code" strings, no text), which
search filters by. Beside them the stage writes the encounter's de-identified copies
(medscribe.domain.redacted_copies: redacted/<id>/transcript.json, note.json for a clinical note and
emr.json for an EMR record; the offline rules, plus DetectPHI in AWS for English) and draws the review
page again with the entities beside the claims.

Idempotent: the artifacts have fixed keys and the encounter update replaces the previous summary, on
condition that the encounter is still documented; every artifact is written before that update, so an
encounter the reconciler finds without entities gets its redacted copies and page on the re-send too.
A permanent engine error (a request the service rejects) is recorded as an entity set with no
entities and the reason in its notes, so the reconciler does not send the encounter again; transient
errors (throttling) raise and the message is retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.clinical_entities import EntitySet, entities_key
from medscribe.domain.dialogue import dialogue_lines, looks_like_dialogue
from medscribe.domain.emr_structuring import note_language
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.errors import PermanentError
from medscribe.domain.notes import note_keys
from medscribe.domain.redacted_copies import (
    RULES,
    PhiDetector,
    redacted_keys,
    redacted_note,
    redacted_transcript,
    remembering,
)
from medscribe.domain.transcript_lines import Line, lines_from_json, note_text_lines
from medscribe.observability import logger, metrics
from medscribe.review.page import emr_only_note, render_review_page
from medscribe.settings import PipelineSettings

# (encounter id, lines, language) -> entities: Comprehend Medical's adapter or the offline extractor
EntityEngine = Callable[[str, Sequence[Line], str], EntitySet]
DOCUMENTED_STATUSES = frozenset({EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW})


def codes_of(entities: EntitySet) -> list[str]:
    """Every code of the set as "system:code" (e.g. "ICD-10-CM:R50.9"), each once, sorted."""
    return sorted({f"{code.system}:{code.code}" for entity in entities.entities for code in entity.codes})


class EntitiesStage:
    def __init__(self, repository: EncounterRepository, artifacts: ArtifactStore, objects: ObjectStore,
                 engine: EntityEngine | None, settings: PipelineSettings, *, phi: PhiDetector | None = None,
                 phi_engine: str = RULES) -> None:
        self.repository = repository
        self.artifacts = artifacts
        self.objects = objects
        self.engine = engine  # None: entities are off
        self.settings = settings
        self.phi = phi  # PHI beyond the offline rules (DetectPHI in AWS); None: the rules alone
        self.phi_engine = phi_engine  # named in the redacted copies, e.g. "comprehend-medical+rules"

    def extract(self, encounter_id: str) -> EntitySet | None:
        """Code one documented encounter; None when there is nothing to do (unknown, not documented, off)."""
        encounter = self.repository.get(encounter_id)
        if encounter is None:
            logger.info("ignored unknown encounter")
            return None
        if encounter.status not in DOCUMENTED_STATUSES or self.engine is None:
            logger.info("no entities to extract", extra={"encounter_id": encounter_id, "status": encounter.status,
                                                         "engine": self.settings.entity_engine})
            return None
        lines, language = self._lines(encounter)
        try:
            entities = self.engine(encounter_id, lines, language)
        except PermanentError as exc:  # retrying cannot help: say so in the artifact, do not loop
            logger.warning("entities not coded", extra={"encounter_id": encounter_id, "reason": str(exc)})
            entities = EntitySet(encounter_id=encounter_id, engine=self.settings.entity_engine, language=language,
                                 notes=(f"not coded: {exc}",))
        documents = self._documents(encounter)
        copies = self._redacted(encounter_id, lines, language, documents)
        key = self.artifacts.put_json(entities_key(encounter_id), entities.as_dict())
        for name, copy in copies.items():
            self.artifacts.put_json(redacted_keys(encounter_id)[name], copy)
        self._review_page(encounter, documents, entities)
        codes = codes_of(entities)
        recorded = self.repository.record_entities(encounter_id, entities_key=key, count=len(entities.entities),
                                                   codes=codes, engine=entities.engine)
        logger.info("entities recorded" if recorded else "encounter no longer documented; entities not recorded",
                    extra={"encounter_id": encounter_id, "engine": entities.engine, "lines": len(lines),
                           "entities": len(entities.entities), "codes": len(codes), "notes": len(entities.notes),
                           "redacted": {name: sum(copy["redacted"].values()) for name, copy in copies.items()}})
        if recorded:
            metrics.add_metric(name="EncountersCoded", unit=MetricUnit.Count, value=1)
        return entities

    def _lines(self, encounter: Encounter) -> tuple[list[Line], str]:
        if encounter.kind is Kind.AUDIO:
            lines = lines_from_json(self.artifacts.get_json(encounter.transcript_key or ""))
            return lines, encounter.language_code or self.settings.language.value
        ref = ObjectRef(bucket=encounter.source_bucket, key=encounter.source_key, size=encounter.size,
                        version_id=None if encounter.revision == "unversioned" else encounter.revision)
        text = self.objects.read(ref, self.settings.text_max_bytes).decode("utf-8-sig")
        return ((dialogue_lines(text) if looks_like_dialogue(text) else note_text_lines(text)),
                note_language(text, encounter.language))  # the upload's choice, else the text's own

    def _documents(self, encounter: Encounter) -> dict[str, dict[str, Any]]:
        """The documentation stage's note and EMR record, as stored ("note", "emr"; either may be absent)."""
        if not encounter.note_key:
            return {}
        keys = note_keys(encounter.encounter_id)
        # only keys that were written: without s3:ListBucket, S3 answers a missing key with 403, not 404
        names = {"emr": encounter.note_key} if encounter.note_key == keys["emr"] else {"note": encounter.note_key}
        if "note" in names and (encounter.language_code or "").startswith("ko"):
            names["emr"] = keys["emr"]  # a Korean recording's EMR record, written beside its note
        found = {name: self.artifacts.get_text(key) for name, key in names.items()}
        return {name: json.loads(text) for name, text in found.items() if text is not None}

    def _redacted(self, encounter_id: str, lines: Sequence[Line], language: str,
                  documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The de-identified transcript and documents. A DetectPHI request the service rejects leaves the
        rules alone (said in the copies); throttling raises, and the message is retried."""
        if not language.lower().startswith("en"):  # DetectPHI reads English only: the rules alone
            return self._copies(encounter_id, lines, language, documents, None, RULES)
        try:
            return self._copies(encounter_id, lines, language, documents, self.phi, self.phi_engine)
        except PermanentError as exc:
            logger.warning("phi detection rejected; rules only", extra={"encounter_id": encounter_id,
                                                                         "reason": str(exc)})
            copies = self._copies(encounter_id, lines, language, documents, None, RULES)
            return {name: {**copy, "notes": [f"DetectPHI not used: {exc}"]} for name, copy in copies.items()}

    @staticmethod
    def _copies(encounter_id: str, lines: Sequence[Line], language: str, documents: dict[str, dict[str, Any]],
                phi: PhiDetector | None, engine: str) -> dict[str, dict[str, Any]]:
        phi = remembering(phi) if phi is not None else None  # the note's lines are the transcript's: sent once
        copies = {"transcript": redacted_transcript(encounter_id, lines, language, detector=phi, engine=engine)}
        for name, document in documents.items():
            copies[name] = redacted_note(encounter_id, document, language, detector=phi, engine=engine)
        return copies

    def _summary(self, encounter_id: str) -> dict[str, Any] | None:
        """The after-visit summary the documentation stage wrote beside the note, kept on the page drawn
        again; None for an encounter documented before summaries existed (its key was never written:
        without s3:ListBucket, S3 answers it with 403, which is not retried)."""
        try:
            text = self.artifacts.get_text(note_keys(encounter_id)["summary"])
        except PermanentError:
            return None
        return json.loads(text) if text is not None else None

    def _review_page(self, encounter: Encounter, documents: dict[str, dict[str, Any]], entities: EntitySet) -> None:
        """The documentation stage's review page drawn again, now with the entities beside the claims."""
        if not documents:
            return
        emr = documents.get("emr")
        note = documents.get("note") or emr_only_note(emr or {})
        page = render_review_page(note, encounter_id=encounter.encounter_id,
                                  title=f"Encounter {encounter.encounter_id}", emr=emr,
                                  summary=self._summary(encounter.encounter_id), entities=entities)
        self.artifacts.put(note_keys(encounter.encounter_id)["review"], page.encode("utf-8"),
                           "text/html; charset=utf-8")
