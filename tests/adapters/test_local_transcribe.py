"""The local Transcribe service, driven by a real boto3 transcribe client over HTTP, with S3, SQS and
EventBridge in the moto emulator: the API's shapes and errors, job lifecycle, output, events, faults.

Most tests use a scripted recognizer (fixed words, real decoding and channel attribution); one runs
the real Whisper engine on a sample recording.
"""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.domain.transcript_lines import parse_transcribe_output
from medscribe.messages import TranscribeJobStateChange, parse
from medscribe.routes import TRANSCRIBE_JOB_STATE_PATTERN
from medscribe.settings import PipelineSettings, project_root
from medscribe_local.emulator import Emulator
from medscribe_local.environment import connect, route_transcribe
from medscribe_local.media_decoding import FORMAT_MISMATCH
from medscribe_local.transcribe_service import EVENT_DETAIL_TYPE, TranscribeService
from medscribe_local.whisper_engine import Recognition, RecognitionOptions, WhisperRecognizer, Word

SAMPLE = project_root() / "sample-data" / "audio" / "fareez" / "GAS0001.mp3"
MEDIA_KEY = "audio/clinic a/Jane Doe visit.wav"  # a user-supplied key: must never reach a FailureReason


def stereo_wav(seconds: float = 3.2, rate: int = 16000) -> bytes:
    """A tone on the left channel for 0-1 s and on the right for 2-3 s (two speakers, one each side)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    left = np.where(t < 1.0, tone, 0.0)
    right = np.where((t >= 2.0) & (t < 3.0), tone, 0.0)
    frames = (np.stack([left, right], axis=1) * 32767).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


SCRIPT = [  # what the scripted recognizer "hears": the clinician (left) then the patient (right)
    Word(" Hello", 0.1, 0.4, 0.91), Word(" doctor.", 0.4, 0.9, 0.95),
    Word(" I", 2.1, 2.2, 0.9), Word(" feel", 2.2, 2.5, 0.88), Word(" sick.", 2.5, 2.9, 0.8),
]


class ScriptedRecognizer:
    """Returns SCRIPT; `gate` holds recognitions until set (to observe QUEUED / IN_PROGRESS)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[RecognitionOptions] = []

    def recognize(self, audio: Any, options: RecognitionOptions, cancelled: Callable[[], bool] = bool) -> Recognition:
        self.calls.append(options)
        assert self.gate.wait(20), "the test never opened the gate"
        if options.language is None:
            return Recognition(list(SCRIPT), "ko", 0.87, [("ko", 0.87), ("en", 0.1)])
        return Recognition(list(SCRIPT), options.language)


@dataclass
class Local:
    service: TranscribeService
    recognizer: ScriptedRecognizer
    client: Any
    s3: Any
    sqs: Any
    media_bucket: str
    output_bucket: str
    kms_key: str
    queue_url: str

    def put_media(self, body: bytes, key: str = MEDIA_KEY) -> str:
        self.s3.put_object(Bucket=self.media_bucket, Key=key, Body=body)
        return f"s3://{self.media_bucket}/{key}"

    def start(self, name: str, uri: str, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TranscriptionJobName": name, "LanguageCode": "en-US", "MediaFormat": "wav",
            "Media": {"MediaFileUri": uri}, "OutputBucketName": self.output_bucket,
            "OutputKey": f"transcripts/{name}/transcribe.json", "OutputEncryptionKMSKeyId": self.kms_key,
            "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2},
        }
        params.update(extra)  # an extra None removes the default
        params = {key: value for key, value in params.items() if value is not None}
        return dict(self.client.start_transcription_job(**params)["TranscriptionJob"])

    def wait(self, name: str, medical: bool = False, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if medical:
                job = self.client.get_medical_transcription_job(MedicalTranscriptionJobName=name)
                job = job["MedicalTranscriptionJob"]
            else:
                job = self.client.get_transcription_job(TranscriptionJobName=name)["TranscriptionJob"]
            if job["TranscriptionJobStatus"] in ("COMPLETED", "FAILED"):
                return dict(job)
            assert time.monotonic() < deadline, f"{name} still {job['TranscriptionJobStatus']}"
            time.sleep(0.05)

    def output(self, job: dict[str, Any]) -> dict[str, Any]:
        bucket, key = job["Transcript"]["TranscriptFileUri"].split(".amazonaws.com/", 1)[1].split("/", 1)
        return dict(json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))

    def events(self, expected: int, timeout: float = 10) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            ).get("Messages", [])
            found += [json.loads(m["Body"]) for m in messages]
        return found


