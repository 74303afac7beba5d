"""Document handler: moto for DynamoDB/S3, the offline engines, and Bedrock through botocore's Stubber
with real Converse response shapes. Dialogue text from tests/fixtures/dialogues/fareez-osce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.settings import load_settings
from tests import FIXTURES
from tests.adapters.conftest import put
from tests.adapters.test_bedrock import converse_response, tool_use
from tests.handlers.conftest import Context
from tests.handlers.test_ingest import sqs_event

FAREEZ = FIXTURES / "dialogues" / "fareez-osce"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load_handler(load_handler):  # type: ignore[no-untyped-def]
    """The offline note engine (a setting, as the local runtime gives it) unless a test names another:
    cdk.json's is Bedrock."""
    return lambda name, **overrides: load_handler(name, **{"note_engine": "offline", **overrides})


def ready(encounter_id: str) -> dict[str, Any]:
    return sqs_event({"version": "0", "id": "e1", "detail-type": "Encounter Ready For Documentation",
                      "source": "medscribe", "account": "123456789012", "time": "2026-11-21T10:00:00Z",
                      "region": "us-east-1", "resources": [], "detail": {"encounter_id": encounter_id, "stage": "dev"}})


def text_encounter(world: dict[str, Any], key: str, body: bytes) -> str:
    response = put(world["bucket"], key, body)
    ref = ObjectRef(bucket=world["bucket"], key=key, size=len(body), version_id=response["VersionId"])
    EncounterRepository(world["table"]).create(Encounter.from_ref(ref, Kind.TEXT, EncounterStatus.RECEIVED))
    return ref.encounter_id


def transcribed_encounter(world: dict[str, Any], lines: list[dict[str, Any]], language: str = "en-US",
                          key: str = "audio/a.mp3", model: str | None = None) -> str:
    response = put(world["bucket"], key, b"ID3")
    ref = ObjectRef(bucket=world["bucket"], key=key, size=3, version_id=response["VersionId"])
    repo = EncounterRepository(world["table"])
    repo.create(Encounter.from_ref(ref, Kind.AUDIO, EncounterStatus.RECEIVED, media_format="mp3"))
    repo.acquire_slot(ref.encounter_id, cap=5, job_name="j")
    lines_key = f"transcripts/{ref.encounter_id}/lines.json"
    boto3.client("s3").put_object(Bucket="artifacts", Key=lines_key, Body=json.dumps({"lines": lines}).encode())
    repo.finish_transcription(ref.encounter_id, EncounterStatus.TRANSCRIBED, transcript_key=lines_key,
                              language_code=language, model=model)
    return ref.encounter_id


def read(key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket="artifacts", Key=key)["Body"].read())


def fareez_lines(name: str = "CAR0003.txt", count: int = 40) -> list[dict[str, Any]]:
    lines = dialogue_lines((FAREEZ / name).read_text(encoding="utf-8"))[:count]
    return [{"n": x.n, "speaker": "spk_0" if x.speaker == "clinician" else "spk_1", "start": x.start, "end": x.end,
             "text": x.text, "confidence": 0.9} for x in lines]


def test_transcribed_audio_gets_a_note_with_valid_citations_and_a_review_page(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines())
    assert load_handler("document").handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW)
    assert encounter.note_engine == "offline"
    note = json.loads(read(encounter.note_key or ""))
    cited = {n for section in note["sections"] for item in section["items"] for n in item["lines"]}
    assert cited
    assert cited <= set(range(1, 41))
    assert [s["name"] for s in note["sections"]][:2] == ["Chief complaint", "History of present illness"]
    page = read(encounter.review_key or "").decode()
    assert all(f'id="L{n}"' in page for n in cited)


def test_repeated_event_changes_nothing(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines())
    handler = load_handler("document").handler
    handler(ready(encounter_id), Context())
    before = EncounterRepository(world["table"]).get(encounter_id)
    handler(ready(encounter_id), Context())
    assert EncounterRepository(world["table"]).get(encounter_id) == before


@pytest.mark.parametrize("name", ["en-chest-pain-followup.txt", "ko-diabetes-followup.txt"])
def test_text_notes_become_valid_emr_records(load_handler, world, name: str) -> None:  # type: ignore[no-untyped-def]
    body = (ROOT / "sample-data" / "text" / name).read_bytes()
    encounter_id = text_encounter(world, f"text/{name}", body)
    load_handler("document").handler(ready(encounter_id), Context())
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.DOCUMENTED
    emr = json.loads(read(encounter.note_key or ""))
    record = emr["record"]
    assert record["Date"] in ("2026-10-14", "2026-10-21")
    assert record["Age"] in ("58", "62")
    assert b"<html" in read(encounter.review_key or "").lower()


