"""Transcript and reconcile handlers: moto for DynamoDB/S3/SNS/SQS, botocore Stubber for Transcribe
(real response shapes), Transcribe outputs and EventBridge events from tests/fixtures."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY

from medscribe.adapters.encounters import Acquire, EncounterRepository
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from tests import FIXTURES
from tests.adapters.conftest import put
from tests.handlers.conftest import Context, shared_event
from tests.handlers.test_ingest import sqs_event
from tests.transcribe_shapes import job

OUTPUTS = FIXTURES / "transcribe-output"
SENTINEL = "PHI-SENTINEL-Jane-Q-Patient"


@pytest.fixture
def world(table: str, bucket: str) -> dict[str, Any]:
    s3, sns, sqs = boto3.client("s3"), boto3.client("sns"), boto3.client("sqs")
    s3.create_bucket(Bucket="artifacts")
    topic = sns.create_topic(Name="t")["TopicArn"]
    queue = sqs.create_queue(QueueName="mail")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return {"table": table, "bucket": bucket, "mail": queue}


def transcribing(world: dict[str, Any], key: str = f"audio/{SENTINEL}.mp3", output: str | None = None) -> str:
    """An audio encounter holding a slot, with its Transcribe output (if any) in the artifacts bucket."""
    response = put(world["bucket"], key, b"ID3")
    ref = ObjectRef(bucket=world["bucket"], key=key, size=3, version_id=response["VersionId"])
    repo = EncounterRepository(world["table"])
    repo.create(Encounter.from_ref(ref, Kind.AUDIO, EncounterStatus.RECEIVED, media_format="mp3"))
    assert repo.acquire_slot(ref.encounter_id, cap=2, job_name=name_of(ref.encounter_id)) is Acquire.ACQUIRED
    if output:
        document = (OUTPUTS / output).read_bytes()
        boto3.client("s3").put_object(Bucket="artifacts", Key=f"transcripts/{ref.encounter_id}/transcribe.json",
                                      Body=document)
    return ref.encounter_id


def name_of(encounter_id: str) -> str:
    return f"medscribe-dev-{encounter_id}"


def state_change(name: str, status: str) -> dict[str, Any]:
    event = copy.deepcopy(shared_event(f"transcribe_eventbridge_from_docs/transcribe-job-state-change-{status}.json"))
    event["detail"]["TranscriptionJobName"] = name
    return event


def mail(world: dict[str, Any]) -> list[str]:
    messages = boto3.client("sqs").receive_message(QueueUrl=world["mail"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"])["Message"] + json.loads(m["Body"])["Subject"] for m in messages.get("Messages", [])]


def test_completed_job_becomes_numbered_lines_and_artifacts(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribing(world, output="tscribe/03-speaker-identification.json")
    name = name_of(encounter_id)
    transcribe.add_response("get_transcription_job", job(name, "COMPLETED"), {"TranscriptionJobName": name})
    result = load_handler("transcript").handler(sqs_event(state_change(name, "COMPLETED")), Context())
    assert result == {"batchItemFailures": []}
    repo = EncounterRepository(world["table"])
    encounter = repo.get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.TRANSCRIBED
    assert (encounter.line_count, encounter.speakers) == (24, 3)
    assert repo.slots_in_flight() == 0
    s3 = boto3.client("s3")
    lines = json.loads(s3.get_object(Bucket="artifacts", Key=encounter.artifacts["lines"])["Body"].read())  # type: ignore[index]
    assert [line["n"] for line in lines["lines"]] == list(range(1, 25))
    csv = s3.get_object(Bucket="artifacts", Key=encounter.artifacts["csv"])["Body"].read().decode()  # type: ignore[index]
    assert csv.splitlines()[0] == ",start_time,end_time,speaker,comment"  # tscribe's CSV
    docx = s3.get_object(Bucket="artifacts", Key=encounter.artifacts["docx"])["Body"].read()  # type: ignore[index]
    assert docx[:2] == b"PK"  # a DOCX is a zip


def test_repeated_event_changes_nothing_and_asks_nothing(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribing(world, output="tscribe/03-speaker-identification.json")
    name = name_of(encounter_id)
    transcribe.add_response("get_transcription_job", job(name, "COMPLETED"), {"TranscriptionJobName": name})
    handler = load_handler("transcript").handler
    event = sqs_event(state_change(name, "COMPLETED"))
    handler(event, Context())
    before = EncounterRepository(world["table"]).get(encounter_id)
    assert handler(event, Context()) == {"batchItemFailures": []}
    assert EncounterRepository(world["table"]).get(encounter_id) == before
    assert EncounterRepository(world["table"]).slots_in_flight() == 0  # released once, not twice
    transcribe.assert_no_pending_responses()


def test_failed_job_records_the_reason_and_notifies_without_phi(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribing(world)
    name = name_of(encounter_id)
    reason = (f"The media format provided does not match the detected media format "
              f"(s3://{world['bucket']}/audio/{SENTINEL}.mp3). Check the media format and try your request again.")
    failed = job(name, "FAILED", failure=reason)
    transcribe.add_response("get_transcription_job", failed, {"TranscriptionJobName": name})
    load_handler("transcript").handler(sqs_event(state_change(name, "FAILED")), Context())
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert (encounter.status, encounter.reason) == (EncounterStatus.FAILED, reason)  # the service's words, kept
    [message] = mail(world)
    assert encounter_id in message
    assert "does not match the detected media format" in message
    assert SENTINEL not in message


def test_jobs_of_other_stages_are_ignored(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    event = sqs_event(state_change("medscribe-prod-enc-0123456789abcdef0123456789abcdef", "COMPLETED"))
    assert load_handler("transcript").handler(event, Context()) == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()


def test_reconciler_completes_a_lost_event_and_restarts_a_lost_job(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    done = transcribing(world, output="tscribe/02-channel-identification.json")
    lost = transcribing(world, key="audio/lost.mp3")
    handler = load_handler("reconcile")
    transcribe.add_response("get_transcription_job", job(name_of(done), "COMPLETED"), {"TranscriptionJobName": ANY})
    transcribe.add_client_error("get_transcription_job", "BadRequestException",
                                "The requested job couldn't be found. Check the job name and try your request again.")
    transcribe.add_response("start_transcription_job", job(name_of(lost), "IN_PROGRESS"), {
        "TranscriptionJobName": name_of(lost), "LanguageCode": "en-US", "MediaFormat": "mp3", "Media": ANY,
        "OutputBucketName": "artifacts", "OutputKey": f"transcripts/{lost}/transcribe.json",
        "OutputEncryptionKMSKeyId": ANY, "Settings": ANY,
    })
    report = handler.SERVICE.reconcile(stuck_after_seconds=0)
    transcribe.assert_no_pending_responses()
    assert (report.checked, report.completed, report.restarted) == (2, 1, 1)
    repo = EncounterRepository(world["table"])
    assert repo.get(done).status is EncounterStatus.TRANSCRIBED  # type: ignore[union-attr]
    assert repo.get(lost).status is EncounterStatus.TRANSCRIBING  # type: ignore[union-attr]


def test_reconcile_message_through_the_handler(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    transcribing(world)  # young: not stuck yet, so Transcribe is not asked
    result = load_handler("reconcile").handler(sqs_event({"task": "reconcile"}), Context())
    assert result == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()


def test_slot_cap_holds_work_in_received_and_releases_it(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    service = load_handler("transcript", max_concurrent_transcriptions=2).SERVICE
    repo = EncounterRepository(world["table"])
    first = transcribing(world, key="audio/1.mp3", output="tscribe/03-speaker-identification.json")
    transcribing(world, key="audio/2.mp3")  # the cap used by transcribing() is 2: now full
    response = put(world["bucket"], "audio/3.mp3", b"ID3")
    waiting = Encounter.from_ref(ObjectRef(bucket=world["bucket"], key="audio/3.mp3", size=3,
                                           version_id=response["VersionId"]), Kind.AUDIO, EncounterStatus.RECEIVED,
                                 media_format="mp3")
    repo.create(waiting)
    assert service.request(waiting) is Acquire.AT_CAPACITY
    assert repo.get(waiting.encounter_id).status is EncounterStatus.RECEIVED  # type: ignore[union-attr]
    transcribe.add_response("get_transcription_job", job(name_of(first), "COMPLETED"), {"TranscriptionJobName": ANY})
    transcribe.add_response("start_transcription_job", job(name_of(waiting.encounter_id), "IN_PROGRESS"), None)
    service.complete_job(name_of(first))  # frees a slot: the waiting one starts
    transcribe.assert_no_pending_responses()
    assert repo.get(waiting.encounter_id).status is EncounterStatus.TRANSCRIBING  # type: ignore[union-attr]
    assert repo.slots_in_flight() == 2