def make_local(tmp_path: Path, recognizer: Any, settings: PipelineSettings | None = None,
               workers: int = 2) -> Iterator[Local]:
    emulator = Emulator()
    restore = [connect(emulator.start())]
    service = TranscribeService(tmp_path / "transcribe", recognizer, settings or PipelineSettings(), workers=workers)
    try:
        restore.append(route_transcribe(service.start()))
        s3, sqs, events = (aws_clients.client(name) for name in ("s3", "sqs", "events"))
        for bucket in ("media", "outputs"):
            s3.create_bucket(Bucket=bucket)
        kms_key = aws_clients.client("kms").create_key()["KeyMetadata"]["Arn"]
        queue_url = sqs.create_queue(QueueName="job-state")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="job-state", EventPattern=json.dumps(TRANSCRIBE_JOB_STATE_PATTERN))
        events.put_targets(Rule="job-state", Targets=[{"Id": "queue", "Arn": queue_arn}])
        yield Local(service, recognizer, aws_clients.client("transcribe"), s3, sqs, "media", "outputs", kms_key,
                    queue_url)
    finally:
        service.stop()
        emulator.stop()
        while restore:
            restore.pop()()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    yield from make_local(tmp_path, ScriptedRecognizer())


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_the_transcribe_client_reaches_the_local_service_and_other_clients_the_emulator(local: Local) -> None:
    assert local.client.meta.endpoint_url == local.service.endpoint
    assert local.s3.meta.endpoint_url != local.service.endpoint


def test_a_job_goes_queued_in_progress_completed_and_writes_transcribe_output(local: Local) -> None:
    local.recognizer.gate.clear()
    uri = local.put_media(stereo_wav())

    started = local.start("medscribe-dev-enc-1", uri)

    assert started["TranscriptionJobStatus"] in ("QUEUED", "IN_PROGRESS")
    assert started["Media"] == {"MediaFileUri": uri}
    assert started["Settings"] == {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2}
    assert "Transcript" not in started or started["Transcript"] == {}
    time.sleep(0.3)
    running = local.client.get_transcription_job(TranscriptionJobName="medscribe-dev-enc-1")["TranscriptionJob"]
    assert running["TranscriptionJobStatus"] == "IN_PROGRESS"
    local.recognizer.gate.set()
    job = local.wait("medscribe-dev-enc-1")

    assert job["TranscriptionJobStatus"] == "COMPLETED"
    assert job["Transcript"]["TranscriptFileUri"] == (
        "https://s3.us-east-1.amazonaws.com/outputs/transcripts/medscribe-dev-enc-1/transcribe.json"
    )
    assert (job["LanguageCode"], job["MediaFormat"], job["MediaSampleRateHertz"]) == ("en-US", "wav", 16000)
    assert job["CreationTime"] <= job["StartTime"] <= job["CompletionTime"]
    head = local.s3.head_object(Bucket="outputs", Key="transcripts/medscribe-dev-enc-1/transcribe.json")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", local.kms_key)

    document = local.output(job)
    assert (document["jobName"], document["status"]) == ("medscribe-dev-enc-1", "COMPLETED")
    results = document["results"]
    assert results["medscribe_attribution"] == "channel-energy"
    assert [(i["type"], i["alternatives"][0]["content"], i.get("start_time")) for i in results["items"][:3]] == [
        ("pronunciation", "Hello", "0.1"), ("pronunciation", "doctor", "0.4"), ("punctuation", ".", None),
    ]
    assert results["speaker_labels"]["speakers"] == 2
    lines = parse_transcribe_output(document)
    assert [(line.n, line.speaker, line.text) for line in lines] == [
        (1, "spk_0", "Hello doctor."), (2, "spk_1", "I feel sick."),
    ]
    saved = json.loads((local.service.root / "jobs" / "medscribe-dev-enc-1.json").read_text())
    assert saved["TranscriptionJob"]["TranscriptionJobStatus"] == "COMPLETED"
    assert local.recognizer.calls[0].model == "tiny.en"


