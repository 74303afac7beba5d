"""Transcribe adapter against botocore's Stubber: real request parameters and response shapes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from medscribe.adapters.transcribe_jobs import JobRequest, TranscribeJobs
from medscribe.domain.errors import PermanentError, TransientError
from tests.transcribe_shapes import job

NAME = "medscribe-dev-enc-0123456789abcdef0123456789abcdef"


def request(**overrides: Any) -> JobRequest:
    values: dict[str, Any] = {
        "job_name": NAME, "media_uri": "s3://input/audio/a.mp3", "media_format": "mp3",
        "output_bucket": "artifacts", "output_key": "transcripts/enc-x/transcribe.json",
        "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/k", "language": "en-US",
    }
    values.update(overrides)
    return JobRequest(**values)


@pytest.fixture
def stubbed() -> tuple[TranscribeJobs, Stubber, list[float]]:
    client = boto3.client("transcribe", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sleeps: list[float] = []
    return TranscribeJobs(client, sleep=sleeps.append), Stubber(client), sleeps


def test_start_sends_the_documented_parameters(stubbed) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, _ = stubbed
    stub.add_response("start_transcription_job", job(NAME, "IN_PROGRESS"), {
        "TranscriptionJobName": NAME, "LanguageCode": "en-US", "MediaFormat": "mp3",
        "Media": {"MediaFileUri": "s3://input/audio/a.mp3"}, "OutputBucketName": "artifacts",
        "OutputKey": "transcripts/enc-x/transcribe.json",
        "OutputEncryptionKMSKeyId": "arn:aws:kms:us-east-1:111122223333:key/k",
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2, "VocabularyName": "clinic-v1"},
        "ModelSettings": {"LanguageModelName": "clinic-clm"},
    })
    with stub:
        state = jobs.start(request(vocabulary_name="clinic-v1", language_model_name="clinic-clm"))
    assert (state.name, state.status) == (NAME, "IN_PROGRESS")
    stub.assert_no_pending_responses()


def test_channels_korean_and_identify() -> None:
    channels = request(channel_identification=True, language="ko-KR", language_model_name="clm").api_params()
    assert channels["Settings"] == {"ChannelIdentification": True}
    assert channels["LanguageCode"] == "ko-KR"
    assert "ModelSettings" not in channels  # custom language models do not support ko-KR
    identify = request(language="identify").api_params()
    assert identify["IdentifyLanguage"] is True
    assert "LanguageCode" not in identify


def test_medical_job(stubbed) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, _ = stubbed
    medical = {"MedicalTranscriptionJob": {
        "MedicalTranscriptionJobName": NAME, "TranscriptionJobStatus": "IN_PROGRESS", "LanguageCode": "en-US",
        "Specialty": "PRIMARYCARE", "Type": "CONVERSATION"}}
    stub.add_response("start_medical_transcription_job", medical, {
        "MedicalTranscriptionJobName": NAME, "LanguageCode": "en-US", "Specialty": "PRIMARYCARE",
        "Type": "CONVERSATION", "Media": ANY, "MediaFormat": "mp3", "OutputBucketName": "artifacts",
        "OutputKey": ANY, "OutputEncryptionKMSKeyId": ANY, "Settings": ANY,
    })
    with stub:
        assert jobs.start(request(medical=True)).status == "IN_PROGRESS"


def test_conflict_reads_the_existing_job(stubbed) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, _ = stubbed
    stub.add_client_error("start_transcription_job", "ConflictException",
                          "The requested job name already exists. Use a different job name.", 400)
    stub.add_response("get_transcription_job", job(NAME, "COMPLETED"), {"TranscriptionJobName": NAME})
    with stub:
        state = jobs.start(request())
    assert state.status == "COMPLETED"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["ThrottlingException", "LimitExceededException"])
def test_throttling_backs_off_and_retries(stubbed, code: str) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, sleeps = stubbed
    stub.add_client_error("start_transcription_job", code, "Rate exceeded", 400)
    stub.add_client_error("start_transcription_job", code, "Rate exceeded", 400)
    stub.add_response("start_transcription_job", job(NAME, "QUEUED"), None)
    with stub:
        assert jobs.start(request()).status == "QUEUED"
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 <= sleeps[1] <= 1.0  # exponential with jitter


def test_throttling_that_persists_is_transient(stubbed) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, sleeps = stubbed
    for _ in range(jobs.attempts):
        stub.add_client_error("start_transcription_job", "ThrottlingException", "Rate exceeded", 400)
    with stub, pytest.raises(TransientError):
        jobs.start(request())
    assert len(sleeps) == jobs.attempts - 1


def test_bad_request_is_permanent(stubbed) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, _ = stubbed
    stub.add_client_error("start_transcription_job", "BadRequestException",
                          "The S3 URI that you provided can't be accessed.", 400)
    with stub, pytest.raises(PermanentError, match="can't be accessed"):
        jobs.start(request())


def test_get_failed_job_carries_the_reason(stubbed) -> None:  # type: ignore[no-untyped-def]
    jobs, stub, _ = stubbed
    reason = "The media format provided does not match the detected media format."
    stub.add_response("get_transcription_job", job(NAME, "FAILED", failure=reason), {"TranscriptionJobName": NAME})
    stub.add_client_error("get_transcription_job", "BadRequestException",
                          "The requested job couldn't be found. Check the job name and try your request again.", 400)
    with stub:
        failed = jobs.get(NAME)
        missing = jobs.get(NAME)
    assert (failed.status, failed.failure_reason) == ("FAILED", reason)
    assert missing.status == "NOT_FOUND"
