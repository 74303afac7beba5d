"""The local Transcribe's job files never carry the media's key (uploaders' keys often name the patient),
and DeleteTranscriptionJob / DeleteMedicalTranscriptionJob remove a job, its file and its answer
(issue 14, items 5 and 6)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.test_local_transcribe import MEDIA_KEY, Local, ScriptedRecognizer, error_of, make_local, stereo_wav


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    yield from make_local(tmp_path, ScriptedRecognizer())


def job_files(local: Local) -> list[Path]:
    return sorted(p for folder in ("jobs", "medical-jobs") for p in (local.service.root / folder).glob("*.json"))


def test_job_files_name_the_media_bucket_but_never_its_key(local: Local) -> None:
    local.recognizer.gate.clear()
    local.start("medscribe-dev-enc-1", local.put_media(stereo_wav()))
    queued = job_files(local)[0].read_text(encoding="utf-8")
    local.recognizer.gate.set()
    local.wait("medscribe-dev-enc-1")
    finished = job_files(local)[0].read_text(encoding="utf-8")
    for text in (queued, finished):
        assert "Jane Doe" not in text
        assert "clinic a" not in text
        assert MEDIA_KEY not in text
        assert '"MediaBucket": "media"' in text
    # the API still answers as AWS does (the key is the caller's own request)
    job = local.client.get_transcription_job(TranscriptionJobName="medscribe-dev-enc-1")["TranscriptionJob"]
    assert job["Media"]["MediaFileUri"].endswith(MEDIA_KEY)


def test_delete_removes_standard_and_medical_jobs_and_their_files(local: Local) -> None:
    uri = local.put_media(stereo_wav())
    local.start("medscribe-dev-enc-2", uri)
    local.client.start_medical_transcription_job(
        MedicalTranscriptionJobName="medscribe-med-2", LanguageCode="en-US", Media={"MediaFileUri": uri},
        OutputBucketName=local.output_bucket, Specialty="PRIMARYCARE", Type="CONVERSATION")
    local.wait("medscribe-dev-enc-2")
    local.wait("medscribe-med-2", medical=True)
    assert len(job_files(local)) == 2

    local.client.delete_transcription_job(TranscriptionJobName="medscribe-dev-enc-2")
    local.client.delete_medical_transcription_job(MedicalTranscriptionJobName="medscribe-med-2")

    assert job_files(local) == []
    for call in (lambda: local.client.get_transcription_job(TranscriptionJobName="medscribe-dev-enc-2"),
                 lambda: local.client.get_medical_transcription_job(MedicalTranscriptionJobName="medscribe-med-2"),
                 lambda: local.client.delete_transcription_job(TranscriptionJobName="medscribe-dev-enc-2")):
        code, message = error_of(call)
        assert code == "BadRequestException"
        assert "couldn't be found" in message
    assert local.client.list_transcription_jobs()["TranscriptionJobSummaries"] == []


def test_a_job_deleted_while_it_runs_writes_no_file_and_no_event(local: Local) -> None:
    local.recognizer.gate.clear()
    local.start("medscribe-dev-enc-3", local.put_media(stereo_wav()))
    time.sleep(0.3)
    local.client.delete_transcription_job(TranscriptionJobName="medscribe-dev-enc-3")
    local.recognizer.gate.set()
    deadline = time.monotonic() + 10
    while local.service.stats().running and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert job_files(local) == []
    events: list[dict[str, Any]] = local.events(expected=1, timeout=2)
    assert events == []