def test_channel_identification_labels_channels(local: Local) -> None:
    uri = local.put_media(stereo_wav())
    local.start("channels", uri, Settings={"ChannelIdentification": True})

    results = local.output(local.wait("channels"))["results"]

    assert results["channel_labels"]["number_of_channels"] == 2
    assert [c["channel_label"] for c in results["channel_labels"]["channels"]] == ["ch_0", "ch_1"]
    assert [s["channel_label"] for s in results["audio_segments"]] == ["ch_0", "ch_1"]
    assert "speaker_labels" not in results
    assert [line.speaker for line in parse_transcribe_output({"results": results})] == ["ch_0", "ch_1"]


def test_mono_audio_is_one_speaker_and_says_so(local: Local) -> None:
    mono = io.BytesIO()
    with wave.open(mono, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 8000 * 3)
    local.start("mono", local.put_media(mono.getvalue(), "audio/mono.wav"))

    job = local.wait("mono")
    results = local.output(job)["results"]

    assert job["MediaSampleRateHertz"] == 8000
    assert results["medscribe_attribution"] == "single-speaker"
    assert {s["speaker_label"] for s in results["audio_segments"]} == {"spk_0"}


def test_names_are_validated_and_unique_and_unknown_jobs_are_not_found(local: Local) -> None:
    uri = local.put_media(stereo_wav())
    local.start("dup", uri)

    assert error_of(lambda: local.start("dup", uri)) == (
        "ConflictException", "The requested job name already exists. Use a different job name.",
    )
    for bad in ("bad/name", "x" * 201, "spaces are not allowed"):
        code, message = error_of(lambda bad=bad: local.start(bad, uri))
        assert code == "BadRequestException"
        assert "regular expression pattern: ^[0-9a-zA-Z._-]+" in message
    # Amazon Transcribe answers an unknown job name with BadRequestException, not NotFoundException
    assert error_of(lambda: local.client.get_transcription_job(TranscriptionJobName="nope")) == (
        "BadRequestException", "The requested job couldn't be found. Check the job name and try your request again.",
    )
    code, _ = error_of(lambda: local.start("both", uri, IdentifyLanguage=True))
    assert code == "BadRequestException"
    code, message = error_of(lambda: local.start("clm", uri, ModelSettings={"LanguageModelName": "m"}))
    assert (code, "language model couldn't be found" in message) == ("BadRequestException", True)
    code, _ = error_of(lambda: local.start("no-max", uri, Settings={"ShowSpeakerLabels": True}))
    assert code == "BadRequestException"


def test_undecodable_media_fails_with_the_services_reason_and_no_object_key(local: Local) -> None:
    uri = local.put_media(b"this is a text note, not audio", "audio/Jane Doe notes.mp3")
    local.start("corrupt", uri, MediaFormat="mp3")
    local.start("missing", f"s3://{local.media_bucket}/audio/never-uploaded.wav")

    corrupt, missing = local.wait("corrupt"), local.wait("missing")

    assert corrupt["TranscriptionJobStatus"] == "FAILED"
    assert corrupt["FailureReason"] == FORMAT_MISMATCH
    assert missing["TranscriptionJobStatus"] == "FAILED"
    for job in (corrupt, missing):
        assert "Jane" not in job["FailureReason"]
        assert "audio/" not in job["FailureReason"]
        assert "Transcript" not in job or not job["Transcript"]
    assert local.recognizer.calls == []


