"""Audio through the local Transcribe service and speech engine, inside the running pipeline: real
recordings become speaker lines, the job cap holds, a lost completion event is recovered by the
reconciler (driven by the local schedule timer), and a failed job is reported without PHI.

These tests wait for an encounter to leave transcription (TRANSCRIBED, or a later stage's status,
or FAILED), so they hold whatever the stages after transcription do.
"""

from __future__ import annotations

import io
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from medscribe.adapters import aws_clients
from medscribe.domain.encounter import Encounter, EncounterStatus
from medscribe_local.media_decoding import FORMAT_MISMATCH, SAMPLE_RATE, decode_media
from medscribe_local.uploads import Upload
from tests.e2e.conftest import SAMPLE_AUDIO, Driver, eventually, speech_wav
from tests.media import MP3

pytestmark = pytest.mark.e2e

IN_TRANSCRIPTION = frozenset({EncounterStatus.RECEIVED, EncounterStatus.TRANSCRIBING})


def transcribed(driver: Driver, *uploads: Upload, timeout: float = 60) -> list[Encounter]:
    """The encounters once each has left RECEIVED / TRANSCRIBING."""

    def probe() -> list[Encounter] | None:
        found = [driver.repository.get(u.encounter_id) for u in uploads]
        done = [e for e in found if e is not None and e.status not in IN_TRANSCRIPTION]
        return done if len(done) == len(uploads) else None

    return eventually(probe, timeout=timeout, interval=0.2)


def test_a_two_voice_recording_becomes_numbered_speaker_lines(driver: Driver) -> None:
    uploaded = driver.put(driver.unique("audio", "GAS0001.mp3"), (SAMPLE_AUDIO / "GAS0001.mp3").read_bytes())

    [encounter] = transcribed(driver, uploaded)

    assert encounter.status is not EncounterStatus.FAILED, encounter.reason
    assert encounter.job_name == f"{driver.runtime.settings.prefix}-{encounter.encounter_id}"
    assert (encounter.speakers, encounter.language_code) == (2, "en-US")
    assert encounter.line_count == 18  # the excerpt's 18 turns, each on its own channel
    assert encounter.transcript_key is not None
    lines = json.loads(driver.s3.get_object(
        Bucket=driver.resources.artifacts_bucket, Key=encounter.transcript_key)["Body"].read())
    assert lines["attribution"] == "channel-energy"
    first, second = lines["lines"][:2]
    assert (first["speaker"], second["speaker"]) == ("spk_0", "spk_1")
    assert "brings you in today" in first["text"].lower()
    job = driver.runtime.transcribe.job(encounter.job_name)
    assert job is not None
    assert (job.status, job.engine["model"]) == ("COMPLETED", "tiny.en")
    head = driver.s3.head_object(Bucket=job.output_bucket, Key=job.output_key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", driver.resources.kms_key_arn)
    saved = driver.runtime.paths.root / "transcribe" / "jobs" / f"{encounter.job_name}.json"
    assert json.loads(saved.read_text())["TranscriptionJob"]["TranscriptionJobStatus"] == "COMPLETED"


def test_running_jobs_never_exceed_the_cap(driver: Driver) -> None:
    cap = driver.runtime.settings.max_concurrent_transcriptions
    uploads = [driver.put(driver.unique("audio", f"clip-{i}.wav"), speech_wav(1.0)) for i in range(2 * cap)]

    encounters = transcribed(driver, *uploads, timeout=90)

    assert all(e.status is not EncounterStatus.FAILED for e in encounters), [e.reason for e in encounters]
    service = driver.runtime.transcribe
    assert 1 <= service.stats().max_running <= min(cap, service.workers)
    listed = aws_clients.client("transcribe").list_transcription_jobs(Status="COMPLETED", MaxResults=100)
    names = {s["TranscriptionJobName"] for s in listed["TranscriptionJobSummaries"]}
    assert {e.job_name for e in encounters} <= names  # one job per encounter, all completed


def test_a_lost_completion_event_is_recovered_by_the_reconciler(driver: Driver) -> None:
    settings = driver.runtime.settings
    lost: set[str] = set()
    driver.runtime.transcribe.drop_completion_events = lambda name: name in lost
    dropped_before = driver.runtime.transcribe.stats().events_dropped
    try:
        uploaded = driver.put(driver.unique("audio", "visit.wav"), speech_wav())
        lost.add(f"{settings.prefix}-{uploaded.encounter_id}")
        started = time.monotonic()
        [encounter] = transcribed(driver, uploaded, timeout=settings.local_stuck_after_seconds + 30)
        took = time.monotonic() - started
    finally:
        driver.runtime.transcribe.drop_completion_events = None

    assert encounter.status is not EncounterStatus.FAILED, encounter.reason
    assert encounter.line_count == 1
    assert driver.runtime.transcribe.stats().events_dropped == dropped_before + 1
    # nothing but the reconciler could have moved it, and only once it counted as stuck
    assert took >= settings.local_stuck_after_seconds
    assert driver.runtime.timers["reconcile"].sent >= 1


def test_a_failed_job_ends_failed_with_the_reason_and_a_notification_without_phi(driver: Driver) -> None:
    # The ID3 header passes ingest's checks; the frames hold no audio, so Transcribe cannot decode it.
    uploaded = driver.put(driver.unique("audio", "Jane Doe 1962-03-04 call.mp3"), MP3)

    [encounter] = transcribed(driver, uploaded)

    assert encounter.status is EncounterStatus.FAILED
    assert encounter.reason == FORMAT_MISMATCH
    [notice] = eventually(lambda: driver.outbox_files(encounter.encounter_id))
    text = notice.read_text(encoding="utf-8")
    assert "does not match the detected media format" in text
    for phi in ("Jane", "1962-03-04"):  # the whole date: "1962" alone turns up in hex ids
        assert phi not in text
        assert phi not in driver.runtime.paths.log_file.read_text(encoding="utf-8")
    job = driver.runtime.transcribe.job(encounter.job_name or "")
    assert job is not None
    assert job.failure_reason == FORMAT_MISMATCH


def test_every_sample_recording_is_transcribed_and_documented_with_its_artifacts(driver: Driver) -> None:
    uploads = [driver.put(driver.unique("audio", path.name), path.read_bytes())
               for path in sorted(SAMPLE_AUDIO.glob("*.mp3"))]
    assert len(uploads) == 3
    encounters = driver.wait(*uploads, timeout=120)
    for encounter in encounters:
        assert encounter.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW), encounter.reason
        assert encounter.artifacts is not None
        assert set(encounter.artifacts) == {"transcribe", "lines", "csv", "docx"}
        bucket = driver.resources.artifacts_bucket
        for key in [*encounter.artifacts.values(), encounter.note_key, encounter.review_key]:
            assert driver.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
        csv = driver.s3.get_object(Bucket=bucket, Key=encounter.artifacts["csv"])["Body"].read().decode()
        assert csv.splitlines()[0] == ",start_time,end_time,speaker,comment"
        note = json.loads(driver.s3.get_object(Bucket=bucket, Key=encounter.note_key)["Body"].read())
        cited = {n for section in note["sections"] for item in section["items"] for n in item["lines"]}
        assert cited
        assert cited <= {line["n"] for line in note["lines"]}


