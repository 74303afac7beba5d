"""Ingest handler over real event shapes from tests/fixtures/events (Powertools test events and
AWS documentation examples); derived events change only the bucket/key/version fields."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError
from botocore.stub import ANY

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.objects import ObjectStore
from medscribe.domain.encounter import EncounterStatus, ObjectRef
from tests import media
from tests.adapters.conftest import put
from tests.handlers.conftest import Context, shared_event
from tests.transcribe_shapes import job


def sqs_event(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    """The real SQS envelope (powertools/s3SqsEvent.json), one record per body."""
    template = shared_event("powertools/s3SqsEvent.json")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"msg-{n}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        records.append(record)
    return {"Records": records}


def s3_body(bucket: str, raw_key: str, put_response: dict[str, Any] | None, sequencer: str = "00643717F9F8B85354",
            size: int | None = None) -> dict[str, Any]:
    """The S3 notification inside powertools/s3SqsEvent.json, pointed at our object."""
    body = json.loads(shared_event("powertools/s3SqsEvent.json")["Records"][0]["body"])
    obj = body["Records"][0]["s3"]["object"]
    body["Records"][0]["s3"]["bucket"]["name"] = bucket
    obj.update(key=raw_key, sequencer=sequencer, size=size if size is not None else obj["size"])
    obj["eTag"] = (put_response or {}).get("ETag", "").strip('"') or obj["eTag"]
    obj["versionId"] = (put_response or {}).get("VersionId")
    return dict(body)


def records(table: str) -> list[Any]:
    return EncounterRepository(table).list()


def test_sqs_wrapped_s3_event_verbatim(load_handler, table: str) -> None:  # type: ignore[no-untyped-def]
    boto3.client("s3").create_bucket(Bucket="xxx")
    result = load_handler("ingest").handler(shared_event("powertools/s3SqsEvent.json"), Context())
    assert result == {"batchItemFailures": []}
    [encounter] = records(table)
    assert encounter.source_key == "test.pdf"
    assert encounter.status is EncounterStatus.REJECTED
    assert encounter.reason == "key is outside the input prefixes"


@pytest.mark.parametrize(
    ("path", "bucket_name", "decoded"),
    [
        ("aws_docs/lambda-console-s3-put-encoded-key.json", "example-bucket", "test/key"),
        ("powertools/s3EventDecodedKey.json", "sourcebucket", "Happy Face.jpg"),
    ],
)
def test_url_encoded_keys_are_decoded(load_handler, table: str, path: str, bucket_name: str, decoded: str) -> None:  # type: ignore[no-untyped-def]
    result = load_handler("ingest").handler(sqs_event(shared_event(path)), Context())
    assert result == {"batchItemFailures": []}
    [encounter] = records(table)
    assert encounter.source_key == decoded
    assert encounter.source_bucket == bucket_name


def test_s3_test_event_is_ignored(load_handler, table: str) -> None:  # type: ignore[no-untyped-def]
    result = load_handler("ingest").handler(sqs_event(shared_event("aws_docs/s3-TestEvent-message.json")), Context())
    assert result == {"batchItemFailures": []}
    assert records(table) == []


def test_audio_with_odd_key_starts_a_transcription_job(load_handler, table: str, bucket: str,  # type: ignore[no-untyped-def]
                                                       transcribe) -> None:
    key = "audio/Dr visit+1 한국.wav"
    raw = "audio/Dr+visit%2B1+%ED%95%9C%EA%B5%AD.wav"
    response = put(bucket, key, media.wav_bytes(1.0))
    encounter_id = ObjectRef(bucket=bucket, key=key, size=1, version_id=response["VersionId"]).encounter_id
    name = f"medscribe-dev-{encounter_id}"
    transcribe.add_response("start_transcription_job", job(name, "IN_PROGRESS"), {
        "TranscriptionJobName": name, "LanguageCode": "en-US", "MediaFormat": "wav",
        "Media": {"MediaFileUri": f"s3://{bucket}/{key}"}, "OutputBucketName": "artifacts",
        "OutputKey": f"transcripts/{encounter_id}/transcribe.json", "OutputEncryptionKMSKeyId": ANY,
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2},
    })
    result = load_handler("ingest").handler(sqs_event(s3_body(bucket, raw, response, size=16044)), Context())
    assert result == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()
    [encounter] = records(table)
    assert (encounter.source_key, encounter.media_format) == (key, "wav")
    assert encounter.status is EncounterStatus.TRANSCRIBING
    assert encounter.job_name == name
    assert "한국" not in name
    assert encounter.duration_seconds == pytest.approx(1.0)


def test_duplicate_delivery_creates_one_encounter_and_one_job(load_handler, table: str, bucket: str,  # type: ignore[no-untyped-def]
                                                               transcribe) -> None:
    response = put(bucket, "audio/a.mp3", media.MP3)
    transcribe.add_response("start_transcription_job", job("n", "IN_PROGRESS"), None)  # exactly one start
    body = s3_body(bucket, "audio/a.mp3", response, size=len(media.MP3))
    handler = load_handler("ingest").handler
    assert handler(sqs_event(body, body), Context()) == {"batchItemFailures": []}
    assert handler(sqs_event(body), Context()) == {"batchItemFailures": []}
    assert len(records(table)) == 1
    transcribe.assert_no_pending_responses()  # a second start would have found no stubbed response


def test_stale_event_is_ignored_and_new_version_is_a_new_revision(load_handler, table: str, bucket: str) -> None:  # type: ignore[no-untyped-def]
    v1 = put(bucket, "text/note.txt", b"first")
    v2 = put(bucket, "text/note.txt", b"second")
    handler = load_handler("ingest").handler
    handler(sqs_event(s3_body(bucket, "text/note.txt", v2, sequencer="0B", size=6)), Context())
    handler(sqs_event(s3_body(bucket, "text/note.txt", v1, sequencer="0A", size=5)), Context())
    [encounter] = records(table)
    assert encounter.revision == v2["VersionId"]
    v3 = put(bucket, "text/note.txt", b"third")
    handler(sqs_event(s3_body(bucket, "text/note.txt", v3, sequencer="0C", size=5)), Context())
    assert {e.revision for e in records(table)} == {v2["VersionId"], v3["VersionId"]}


def test_the_same_bytes_uploaded_again_are_the_existing_encounter_and_no_second_job(  # type: ignore[no-untyped-def]
        load_handler, table: str, bucket: str, transcribe) -> None:
    transcribe.add_response("start_transcription_job", job("n", "IN_PROGRESS"), None)  # exactly one start
    handler = load_handler("ingest").handler
    first = put(bucket, "audio/visit.mp3", media.MP3)
    again = put(bucket, "audio/visit.mp3", media.MP3)  # a folder run twice: a new version, same bytes
    assert first["VersionId"] != again["VersionId"]
    handler(sqs_event(s3_body(bucket, "audio/visit.mp3", first, sequencer="0A", size=len(media.MP3))), Context())
    handler(sqs_event(s3_body(bucket, "audio/visit.mp3", again, sequencer="0B", size=len(media.MP3))), Context())
    transcribe.assert_no_pending_responses()  # a second start would have found no stubbed response
    [encounter] = records(table)
    assert encounter.revision == first["VersionId"]

    # different bytes under the same key: a new encounter (and its own job)
    transcribe.add_response("start_transcription_job", job("m", "IN_PROGRESS"), None)
    changed = put(bucket, "audio/visit.mp3", media.MP3 + b"\xff\xfb\x90\x00")
    handler(sqs_event(s3_body(bucket, "audio/visit.mp3", changed, sequencer="0C", size=len(media.MP3) + 4)), Context())
    transcribe.assert_no_pending_responses()
    assert {e.revision for e in records(table)} == {first["VersionId"], changed["VersionId"]}


def test_the_content_record_names_no_key_and_a_checksum_is_preferred(load_handler, table: str, bucket: str) -> None:  # type: ignore[no-untyped-def]
    key = "text/Kim Min-ji visit.txt"
    response = aws_clients.client("s3").put_object(Bucket=bucket, Key=key, Body=b"knee pain",
                                                   ChecksumAlgorithm="SHA256")
    load_handler("ingest").handler(sqs_event(s3_body(bucket, key, response, size=9)), Context())
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    [content] = [item for item in items if item["pk"]["S"].startswith("CON#")]
    assert "Kim" not in json.dumps(content)
    assert "visit" not in json.dumps(content)
    fingerprint = ObjectStore().fingerprint(ObjectRef(bucket=bucket, key=key, size=9, version_id=response["VersionId"]))
    assert fingerprint is not None
    assert fingerprint.startswith("ChecksumSHA256:")


@pytest.mark.parametrize(
    ("key", "body", "reason"),
    [
        ("audio/empty.wav", b"", "object is empty (0 bytes)"),
        ("audio/notes.exe", b"MZ", "unsupported extension '.exe'"),
        ("audio/fake.mp3", b"just some text", "content does not match extension '.mp3' (found no known audio signature)"),  # noqa: E501
        ("text/latin1.txt", "caf\u00e9".encode("latin-1"), "not valid UTF-8 (byte 3)"),
    ],
)
def test_bad_objects_are_rejected_with_reason(load_handler, table: str, bucket: str, key: str, body: bytes,  # type: ignore[no-untyped-def]
                                              reason: str) -> None:
    response = put(bucket, key, body)
    result = load_handler("ingest").handler(sqs_event(s3_body(bucket, key, response, size=len(body))), Context())
    assert result == {"batchItemFailures": []}  # rejection is an outcome, not a retry
    [encounter] = records(table)
    assert (encounter.status, encounter.reason) == (EncounterStatus.REJECTED, reason)


def test_a_video_only_mp4_is_rejected_for_having_no_audio_stream(load_handler, table: str, bucket: str) -> None:  # type: ignore[no-untyped-def]
    video = media.video_only_mp4()
    response = put(bucket, "audio/visit.mp4", video)
    result = load_handler("ingest").handler(sqs_event(s3_body(bucket, "audio/visit.mp4", response, size=len(video))),
                                            Context())
    assert result == {"batchItemFailures": []}
    [encounter] = records(table)
    assert encounter.status is EncounterStatus.REJECTED
    assert encounter.reason is not None
    assert encounter.reason.startswith("no audio stream")


def test_folder_marker_is_ignored(load_handler, table: str, bucket: str) -> None:  # type: ignore[no-untyped-def]
    response = put(bucket, "audio/visits/", b"")
    load_handler("ingest").handler(sqs_event(s3_body(bucket, "audio/visits/", response, size=0)), Context())
    assert records(table) == []


def test_a_malformed_record_is_dropped_alone_and_its_neighbour_ingested(load_handler, table: str, bucket: str,  # type: ignore[no-untyped-def]
                                                                         transcribe) -> None:
    response = put(bucket, "audio/a.mp3", media.MP3)
    transcribe.add_response("start_transcription_job", job("n", "IN_PROGRESS"), None)
    good = s3_body(bucket, "audio/a.mp3", response, size=len(media.MP3))
    result = load_handler("ingest").handler(sqs_event(good, "{not json"), Context())
    assert result == {"batchItemFailures": []}  # never retried: it can never parse (test_malformed_messages.py)
    assert len(records(table)) == 1


def test_throttling_fails_the_record_for_retry_without_a_record(load_handler, table: str, bucket: str,  # type: ignore[no-untyped-def]
                                                                transcribe) -> None:
    response = put(bucket, "audio/a.mp3", media.MP3)
    transcribe.add_response("start_transcription_job", job("n", "IN_PROGRESS"), None)
    handler = load_handler("ingest").handler

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutItem")

    aws_clients.client("dynamodb").meta.events.register("before-call.dynamodb.PutItem", throttle)
    body = s3_body(bucket, "audio/a.mp3", response, size=len(media.MP3))
    # every record failed: Powertools fails the whole invocation, so SQS redelivers the batch
    with pytest.raises(BatchProcessingError):
        handler(sqs_event(body), Context())
    aws_clients.client("dynamodb").meta.events.unregister("before-call.dynamodb.PutItem", throttle)
    assert records(table) == []
    assert handler(sqs_event(body), Context()) == {"batchItemFailures": []}  # the retry succeeds
    assert records(table)[0].encounter_id == ObjectRef.from_event(
        bucket=bucket, raw_key="audio/a.mp3", size=1, version_id=response["VersionId"]).encounter_id