def test_completion_events_reach_a_queue_through_the_rule_and_can_be_dropped(local: Local) -> None:
    good = local.put_media(stereo_wav())
    bad = local.put_media(b"not audio", "audio/x.wav")
    local.service.drop_completion_events = lambda name: name.endswith("-lost")

    for name, uri in [("medscribe-ok", good), ("medscribe-bad", bad), ("medscribe-x-lost", good),
                      ("other-system-job", good)]:
        local.start(name, uri)
    for name in ("medscribe-ok", "medscribe-bad", "medscribe-x-lost", "other-system-job"):
        local.wait(name)
    events = local.events(expected=2)
    events += local.events(expected=1, timeout=1)  # nothing else arrives

    assert sorted(e["detail"]["TranscriptionJobName"] for e in events) == ["medscribe-bad", "medscribe-ok"]
    parsed = [parse(TranscribeJobStateChange, json.dumps(e)) for e in events]  # the transcript handler's model
    assert sorted(p.detail.TranscriptionJobName for p in parsed) == ["medscribe-bad", "medscribe-ok"]
    by_name = {e["detail"]["TranscriptionJobName"]: e for e in events}
    assert by_name["medscribe-ok"]["detail"] == {
        "TranscriptionJobName": "medscribe-ok", "TranscriptionJobStatus": "COMPLETED",
    }
    assert by_name["medscribe-bad"]["detail"]["TranscriptionJobStatus"] == "FAILED"
    assert by_name["medscribe-bad"]["detail"]["FailureReason"] == FORMAT_MISMATCH
    assert {(e["source"], e["detail-type"]) for e in events} == {("aws.transcribe", EVENT_DETAIL_TYPE)}
    stats = local.service.stats()
    assert (stats.events_put, stats.events_dropped) == (3, 1)  # other-system-job: put, not routed
    lost = local.client.get_transcription_job(TranscriptionJobName="medscribe-x-lost")["TranscriptionJob"]
    assert lost["TranscriptionJobStatus"] == "COMPLETED"  # the job finished; only its event is gone