def mono_wav(path: Path) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A 16 kHz 16-bit mono WAV of a stereo recording's two channels averaged, and the two channels."""
    with path.open("rb") as handle:
        audio = decode_media(handle, None, None)
    left, right = audio.channels
    pcm = np.clip(audio.mono * 32767, -32768, 32767).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    return out.getvalue(), left, right


def test_a_mono_downmix_of_every_sample_is_diarized_into_clinician_and_patient(driver: Driver) -> None:
    """Issue 18: locally a mono recording used to be one speaker. Each sample's two voices (clinician on
    the left channel, patient on the right) mixed to mono must come back as two speakers, and every line
    of the note must carry the role of the channel that was louder while it was spoken."""
    sources = sorted(SAMPLE_AUDIO.glob("*.mp3"))
    mixes = {path.stem: mono_wav(path) for path in sources}
    uploads = {stem: driver.put(driver.unique("audio", f"{stem}-mono.wav"), wav) for stem, (wav, _, _) in mixes.items()}
    encounters = driver.wait(*uploads.values(), timeout=420)  # three ~100 s recordings, recognized and diarized
    bucket = driver.resources.artifacts_bucket
    for (stem, (_, left, right)), encounter in zip(mixes.items(), encounters, strict=True):
        assert encounter.status in (EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW), encounter.reason
        assert encounter.speakers == 2, stem
        lines = json.loads(driver.s3.get_object(Bucket=bucket, Key=encounter.transcript_key)["Body"].read())
        assert lines["attribution"] == "embedding-clustering"
        note = json.loads(driver.s3.get_object(Bucket=bucket, Key=encounter.note_key)["Body"].read())
        role_of = {line["n"]: line["role"] for line in note["lines"]}
        right_words = total_words = 0
        for line in lines["lines"]:
            a, b = int(line["start"] * SAMPLE_RATE), int(line["end"] * SAMPLE_RATE)
            expected = "clinician" if np.square(left[a:b]).sum() >= np.square(right[a:b]).sum() else "patient"
            words = len(line["text"].split())
            total_words += words
            right_words += words * (role_of[line["n"]] == expected)
        assert role_of[1] == "clinician", stem
        assert right_words / total_words >= 0.9, (stem, right_words, total_words)
