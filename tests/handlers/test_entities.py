"""Entities handler: moto for DynamoDB/S3/EventBridge/SQS, Amazon Comprehend Medical through botocore's
Stubber with the service's real response shapes (tests/adapters/test_comprehend_medical.py), and a
small deterministic fake in place of the offline extractor (the seam is the module's `extract`, read
per call). Also: the document stage emits "Encounter Ready For Entities" after a note, and the
reconciler re-sends it for documented encounters that have no entities."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain import offline_entities
from medscribe.domain.clinical_entities import Code, Entity, EntitySet, Span, entity_set_from_dict
from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.redaction import free_texts
from medscribe.domain.transcript_lines import Line
from medscribe.routes import READY_FOR_ENTITIES_PATTERN
from tests.adapters.test_comprehend_medical import detected, icd, rxnorm, snomed
from tests.adapters.test_comprehend_phi import phi
from tests.handlers.conftest import Context
from tests.handlers.test_document import read, text_encounter, transcribed_encounter
from tests.handlers.test_document import ready as documentation_ready
from tests.handlers.test_ingest import sqs_event
from tests.handlers.test_selfheal import comprehend as comprehend

LINES = [
    {"n": 1, "speaker": "spk_0", "start": 0.0, "end": 1.5, "text": "What brings you in today?", "confidence": 0.98},
    {"n": 2, "speaker": "spk_1", "start": 1.6, "end": 4.0, "text": "I have had a fever and a cough for three days.",
     "confidence": 0.95},
    {"n": 3, "speaker": "spk_0", "start": 4.1, "end": 5.0, "text": "Are you taking anything for it?",
     "confidence": 0.97},
    {"n": 4, "speaker": "spk_1", "start": 5.1, "end": 9.0,
     "text": "Ibuprofen 400 mg twice a day by mouth. No chest pain.", "confidence": 0.93},
]
TEXT = "\n".join(line["text"] for line in LINES)
NAMES = ("Okonkwo", "Patel")  # a name the offline rules miss (no title, not on the lists) and one they find


def names_found(text: str) -> dict[str, Any]:
    """DetectPHI's answer naming every occurrence of NAMES in `text`."""
    found = sorted((at, name) for name in NAMES for at in range(len(text)) if text.startswith(name, at))
    answer = phi(text, [("NAME", name) for _, name in found])
    assert [entity["BeginOffset"] for entity in answer["Entities"]] == [at for at, _ in found]
    return answer


def ready(*encounter_ids: str) -> dict[str, Any]:
    """An SQS batch of "Encounter Ready For Entities" events as the route's rule delivers them."""
    return sqs_event(*({"version": "0", "id": "e2", "detail-type": "Encounter Ready For Entities",
                        "source": "medscribe", "account": "123456789012", "time": "2026-12-04T10:00:00Z",
                        "region": "us-east-1", "resources": [],
                        "detail": {"encounter_id": encounter_id, "stage": "dev"}} for encounter_id in encounter_ids))


def documented(world: dict[str, Any], lines: list[dict[str, Any]] = LINES, language: str = "en-US",
               status: EncounterStatus = EncounterStatus.DOCUMENTED) -> str:
    encounter_id = transcribed_encounter(world, lines, language)
    assert EncounterRepository(world["table"]).transition(encounter_id, EncounterStatus.TRANSCRIBED, status)
    return encounter_id


def answer_all(comprehend: Stubber, text: str = TEXT) -> None:
    """The entities stage's calls: the entities and their codes, then DetectPHI on the transcript's lines
    (a documented encounter without a note: no DetectPHI request for a note)."""
    comprehend.add_response("detect_entities_v2", detected(text), {"Text": text})
    comprehend.add_response("infer_icd10_cm", icd(text), {"Text": text})
    comprehend.add_response("infer_rx_norm", rxnorm(text), {"Text": text})
    comprehend.add_response("infer_snomedct", snomed(text), {"Text": text})
    comprehend.add_response("detect_phi", names_found(text), {"Text": text})


