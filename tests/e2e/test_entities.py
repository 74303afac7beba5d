"""The local runtime runs the entities route from the same route table: a text note is documented, the
document stage's "Encounter Ready For Entities" event reaches the entities handler through the
emulated EventBridge rule and queue, and the encounter ends with entities/<id>.json, its codes on the
record and in the search index. The offline extractor is the local engine; a small deterministic fake
stands in for it here (the extractor is read per call through its module, the seam
tests/handlers/test_entities.py uses), so the test is about the pipeline, not the extractor."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe.domain import offline_entities
from medscribe.domain.clinical_entities import Code, Entity, EntitySet, Span, entity_set_from_dict
from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.transcript_lines import Line
from medscribe.settings import project_root
from tests.e2e.conftest import Driver, eventually

pytestmark = pytest.mark.e2e

NOTE = project_root() / "sample-data" / "text" / "en-pediatric-fever.txt"


def fever_entities(encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
    """Every line naming a fever: one MEDICAL_CONDITION coded R50.9, spanning the word."""
    found = []
    for line in lines:
        at = line.text.lower().find("fever")
        if at >= 0:
            found.append(Entity(id=f"e{len(found) + 1}", category="MEDICAL_CONDITION", type="DX_NAME",
                                text=line.text[at:at + 5], spans=(Span(line.n, at, at + 5),),
                                codes=(Code("ICD-10-CM", "R50.9", "Fever, unspecified"),)))
    return EntitySet(encounter_id=encounter_id, engine="offline", language=language, entities=tuple(found))


def test_a_documented_note_reaches_an_entities_artifact_and_search_by_code(driver: Driver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline_entities, "extract", fever_entities)
    body = NOTE.read_bytes()
    [encounter] = driver.wait(driver.put(driver.unique("text", "fever.txt"), body), timeout=30.0)

    assert encounter.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW)
    assert encounter.entities_key == f"entities/{encounter.encounter_id}.json"
    stored = driver.s3.get_object(Bucket=driver.resources.artifacts_bucket, Key=encounter.entities_key)
    assert stored["ServerSideEncryption"] == "aws:kms"
    entities = entity_set_from_dict(json.loads(stored["Body"].read()))
    assert entities.engine == "offline"
    assert entities.entities
    assert encounter.entity_count == len(entities.entities)
    assert encounter.entity_codes == ("ICD-10-CM:R50.9",)
    file_lines = body.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
    for entity in entities.entities:  # the evidence is the note's own line, numbered as in the file
        (span,) = entity.spans
        assert file_lines[span.line - 1].strip()[span.begin:span.end].lower() == "fever"

    # the de-identified copies beside them: the note's lines and its EMR record
    for name in ("transcript", "emr"):
        copy = driver.s3.get_object(Bucket=driver.resources.artifacts_bucket,
                                    Key=f"redacted/{encounter.encounter_id}/{name}.json")
        assert copy["ServerSideEncryption"] == "aws:kms"
        assert json.loads(copy["Body"].read())["engine"] == "rules"
    # the review page drawn again with the entities (a text note's EMR record: listed in their own panel)
    page = driver.s3.get_object(Bucket=driver.resources.artifacts_bucket, Key=encounter.review_key or "")
    assert 'aria-label="Coded entities"' in page["Body"].read().decode()

    index = SqliteSearchIndex(driver.runtime.paths.search_db)
    try:
        hits = eventually(lambda: [h.encounter_id for h in index.search("", code="ICD-10-CM:R50.9")
                                   if h.encounter_id == encounter.encounter_id], timeout=30.0)
    finally:
        index.close()
    assert hits == [encounter.encounter_id]
