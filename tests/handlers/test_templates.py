"""Templates per upload and custom templates, through the ingest and document handlers (moto for S3 and
DynamoDB, the offline note engine): the template an upload chooses by a `template=<NAME>` key segment
or its `medscribe-template` tag reaches the encounter record and the note; a custom template in the
artifacts bucket's config/templates/ can be a new name; a template that cannot be used ends the
encounter FAILED with its reason code. Dialogues from tests/fixtures/dialogues/fareez-osce."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY

from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.encounter import Encounter, EncounterStatus
from medscribe.domain.notes import load_template
from tests import media
from tests.adapters.conftest import put
from tests.handlers.conftest import Context
from tests.handlers.test_document import FAREEZ, read, ready
from tests.handlers.test_ingest import s3_body, sqs_event
from tests.transcribe_shapes import job

DIALOGUE = (FAREEZ / "CAR0003.txt").read_bytes()
CUSTOM = {"name": "cardio-followup", "title": "Cardiology follow-up", "sections": [
    {"name": "Symptoms", "description": "Cardiac symptoms the patient reports.", "fallback": True,
     "roles": {"patient": 1.0}, "cues": ["breath*", "chest", "pain", "palpitation*"]},
    {"name": "Medicines", "description": "Current medicines.", "roles": {"patient": 1.0, "clinician": 0.5},
     "cues": ["aspirin", "ramipril", "simvastatin", "medication*"]},
    {"name": "Device checks", "description": "Pacemaker or ICD checks; the offline engine has no cues for it."},
]}


@pytest.fixture
def load_handler(load_handler):  # type: ignore[no-untyped-def]
    return lambda name, **overrides: load_handler(name, **{"note_engine": "offline", **overrides})


def upload_text(load_handler, bucket: str, key: str, body: bytes = DIALOGUE,  # type: ignore[no-untyped-def]
                tags: str | None = None) -> Encounter:
    """Put a text upload (with tags, as `x-amz-tagging`), ingest it, document it; the record after both."""
    response = dict(boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body, **(
        {"Tagging": tags} if tags else {})))
    assert load_handler("ingest").handler(sqs_event(s3_body(bucket, key, response, size=len(body))),
                                          Context()) == {"batchItemFailures": []}
    [encounter] = [e for e in EncounterRepository(_table()).list() if e.source_key == key]
    if encounter.status is EncounterStatus.RECEIVED:
        assert load_handler("document").handler(ready(encounter.encounter_id), Context()) == {"batchItemFailures": []}
    after = EncounterRepository(_table()).get(encounter.encounter_id)
    assert after is not None
    return after


def _table() -> str:
    return str(boto3.client("dynamodb").list_tables()["TableNames"][0])


def note_of(encounter: Encounter) -> dict[str, Any]:
    return dict(json.loads(read(encounter.note_key or "")))


@pytest.mark.parametrize(("key", "template"), [
    ("text/clinic-a/template=GIRPP/visit.txt", "GIRPP"),
    ("text/template=soap/language=en-US/visit.txt", "SOAP"),  # an alias records its catalogue name
])
def test_a_key_segment_chooses_the_template_of_the_encounter_and_its_note(load_handler, world, key: str,  # type: ignore[no-untyped-def]
                                                                          template: str) -> None:
    encounter = upload_text(load_handler, world["bucket"], key)
    assert encounter.note_template == template
    assert encounter.status is EncounterStatus.DOCUMENTED
    note = note_of(encounter)
    assert note["template"] == template
    assert [s["name"] for s in note["sections"]] == list(load_template(template).section_names)
    assert note["problems"] == []
    assert all(item["lines"] for section in note["sections"] for item in section["items"])


def test_the_tag_chooses_the_template_and_wins_over_the_key(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter = upload_text(load_handler, world["bucket"], "text/template=SOAP/visit.txt",
                            tags="medscribe-template=DAP&clinic=a")
    assert encounter.note_template == "DAP"
    note = note_of(encounter)
    assert (note["template"], [s["name"] for s in note["sections"]]) == ("DAP", ["Data", "Assessment", "Plan"])


def test_without_a_choice_the_deployment_setting_applies(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter = upload_text(load_handler, world["bucket"], "text/SOAP/visit.txt")  # a plain folder chooses nothing
    assert encounter.note_template is None
    assert note_of(encounter)["template"] == "HISTORY_AND_PHYSICAL"  # cdk.json's `hp`


def test_a_custom_template_of_a_new_name_with_a_section_offline_cannot_fill(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    boto3.client("s3").put_object(Bucket="artifacts", Key="config/templates/cardio-followup.json",
                                  Body=json.dumps(CUSTOM).encode())
    encounter = upload_text(load_handler, world["bucket"], "text/template=cardio-followup/visit.txt")
    assert (encounter.note_template, encounter.status) == ("cardio-followup", EncounterStatus.DOCUMENTED)
    note = note_of(encounter)
    assert [s["name"] for s in note["sections"]] == ["Symptoms", "Medicines", "Device checks"]
    assert note["unfilled"] == ["Device checks"]  # named in the note, not a problem
    texts = " ".join(item["text"] for section in note["sections"] for item in section["items"])
    assert "aspirin" in texts


@pytest.mark.parametrize(("custom", "reason"), [
    ("{not json", "documentation failed: template_invalid: config/templates/broken.json: template is not JSON: "
                  "Expecting property name enclosed in double quotes at line 1"),
    (json.dumps({"name": "broken", "sections": [{"name": "A"}, {"name": "A"}]}),
     "documentation failed: template_invalid: config/templates/broken.json: section names must be unique"),
    (None, "documentation failed: template_unknown: no note template 'broken' in the catalogue or in "
           "config/templates/"),
])
def test_a_template_that_cannot_be_used_fails_the_encounter_with_its_reason(load_handler, world,  # type: ignore[no-untyped-def]
                                                                            custom: str | None, reason: str) -> None:
    if custom is not None:
        boto3.client("s3").put_object(Bucket="artifacts", Key="config/templates/broken.json", Body=custom.encode())
    encounter = upload_text(load_handler, world["bucket"], "text/template=broken/visit.txt")
    assert (encounter.status, encounter.reason) == (EncounterStatus.FAILED, reason)
    assert encounter.note_key is None


def test_a_template_name_no_template_can_have_is_rejected_at_ingest(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter = upload_text(load_handler, world["bucket"], "text/visit.txt", tags="medscribe-template=Kim%20Min-ji")
    assert encounter.status is EncounterStatus.REJECTED
    assert "note template" in (encounter.reason or "")
    assert "Kim" not in (encounter.reason or "")


def test_a_recording_records_the_template_its_key_chooses(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    key = "audio/clinic-a/template=BEHAVIORAL_SOAP/visit.wav"
    response = put(world["bucket"], key, media.wav_bytes(1.0))
    transcribe.add_response("start_transcription_job", job("n", "IN_PROGRESS"), {
        "TranscriptionJobName": ANY, "LanguageCode": "en-US", "MediaFormat": "wav", "Media": ANY,
        "OutputBucketName": "artifacts", "OutputKey": ANY, "OutputEncryptionKMSKeyId": ANY, "Settings": ANY})
    assert load_handler("ingest").handler(sqs_event(s3_body(world["bucket"], key, response, size=16044)),
                                          Context()) == {"batchItemFailures": []}
    [encounter] = EncounterRepository(world["table"]).list()
    assert (encounter.status, encounter.note_template) == (EncounterStatus.TRANSCRIBING, "BEHAVIORAL_SOAP")