def fake_offline(encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
    """Deterministic: every "fever" is a MEDICAL_CONDITION coded R50.9, with its span."""
    found = tuple(Entity(id=f"e{n}", category="MEDICAL_CONDITION", type="DX_NAME", text="fever",
                         spans=(Span(line.n, line.text.index("fever"), line.text.index("fever") + 5),),
                         codes=(Code("ICD-10-CM", "R50.9", "Fever, unspecified"),))
                  for n, line in enumerate((x for x in lines if "fever" in x.text), start=1))
    return EntitySet(encounter_id=encounter_id, engine="offline", language=language, entities=found,
                     notes=("offline: RxNorm and SNOMED CT are not coded",))


def test_a_documented_recording_gets_coded_entities_and_a_code_list(load_handler, world, comprehend) -> None:  # type: ignore[no-untyped-def]
    encounter_id = documented(world)
    answer_all(comprehend)
    module = load_handler("entities")
    assert module.handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    comprehend.assert_no_pending_responses()

    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.DOCUMENTED
    assert encounter.entities_key == f"entities/{encounter_id}.json"
    stored = json.loads(read(encounter.entities_key))
    entities = entity_set_from_dict(stored)
    assert (entities.engine, entities.language, len(entities.entities)) == ("comprehend-medical", "en-US", 5)
    assert encounter.entity_count == 5
    assert encounter.entity_codes == ("ICD-10-CM:R05.9", "ICD-10-CM:R07.9", "ICD-10-CM:R50.9", "RxNorm:197806",
                                      "SNOMED CT:123851003", "SNOMED CT:29857009", "SNOMED CT:386661006")
    fever = next(e for e in entities.entities if e.text == "fever")
    assert [s.line for s in fever.spans] == [2]
    head = boto3.client("s3").head_object(Bucket="artifacts", Key=encounter.entities_key)
    assert head["ServerSideEncryption"] == "aws:kms"  # the project key, as every artifact

    redacted = read(f"redacted/{encounter_id}/transcript.json")
    assert json.loads(redacted)["engine"] == "comprehend-medical+rules"

    # again (a repeated event, a reconciler re-send): the same artifacts and the same summary
    answer_all(comprehend)
    assert module.handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    again = EncounterRepository(world["table"]).get(encounter_id)
    assert again is not None
    assert json.loads(read(again.entities_key or "")) == stored
    assert read(f"redacted/{encounter_id}/transcript.json") == redacted
    assert (again.entity_count, again.entity_codes, again.updated_at) == (5, encounter.entity_codes,
                                                                         encounter.updated_at)


def test_throttling_that_outlasts_the_backoff_fails_the_message_for_a_retry(load_handler, world, comprehend) -> None:  # type: ignore[no-untyped-def]
    encounter_id = documented(world)
    module = load_handler("entities")
    module.SERVICE.engine.__self__.sleep = lambda _seconds: None
    for _ in range(module.SERVICE.engine.__self__.attempts):
        comprehend.add_client_error("detect_entities_v2", service_error_code="TooManyRequestsException",
                                    http_status_code=429)
    # with a neighbour that needs no request: only the throttled message returns to the queue
    assert module.handler(ready("enc-unknown", encounter_id), Context()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.entity_count is None

    answer_all(comprehend)  # the retry, once the service has room
    assert module.handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    assert EncounterRepository(world["table"]).get(encounter_id).entity_count == 5  # type: ignore[union-attr]


def test_a_korean_recording_is_not_sent_and_says_why(load_handler, world, comprehend) -> None:  # type: ignore[no-untyped-def]
    lines = [{**LINES[0], "text": "김민수 님, 어디가 불편해서 오셨어요?"},
             {**LINES[1], "text": "사흘 전부터 열이 나요."}]
    encounter_id = documented(world, lines, "ko-KR", EncounterStatus.NEEDS_REVIEW)
    assert load_handler("entities").handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert (encounter.entity_count, encounter.entity_codes) == (0, ())
    stored = json.loads(read(encounter.entities_key or ""))
    assert stored["notes"] == ["Comprehend Medical does not read Korean; not coded"]
    redacted = json.loads(read(f"redacted/{encounter_id}/transcript.json"))  # by the Korean rules alone
    assert (redacted["engine"], redacted["lines"][0]["text"]) == ("rules", "[NAME] 님, 어디가 불편해서 오셨어요?")


def test_a_text_note_is_coded_from_its_own_lines_by_the_offline_engine(load_handler, world,  # type: ignore[no-untyped-def]
                                                                       monkeypatch) -> None:
    monkeypatch.setattr(offline_entities, "extract", fake_offline)
    body = b"Follow-up visit.\n\nChild with fever since Monday.\nNo rash.\n"
    encounter_id = text_encounter(world, "text/note.txt", body)
    assert EncounterRepository(world["table"]).transition(encounter_id, EncounterStatus.RECEIVED,
                                                          EncounterStatus.DOCUMENTED)
    module = load_handler("entities", entity_engine="offline")
    assert module.handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.entity_codes == ("ICD-10-CM:R50.9",)
    [fever] = entity_set_from_dict(json.loads(read(encounter.entities_key or ""))).entities
    assert fever.spans == (Span(3, 11, 16),)  # line 3 of the file: blank lines keep the numbering


def test_an_engine_that_cannot_code_is_recorded_not_retried(load_handler, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An extractor that cannot run (as the offline one on this branch before it is written) is a
    permanent error: an empty set that says so, and no retry into the dead-letter queue."""

    def unwritten(encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
        raise NotImplementedError("not written")

    monkeypatch.setattr(offline_entities, "extract", unwritten)
    encounter_id = documented(world)
    module = load_handler("entities", entity_engine="offline")
    assert module.handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.entity_count == 0
    stored = json.loads(read(encounter.entities_key or ""))
    assert stored["engine"] == "offline"
    assert stored["notes"] == ["not coded: the offline entity extractor is not available"]


def test_nothing_happens_for_undocumented_encounters_or_when_entities_are_off(load_handler, world, comprehend) -> None:  # type: ignore[no-untyped-def]
    transcribed = transcribed_encounter(world, LINES)
    assert load_handler("entities").handler(ready(transcribed), Context()) == {"batchItemFailures": []}
    assert load_handler("entities").handler(ready("enc-unknown"), Context()) == {"batchItemFailures": []}
    off = documented(world, language="en-US")
    assert load_handler("entities", entity_engine="off").handler(ready(off), Context()) == {"batchItemFailures": []}
    repository = EncounterRepository(world["table"])
    assert repository.get(transcribed).entity_count is None  # type: ignore[union-attr]
    assert repository.get(off).entity_count is None  # type: ignore[union-attr]
    comprehend.assert_no_pending_responses()  # no request was made


def entities_queue() -> str:
    """An SQS queue behind the route's rule, as the stack wires it."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="entities")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ready-for-entities", EventPattern=json.dumps(READY_FOR_ENTITIES_PATTERN))
    events.put_targets(Rule="ready-for-entities", Targets=[{"Id": "entities", "Arn": arn}])
    return url


def sent(url: str) -> list[str]:
    messages = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["detail"]["encounter_id"] for m in messages]


def test_the_document_stage_sends_a_written_note_to_the_entities_stage(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    url = entities_queue()
    encounter_id = transcribed_encounter(world, LINES)
    assert load_handler("document", note_engine="offline").handler(
        documentation_ready(encounter_id), Context()) == {"batchItemFailures": []}
    assert sent(url) == [encounter_id]
    other = transcribed_encounter(world, LINES, key="audio/b.mp3")
    load_handler("document", note_engine="offline", entity_engine="off").handler(documentation_ready(other), Context())
    assert sent(url) == []


def test_the_reconciler_resends_documented_encounters_without_entities(load_handler, world, comprehend) -> None:  # type: ignore[no-untyped-def]
    url = entities_queue()
    waiting = documented(world)
    coded = documented(world, status=EncounterStatus.NEEDS_REVIEW)
    answer_all(comprehend)
    load_handler("entities").handler(ready(coded), Context())
    soon = datetime.now(UTC) + timedelta(hours=1)  # past the stuck age, within the window

    service = load_handler("reconcile").SERVICE
    assert service.reconcile(now=soon).entities_redelivered == 1
    assert sent(url) == [waiting]
    assert service.reconcile(now=datetime.now(UTC)).entities_redelivered == 0  # not stuck yet
    assert service.reconcile(now=soon + timedelta(hours=48)).entities_redelivered == 0  # outside the window
    off = load_handler("reconcile", entity_engine="off").SERVICE
    assert off.reconcile(now=soon).entities_redelivered == 0


NAMED = [*LINES, {"n": 5, "speaker": "spk_1", "start": 9.1, "end": 11.0,
                  "text": "Okonkwo drives me home; Dr. Patel said to rest.", "confidence": 0.9}]
NAMED_TEXT = "\n".join(line["text"] for line in NAMED)


def test_redacted_copies_and_the_review_page_with_entities_follow_the_entities(load_handler, world,  # type: ignore[no-untyped-def]
                                                                               comprehend) -> None:
    encounter_id = transcribed_encounter(world, NAMED)
    assert load_handler("document", note_engine="offline").handler(
        documentation_ready(encounter_id), Context()) == {"batchItemFailures": []}
    note = json.loads(read(f"notes/{encounter_id}/note.json"))
    assert 'class="claim-entities"' not in read(f"notes/{encounter_id}/review.html").decode()  # not yet
    answer_all(comprehend, NAMED_TEXT)
    # the note's free texts in one DetectPHI request, less the lines the transcript's request already held
    note_text = "\n".join(text for text in dict.fromkeys(free_texts(note)) if text not in NAMED_TEXT.split("\n"))
    comprehend.add_response("detect_phi", names_found(note_text), {"Text": note_text})
    assert load_handler("entities").handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    comprehend.assert_no_pending_responses()

    transcript = json.loads(read(f"redacted/{encounter_id}/transcript.json"))
    assert transcript["engine"] == "comprehend-medical+rules"
    assert transcript["lines"][4]["text"] == "[NAME] drives me home; Dr. [NAME] said to rest."
    assert [line["n"] for line in transcript["lines"]] == [1, 2, 3, 4, 5]
    copy = json.loads(read(f"redacted/{encounter_id}/note.json"))
    assert [s["name"] for s in copy["document"]["sections"]] == [s["name"] for s in note["sections"]]
    assert [[i["lines"] for i in s["items"]] for s in copy["document"]["sections"]] == [
        [i["lines"] for i in s["items"]] for s in note["sections"]]  # every citation kept
    for key in (f"redacted/{encounter_id}/transcript.json", f"redacted/{encounter_id}/note.json"):
        body = read(key).decode()
        assert "Okonkwo" not in body
        assert "Patel" not in body
        assert boto3.client("s3").head_object(Bucket="artifacts", Key=key)["ServerSideEncryption"] == "aws:kms"

    page = read(f"notes/{encounter_id}/review.html").decode()  # drawn again, with the entities
    assert '<span class="entity-text">fever</span>' in page
    assert "ICD-10-CM R50.9" in page


def test_a_detect_phi_request_the_service_rejects_leaves_the_rules_and_says_so(load_handler, world,  # type: ignore[no-untyped-def]
                                                                                comprehend) -> None:
    encounter_id = documented(world, NAMED)
    comprehend.add_response("detect_entities_v2", detected(NAMED_TEXT), {"Text": NAMED_TEXT})
    comprehend.add_response("infer_icd10_cm", icd(NAMED_TEXT), {"Text": NAMED_TEXT})
    comprehend.add_response("infer_rx_norm", rxnorm(NAMED_TEXT), {"Text": NAMED_TEXT})
    comprehend.add_response("infer_snomedct", snomed(NAMED_TEXT), {"Text": NAMED_TEXT})
    comprehend.add_client_error("detect_phi", service_error_code="InvalidEncodingException", http_status_code=400)
    assert load_handler("entities").handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    transcript = json.loads(read(f"redacted/{encounter_id}/transcript.json"))
    assert transcript["engine"] == "rules"
    assert transcript["notes"][0].startswith("DetectPHI not used: ")
    assert transcript["lines"][4]["text"] == "Okonkwo drives me home; Dr. [NAME] said to rest."
    assert EncounterRepository(world["table"]).get(encounter_id).entity_count == 5  # type: ignore[union-attr]
