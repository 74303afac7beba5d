"""Language per upload through the ingest, transcript and document handlers (moto for S3 and DynamoDB,
botocore's Stubber for Transcribe with real request and response shapes): the `medscribe-language`
tag, else the key (`audio/ko-KR/...`), else the deployment's `language` decides the Transcribe request
and is recorded on the encounter; a Medical deployment sends Korean and identification uploads to
standard Transcribe (and reads their jobs there); a text note's choice decides its EMR language."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY

from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.encounter import Encounter, EncounterStatus, ObjectRef
from medscribe.settings import LanguageMode
from tests import media
from tests.handlers.conftest import Context
from tests.handlers.test_document import read, ready
from tests.handlers.test_ingest import s3_body, sqs_event
from tests.handlers.test_transcript import OUTPUTS, state_change
from tests.transcribe_shapes import job

WAV = media.wav_bytes(1.0)
KOREAN_NOTE = ("진료일: 2026-11-03\n47세 남자, 오른쪽 무릎 통증으로 내원. 계단을 내려갈 때 심해짐.\n"
               "평가: 오른쪽 무릎 내측 반월상 연골 파열 의심.\n계획: 무릎 MRI 촬영, 2주 후 재진.\n").encode()


def upload(load_handler, bucket: str, key: str, body: bytes = WAV, tags: str | None = None,  # type: ignore[no-untyped-def]
           **settings: Any) -> Encounter:
    """Put an object (tags as `x-amz-tagging`), run the ingest handler on its event; the record after."""
    response = dict(boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body,
                                                  **({"Tagging": tags} if tags else {})))
    result = load_handler("ingest", **settings).handler(sqs_event(s3_body(bucket, key, response, size=len(body))),
                                                        Context())
    assert result == {"batchItemFailures": []}
    encounter = EncounterRepository(_table()).get(
        ObjectRef(bucket=bucket, key=key, size=len(body), version_id=response["VersionId"]).encounter_id)
    assert encounter is not None
    return encounter


def _table() -> str:
    return str(boto3.client("dynamodb").list_tables()["TableNames"][0])


def expect_start(transcribe, bucket: str, key: str, language: dict[str, Any], *,  # type: ignore[no-untyped-def]
                 medical: bool = False, settings: dict[str, Any] | None = None) -> None:
    """Queue the one Start request the ingest handler must send for `key`, with its language members."""
    common = {"Media": {"MediaFileUri": f"s3://{bucket}/{key}"}, "MediaFormat": "wav", "OutputBucketName": "artifacts",
              "OutputKey": ANY, "OutputEncryptionKMSKeyId": ANY,
              "Settings": settings or {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2}}
    if medical:
        transcribe.add_response("start_medical_transcription_job", {"MedicalTranscriptionJob": {
            "MedicalTranscriptionJobName": "n", "TranscriptionJobStatus": "IN_PROGRESS", "LanguageCode": "en-US"}}, {
            "MedicalTranscriptionJobName": ANY, "Specialty": "PRIMARYCARE", "Type": "CONVERSATION", **language,
            **common})
    else:
        transcribe.add_response("start_transcription_job", job("n", "IN_PROGRESS"),
                                {"TranscriptionJobName": ANY, **language, **common})


@pytest.mark.parametrize(("key", "tags", "language", "members"), [
    ("audio/ko-KR/visit.wav", None, "ko-KR", {"LanguageCode": "ko-KR"}),  # the key
    ("audio/clinic-a/language=ko-kr/visit.wav", None, "ko-KR", {"LanguageCode": "ko-KR"}),
    ("audio/visit.wav", "medscribe-language=ko-KR", "ko-KR", {"LanguageCode": "ko-KR"}),  # the tag
    ("audio/ko-KR/visit.wav", "medscribe-language=identify&clinic=a", "identify",  # the tag wins over the key
     {"IdentifyLanguage": True, "LanguageOptions": ["en-US", "ko-KR"]}),
    ("audio/clinic-a/visit.wav", None, "en-US", {"LanguageCode": "en-US"}),  # neither: the setting (cdk.json)
])
def test_the_upload_chooses_the_language_of_its_transcribe_job_and_record(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, key: str, tags: str | None, language: str, members: dict[str, Any]) -> None:
    expect_start(transcribe, world["bucket"], key, members)
    encounter = upload(load_handler, world["bucket"], key, tags=tags)
    transcribe.assert_no_pending_responses()
    assert (encounter.status, encounter.language) == (EncounterStatus.TRANSCRIBING, language)


def test_the_setting_applies_when_the_upload_names_no_language(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    expect_start(transcribe, world["bucket"], "audio/visit.wav",
                 {"IdentifyLanguage": True, "LanguageOptions": ["en-US", "ko-KR"]})
    encounter = upload(load_handler, world["bucket"], "audio/visit.wav", language=LanguageMode.IDENTIFY)
    transcribe.assert_no_pending_responses()
    assert encounter.language == "identify"


@pytest.mark.parametrize(("key", "tags", "reason"), [
    ("audio/fr-FR/visit.wav", None, "the key's first folder names a language this pipeline does not transcribe "
                                    "(it takes en-US, ko-KR or identify)"),
    ("audio/visit.wav", "medscribe-language=Korean", "the medscribe-language tag names a language this pipeline "
                                                    "does not transcribe (it takes en-US, ko-KR or identify)"),
])
def test_an_unsupported_language_rejects_the_upload_before_any_job(  # type: ignore[no-untyped-def]
        load_handler, world, transcribe, key: str, tags: str | None, reason: str) -> None:
    encounter = upload(load_handler, world["bucket"], key, tags=tags)  # no Start queued: none may be sent
    transcribe.assert_no_pending_responses()
    assert (encounter.status, encounter.reason, encounter.language) == (EncounterStatus.REJECTED, reason, None)


def test_a_medical_deployment_transcribes_korean_with_standard_transcribe(load_handler, world, transcribe) -> None:  # type: ignore[no-untyped-def]
    """Transcribe Medical is US English only: the Korean upload gets a standard ko-KR job without the
    deployment's (medical) vocabulary; the English one a Medical job with it; the transcript handler
    reads each job where it was started."""
    medical = {"transcribe_medical": True, "vocabulary_name": "medscribe-dev-med"}
    expect_start(transcribe, world["bucket"], "audio/en.wav", {"LanguageCode": "en-US"}, medical=True, settings={
        "ShowSpeakerLabels": True, "MaxSpeakerLabels": 2, "VocabularyName": "medscribe-dev-med"})
    english = upload(load_handler, world["bucket"], "audio/en.wav", **medical)
    expect_start(transcribe, world["bucket"], "audio/ko-KR/visit.wav", {"LanguageCode": "ko-KR"})
    korean = upload(load_handler, world["bucket"], "audio/ko-KR/visit.wav", **medical)
    transcribe.assert_no_pending_responses()
    assert (english.language, korean.language) == ("en-US", "ko-KR")

    boto3.client("s3").put_object(Bucket="artifacts", Key=f"transcripts/{korean.encounter_id}/transcribe.json",
                                  Body=(OUTPUTS / "tscribe/03-speaker-identification.json").read_bytes())
    name = korean.job_name or ""
    transcribe.add_response("get_transcription_job", job(name, "COMPLETED", language="ko-KR"),
                            {"TranscriptionJobName": name})  # standard, not GetMedicalTranscriptionJob
    result = load_handler("transcript", **medical).handler(sqs_event(state_change(name, "COMPLETED")), Context())
    assert result == {"batchItemFailures": []}
    transcribe.assert_no_pending_responses()
    after = EncounterRepository(world["table"]).get(korean.encounter_id)
    assert after is not None
    assert (after.status, after.language_code) == (EncounterStatus.TRANSCRIBED, "ko-KR")


@pytest.mark.parametrize(("key", "tags", "language", "emr_language"), [
    ("text/note.txt", None, None, "ko"),  # no choice: the text's own language
    ("text/ko-KR/note.txt", None, "ko-KR", "ko"),
    ("text/ko-KR/note.txt", "medscribe-language=en-US", "en-US", "en"),  # the tag wins, and the EMR follows it
])
def test_a_text_note_s_choice_decides_its_emr_language(load_handler, world, key: str, tags: str | None,  # type: ignore[no-untyped-def]
                                                        language: str | None, emr_language: str) -> None:
    encounter = upload(load_handler, world["bucket"], key, body=KOREAN_NOTE, tags=tags, note_engine="offline")
    assert (encounter.status, encounter.language) == (EncounterStatus.RECEIVED, language)
    handler = load_handler("document", note_engine="offline")
    assert handler.handler(ready(encounter.encounter_id), Context()) == {"batchItemFailures": []}
    emr = json.loads(read(f"notes/{encounter.encounter_id}/emr.json"))
    assert emr["language"] == emr_language
