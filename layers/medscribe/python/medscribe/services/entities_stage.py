"""The entities stage: a documented encounter's clinical entities, with codes and line evidence.

After the documentation stage writes a note (DOCUMENTED or NEEDS_REVIEW) it emits "Encounter Ready
For Entities"; this stage reads the encounter's lines — the numbered transcript lines of a recording,
the turns of a text dialogue, or the non-blank lines of a text note (numbered as in the file) — runs
the configured engine (`entity_engine`: Amazon Comprehend Medical, the offline extractor, or off) and
writes `entities/<id>.json` (medscribe.domain.clinical_entities.EntitySet) to the artifacts bucket.
The encounter item gains `entity_count` and `entity_codes` ("system:code" strings, no text), which
search filters by.

Idempotent: the artifact has a fixed key and the encounter update replaces the previous summary, on
condition that the encounter is still documented. A permanent engine error (a request the service
rejects) is recorded as an entity set with no entities and the reason in its notes, so the reconciler
does not send the encounter again; transient errors (throttling) raise and the message is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_lambda_powertools.metrics import MetricUnit

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.clinical_entities import EntitySet, entities_key
from medscribe.domain.dialogue import dialogue_lines, looks_like_dialogue
from medscribe.domain.emr_structuring import note_language
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.errors import PermanentError
from medscribe.domain.transcript_lines import Line, lines_from_json, note_text_lines
from medscribe.observability import logger, metrics
from medscribe.settings import PipelineSettings

# (encounter id, lines, language) -> entities: Comprehend Medical's adapter or the offline extractor
EntityEngine = Callable[[str, Sequence[Line], str], EntitySet]
DOCUMENTED_STATUSES = frozenset({EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW})


def codes_of(entities: EntitySet) -> list[str]:
    """Every code of the set as "system:code" (e.g. "ICD-10-CM:R50.9"), each once, sorted."""
    return sorted({f"{code.system}:{code.code}" for entity in entities.entities for code in entity.codes})


class EntitiesStage:
    def __init__(self, repository: EncounterRepository, artifacts: ArtifactStore, objects: ObjectStore,
                 engine: EntityEngine | None, settings: PipelineSettings) -> None:
        self.repository = repository
        self.artifacts = artifacts
        self.objects = objects
        self.engine = engine  # None: entities are off
        self.settings = settings

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
        key = self.artifacts.put_json(entities_key(encounter_id), entities.as_dict())
        codes = codes_of(entities)
        recorded = self.repository.record_entities(encounter_id, entities_key=key, count=len(entities.entities),
                                                   codes=codes, engine=entities.engine)
        logger.info("entities recorded" if recorded else "encounter no longer documented; entities not recorded",
                    extra={"encounter_id": encounter_id, "engine": entities.engine, "lines": len(lines),
                           "entities": len(entities.entities), "codes": len(codes), "notes": len(entities.notes)})
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