def test_throttled_starts_answer_limit_exceeded(local: Local) -> None:
    local.service.throttle_starts = lambda name: name == "busy"
    local.client = boto3.client("transcribe", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    code, _ = error_of(lambda: local.start("busy", local.put_media(stereo_wav())))
    assert code == "LimitExceededException"
    assert local.start("not-busy", local.put_media(stereo_wav()))["TranscriptionJobName"] == "not-busy"


def test_vocabularies_are_stored_and_become_hot_words(local: Local) -> None:
    created = local.client.create_vocabulary(
        VocabularyName="medscribe-terms", LanguageCode="en-US", Phrases=["metformin", "Los-Angeles"],
    )
    assert created["VocabularyState"] == "READY"
    got = local.client.get_vocabulary(VocabularyName="medscribe-terms")
    assert (got["VocabularyName"], got["LanguageCode"], got["VocabularyState"]) == ("medscribe-terms", "en-US", "READY")
    assert error_of(lambda: local.client.create_vocabulary(
        VocabularyName="medscribe-terms", LanguageCode="en-US", Phrases=["x"]))[0] == "ConflictException"
    assert error_of(lambda: local.client.get_vocabulary(VocabularyName="nope"))[0] == "NotFoundException"

    local.client.update_vocabulary(VocabularyName="medscribe-terms", LanguageCode="en-US",
                                   Phrases=["metformin", "lisinopril"])
    local.start("with-vocabulary", local.put_media(stereo_wav()),
                Settings={"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2, "VocabularyName": "medscribe-terms"})
    job = local.wait("with-vocabulary")

    assert job["Settings"]["VocabularyName"] == "medscribe-terms"
    assert local.recognizer.calls[-1].hotwords == "metformin, lisinopril"
    listed = local.client.list_vocabularies(NameContains="TERMS")["Vocabularies"]
    assert [v["VocabularyName"] for v in listed] == ["medscribe-terms"]
    code, message = error_of(lambda: local.start("unknown-vocabulary", local.put_media(stereo_wav()),
                                                 Settings={"VocabularyName": "nope"}))
    assert (code, "vocabulary couldn't be found" in message) == ("BadRequestException", True)
    local.client.delete_vocabulary(VocabularyName="medscribe-terms")
    assert local.client.list_vocabularies()["Vocabularies"] == []


def test_list_filters_by_status_and_name_and_pages(local: Local) -> None:
    good, bad = local.put_media(stereo_wav()), local.put_media(b"nope", "audio/bad.wav")
    for i in range(4):
        local.start(f"medscribe-list-{i}", good)
    local.start("medscribe-list-bad", bad)
    for name in [f"medscribe-list-{i}" for i in range(4)] + ["medscribe-list-bad"]:
        local.wait(name)

    failed = local.client.list_transcription_jobs(Status="FAILED")
    assert [s["TranscriptionJobName"] for s in failed["TranscriptionJobSummaries"]] == ["medscribe-list-bad"]
    assert failed["Status"] == "FAILED"
    assert failed["TranscriptionJobSummaries"][0]["OutputLocationType"] == "CUSTOMER_BUCKET"
    first = local.client.list_transcription_jobs(JobNameContains="LIST-", MaxResults=3)
    second = local.client.list_transcription_jobs(JobNameContains="LIST-", MaxResults=3, NextToken=first["NextToken"])
    names = [s["TranscriptionJobName"] for page in (first, second) for s in page["TranscriptionJobSummaries"]]
    assert sorted(names) == sorted([f"medscribe-list-{i}" for i in range(4)] + ["medscribe-list-bad"])
    assert "NextToken" not in second
    assert len(local.client.list_transcription_jobs()["TranscriptionJobSummaries"]) == 5  # AWS default page


def test_medical_jobs_are_en_us_only_and_land_under_medical(local: Local) -> None:
    uri = local.put_media(stereo_wav())
    params: dict[str, Any] = {
        "MedicalTranscriptionJobName": "medscribe-med", "LanguageCode": "en-US", "Media": {"MediaFileUri": uri},
        "OutputBucketName": local.output_bucket, "Specialty": "PRIMARYCARE", "Type": "CONVERSATION",
        "Settings": {"ShowSpeakerLabels": True, "MaxSpeakerLabels": 2},
    }
    assert error_of(lambda: local.client.start_medical_transcription_job(
        **{**params, "LanguageCode": "ko-KR"}))[0] == "BadRequestException"

    local.client.start_medical_transcription_job(**params)
    job = local.wait("medscribe-med", medical=True)

    assert (job["MedicalTranscriptionJobName"], job["Specialty"], job["Type"]) == (
        "medscribe-med", "PRIMARYCARE", "CONVERSATION")
    assert job["Transcript"]["TranscriptFileUri"].endswith("/outputs/medical/medscribe-med.json")
    assert len(parse_transcribe_output(local.output(job))) == 2
    assert [e["detail"]["TranscriptionJobName"] for e in local.events(expected=1)] == ["medscribe-med"]


def test_medical_vocabularies_are_stored_apart_and_become_a_medical_jobs_hot_words(local: Local) -> None:
    table = "Phrase\tSoundsLike\tIPA\tDisplayAs\nmetformin\t\t\t\nACE-inhibitor\t\t\tACE inhibitor\n"
    uri = local.put_media(table.encode(), "vocabularies/medical.txt")
    created = local.client.create_medical_vocabulary(VocabularyName="medscribe-med-terms", LanguageCode="en-US",
                                                     VocabularyFileUri=uri)
    assert created["VocabularyState"] == "READY"
    assert local.client.get_medical_vocabulary(VocabularyName="medscribe-med-terms")["VocabularyState"] == "READY"
    assert error_of(lambda: local.client.get_vocabulary(VocabularyName="medscribe-med-terms"))[0] == (
        "NotFoundException")  # a separate kind
    saved = json.loads((local.service.root / "medical-vocabularies" / "medscribe-med-terms.json").read_text())
    assert saved["Phrases"] == ["metformin", "ACE inhibitor"]

    local.client.start_medical_transcription_job(
        MedicalTranscriptionJobName="medscribe-med-vocabulary", LanguageCode="en-US",
        Media={"MediaFileUri": local.put_media(stereo_wav())}, OutputBucketName=local.output_bucket,
        Specialty="PRIMARYCARE", Type="DICTATION", Settings={"VocabularyName": "medscribe-med-terms"},
    )
    assert local.wait("medscribe-med-vocabulary", medical=True)["TranscriptionJobStatus"] == "COMPLETED"
    assert local.recognizer.calls[-1].hotwords == "metformin, ACE inhibitor"
    local.client.delete_medical_vocabulary(VocabularyName="medscribe-med-terms")
    assert not (local.service.root / "medical-vocabularies" / "medscribe-med-terms.json").exists()


def test_language_identification_reports_the_language_and_its_score(local: Local) -> None:
    local.start("identify", local.put_media(stereo_wav()), LanguageCode=None, IdentifyLanguage=True,
                LanguageOptions=["en-US", "ko-KR"])
    job = local.wait("identify")
    assert (job["LanguageCode"], job["IdentifyLanguage"]) == ("ko-KR", True)
    assert job["IdentifiedLanguageScore"] == pytest.approx(0.87)
    assert local.recognizer.calls[-1].model == "base"
    assert local.recognizer.calls[-1].language_options == ("en", "ko")


def test_running_jobs_never_exceed_the_worker_pool(tmp_path: Path) -> None:
    for local in make_local(tmp_path, ScriptedRecognizer(), workers=8,
                            settings=PipelineSettings(max_concurrent_transcriptions=3)):
        local.recognizer.gate.clear()
        uri = local.put_media(stereo_wav())
        for i in range(6):
            local.start(f"burst-{i}", uri)
        time.sleep(0.5)
        statuses = [local.client.get_transcription_job(TranscriptionJobName=f"burst-{i}")["TranscriptionJob"]
                    ["TranscriptionJobStatus"] for i in range(6)]
        assert statuses.count("IN_PROGRESS") == 3
        assert statuses.count("QUEUED") == 3
        local.recognizer.gate.set()
        assert {local.wait(f"burst-{i}")["TranscriptionJobStatus"] for i in range(6)} == {"COMPLETED"}
        assert local.service.stats().max_running == 3


def test_the_whisper_engine_transcribes_a_two_voice_recording(tmp_path: Path) -> None:
    for local in make_local(tmp_path, WhisperRecognizer()):
        local.start("medscribe-real", local.put_media(SAMPLE.read_bytes(), "audio/GAS0001.mp3"), MediaFormat="mp3")
        job = local.wait("medscribe-real", timeout=120)

        assert job["TranscriptionJobStatus"] == "COMPLETED", job.get("FailureReason")
        lines = parse_transcribe_output(local.output(job))
        assert {line.speaker for line in lines} == {"spk_0", "spk_1"}
        assert lines[0].speaker == "spk_0"  # the clinician speaks first, on the left channel
        assert "brings you in today" in lines[0].text.lower()
        assert [line.speaker for line in lines[:4]] == ["spk_0", "spk_1", "spk_0", "spk_1"]