def test_text_dialogue_gets_a_clinical_note(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = text_encounter(world, "text/visit.txt", (FAREEZ / "GAS0001.txt").read_bytes())
    load_handler("document").handler(ready(encounter_id), Context())
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.note_key == f"notes/{encounter_id}/note.json"
    assert json.loads(read(encounter.note_key))["engine"] == "offline"


def test_bedrock_note_with_a_bad_citation_is_repaired_once(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    lines = fareez_lines(count=6)
    encounter_id = transcribed_encounter(world, lines)
    handler = load_handler("document", note_engine="bedrock")
    sections = ["Chief complaint", "History of present illness", "Review of systems", "Past medical history",
                "Assessment", "Plan", "Physical examination"]

    def note(*cited: int) -> dict[str, Any]:
        return {"sections": [{"name": name, "items": [{"text": "Breathless for two months.", "lines": list(cited)}]
                              if name == "Chief complaint" else []} for name in sections]}

    settings = load_settings()
    stub = Stubber(aws_clients.client("bedrock-runtime"))
    stub.add_response("converse", converse_response([tool_use(note(99))], "tool_use"),  # line 99 missing
                      {"modelId": settings.bedrock_model_id, "system": ANY, "messages": ANY,
                       "inferenceConfig": ANY, "toolConfig": ANY})
    # the repair goes to the long tier (bedrock_long_model_id), the model the stack grants for it
    stub.add_response("converse", converse_response([tool_use(note(2, 4))], "tool_use"),
                      {"modelId": settings.bedrock_long_model_id, "system": ANY, "messages": ANY,
                       "inferenceConfig": ANY, "toolConfig": ANY})
    with stub:
        handler.handler(ready(encounter_id), Context())
    stub.assert_no_pending_responses()
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.DOCUMENTED
    stored = json.loads(read(encounter.note_key or ""))
    assert stored["repairs"] == 1
    assert stored["sections"][0]["items"] == [{"text": "Breathless for two months.", "lines": [2, 4]}]


def test_template_override_from_the_artifacts_bucket(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    template = json.loads((ROOT / "layers/medscribe/python/medscribe/templates/SOAP.json").read_text())
    template["name"] = "hp"  # the clinic replaces the hp template with its own SOAP-shaped one
    boto3.client("s3").put_object(Bucket="artifacts", Key="config/templates/hp.json",
                                  Body=json.dumps(template).encode())
    encounter_id = transcribed_encounter(world, fareez_lines())
    load_handler("document").handler(ready(encounter_id), Context())
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    note = json.loads(read(encounter.note_key or ""))  # type: ignore[union-attr]
    assert [s["name"] for s in note["sections"]] == ["Subjective", "Objective", "Assessment", "Plan"]


def test_a_text_note_whose_object_is_gone_ends_failed_not_in_the_dlq(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = text_encounter(world, "text/gone.txt", b"a note")
    versions = boto3.client("s3").list_object_versions(Bucket=world["bucket"], Prefix="text/gone.txt")["Versions"]
    boto3.client("s3").delete_object(Bucket=world["bucket"], Key="text/gone.txt", VersionId=versions[0]["VersionId"])
    assert load_handler("document").handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.FAILED
    assert encounter.reason == "documentation failed: object no longer exists"


def test_the_optional_model_judge_adds_its_verdicts_and_cannot_clear_the_checks(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    """claim_judge: one more Converse request (tool judge_claims) per note; a claim the judge calls
    contradicted makes the note NEEDS_REVIEW with that claim named."""
    from medscribe.domain.claim_judge import JUDGE_TOOL
    from medscribe.domain.note_writing import write_note
    from medscribe.domain.transcript_lines import Line

    lines = fareez_lines(count=12)
    offline = write_note([Line(x["n"], x["speaker"], 0.0, 0.0, x["text"], None) for x in lines])
    assert offline.status.value == "DOCUMENTED"
    claims = [(section.name, index) for section in offline.sections for index, _ in enumerate(section.items, 1)]
    verdicts = [{"claim": n, "verdict": "contradicted" if n == 1 else "supported"} for n in range(1, len(claims) + 1)]
    encounter_id = transcribed_encounter(world, lines)
    handler = load_handler("document", claim_judge=True)
    settings = load_settings()
    stub = Stubber(aws_clients.client("bedrock-runtime"))
    stub.add_response("converse", converse_response([tool_use(
        {"verdicts": verdicts}, name=JUDGE_TOOL)], "tool_use"),
        {"modelId": settings.bedrock_model_id, "system": ANY, "messages": ANY, "inferenceConfig": ANY,
         "toolConfig": ANY})
    with stub:
        handler.handler(ready(encounter_id), Context())
    stub.assert_no_pending_responses()
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.NEEDS_REVIEW
    stored = json.loads(read(encounter.note_key or ""))
    assert [(p["code"], p["section"], p["item"]) for p in stored["problems"]] == [
        ("judge_contradicted", *claims[0])]
