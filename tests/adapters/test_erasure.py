"""Erasure's adapters and service against moto (issue 14, item 6): every S3 version and delete marker
goes, 1,000 per DeleteObjects request; S3's per-key errors are typed; model evaluation maps forget an
encounter; score reports are rewritten without it and their older versions deleted; Transcribe jobs
of either kind are deleted and a missing one is not an error; an unknown or unfinished encounter is
refused before anything is deleted."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.erasure import DELETE_OBJECTS_MAX_KEYS, JobDeleter, ObjectVersion, ObjectVersions, TableItems
from medscribe.adapters.scores import Model, ScoreStore
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.selfheal import ModelStatus, ScoreRow, report_csv
from medscribe.services.erasure import EncounterInProgress, ErasureService, UnknownEncounter
from medscribe.settings import PipelineSettings
from tests.adapters.conftest import put

ARTIFACTS = "artifacts"


class CountingS3:
    """The real moto client, counting DeleteObjects requests and their sizes."""

    def __init__(self) -> None:
        self.client = boto3.client("s3")
        self.sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def delete_objects(self, **params: Any) -> Any:
        self.sizes.append(len(params["Delete"]["Objects"]))
        return self.client.delete_objects(**params)


def test_every_version_and_delete_marker_goes_in_requests_of_at_most_1000(bucket: str) -> None:
    s3 = boto3.client("s3")
    for n in range(1100):
        s3.put_object(Bucket=bucket, Key="audio/a.wav", Body=str(n).encode())
    s3.delete_object(Bucket=bucket, Key="audio/a.wav")  # a delete marker
    put(bucket, "audio/a.wav.bak", b"a longer key: not the same object")
    counting = CountingS3()
    versions = ObjectVersions(counting)

    found = versions.under(bucket, "audio/a.wav", exact=True)
    assert len(found) == 1101
    assert sum(v.delete_marker for v in found) == 1
    assert versions.delete(bucket, found) == 1101

    assert counting.sizes == [DELETE_OBJECTS_MAX_KEYS, 101]
    left = s3.list_object_versions(Bucket=bucket, Prefix="audio/")
    assert [v["Key"] for v in left.get("Versions", [])] == ["audio/a.wav.bak"]
    assert left.get("DeleteMarkers", []) == []


@pytest.mark.parametrize(("code", "error"), [("SlowDown", TransientError), ("AccessDenied", PermanentError)])
def test_versions_s3_did_not_delete_raise_typed_errors(code: str, error: type[Exception]) -> None:
    class Refusing:
        def delete_objects(self, **params: Any) -> dict[str, Any]:
            return {"Errors": [{"Key": "k", "VersionId": "v", "Code": code, "Message": "no"}]}

    with pytest.raises(error):
        ObjectVersions(Refusing()).delete("b", [ObjectVersion("k", "v")])


def test_models_forget_an_encounters_evaluation_and_keep_the_others(table: str) -> None:
    store = ScoreStore(table)
    for name in ("m1", "m2"):
        store.put_model(Model(name=name, status=ModelStatus.EVALUATING, language="en-US"))
    store.update_model("m1", ModelStatus.EVALUATING, evaluations={"enc-a": "job-a", "enc-b": "job-b"})
    store.update_model("m2", ModelStatus.EVALUATING, evaluations={"enc-b": "job-b2"})

    assert store.forget_evaluations("enc-a") == 1
    assert store.forget_evaluations("enc-a") == 0
    assert {m.name: m.evaluations for m in store.models()} == {"m1": {"enc-b": "job-b"}, "m2": {"enc-b": "job-b2"}}


class FakeTranscribe:
    """Knows some jobs by kind; answers like Transcribe for the others."""

    def __init__(self, standard: set[str], medical: set[str]) -> None:
        self.jobs = {False: standard, True: medical}
        self.calls: list[tuple[bool, str]] = []

    def _delete(self, medical: bool, name: str) -> dict[str, Any]:
        self.calls.append((medical, name))
        if name not in self.jobs[medical]:
            raise ClientError({"Error": {"Code": "BadRequestException", "Message": "The requested job couldn't be "
                                         "found. Check the job name and try your request again."}}, "Delete")
        self.jobs[medical].discard(name)
        return {}

    def delete_transcription_job(self, TranscriptionJobName: str) -> dict[str, Any]:
        return self._delete(False, TranscriptionJobName)

    def delete_medical_transcription_job(self, MedicalTranscriptionJobName: str) -> dict[str, Any]:
        return self._delete(True, MedicalTranscriptionJobName)


def test_jobs_of_either_kind_are_deleted_and_a_missing_one_is_not_an_error() -> None:
    fake = FakeTranscribe({"std"}, {"med"})
    deleter = JobDeleter(fake, medical_first=True)
    assert (deleter.delete("med"), deleter.delete("std"), deleter.delete("gone")) == (True, True, False)
    assert fake.calls[:3] == [(True, "med"), (True, "std"), (False, "std")]


# --- the service ---------------------------------------------------------------------------------


def encounter(bucket: str, table: str, key: str, kind: Kind, status: EncounterStatus, body: bytes = b"x") -> str:
    response = put(bucket, key, body)
    ref = ObjectRef(bucket=bucket, key=key, size=len(body), version_id=response["VersionId"])
    EncounterRepository(table).create(Encounter.from_ref(ref, kind, status))
    return ref.encounter_id


def service(table: str, bucket: str, jobs: FakeTranscribe | None = None) -> ErasureService:
    boto3.client("s3").create_bucket(Bucket=ARTIFACTS)
    boto3.client("s3").put_bucket_versioning(Bucket=ARTIFACTS, VersioningConfiguration={"Status": "Enabled"})
    return ErasureService(EncounterRepository(table), ScoreStore(table), TableItems(table), ObjectVersions(),
                          JobDeleter(jobs or FakeTranscribe(set(), set())), None, ArtifactStore(ARTIFACTS, None),
                          input_bucket=bucket)


def score_row(encounter_id: str) -> ScoreRow:
    return ScoreRow(encounter_id=encounter_id, model="baseline", metric="wer", error_rate=0.2, wer=0.2, mer=0.2,
                    substitutions=1, deletions=1, insertions=0, hits=8, reference_words=10,
                    timestamp="2026-12-03T00:00:00.000Z")


def test_unknown_and_unfinished_encounters_are_refused_before_anything_is_deleted(table: str, bucket: str) -> None:
    erasure = service(table, bucket)
    with pytest.raises(UnknownEncounter):
        erasure.erase("enc-nope", date(2026, 12, 3), PipelineSettings())
    running = encounter(bucket, table, "audio/x/visit.wav", Kind.AUDIO, EncounterStatus.TRANSCRIBING)
    truth = encounter(bucket, table, "ground-truth/x/visit.txt", Kind.GROUND_TRUTH, EncounterStatus.RECEIVED)
    with pytest.raises(EncounterInProgress, match=running):
        erasure.erase(truth, date(2026, 12, 3), PipelineSettings())  # its recording is still transcribing
    assert EncounterRepository(table).get(truth) is not None
    assert len(boto3.client("s3").list_object_versions(Bucket=bucket)["Versions"]) == 2


def test_score_reports_are_rewritten_without_the_erased_rows_and_older_versions_go(table: str, bucket: str) -> None:
    jobs = FakeTranscribe({"medscribe-dev-job"}, set())
    erasure = service(table, bucket, jobs)
    erased = encounter(bucket, table, "text/x/note.txt", Kind.TEXT, EncounterStatus.DOCUMENTED)
    EncounterRepository(table).transition(erased, EncounterStatus.DOCUMENTED, EncounterStatus.DOCUMENTED,
                                          job_name="medscribe-dev-job")
    s3 = boto3.client("s3")
    report = "reports/scores/20261203T000000000Z.csv"
    s3.put_object(Bucket=ARTIFACTS, Key=report, Body=report_csv([score_row("enc-kept")]).encode())
    s3.put_object(Bucket=ARTIFACTS, Key=report, Body=report_csv([score_row(erased), score_row("enc-kept")]).encode())
    other = "reports/scores/20261202T000000000Z.csv"
    s3.put_object(Bucket=ARTIFACTS, Key=other, Body=report_csv([score_row("enc-kept")]).encode())
    s3.put_object(Bucket=ARTIFACTS, Key=f"notes/{erased}/emr.json", Body=b"{}")
    s3.put_object(Bucket=ARTIFACTS, Key=f"entities/{erased}.json", Body=b"{}")  # the entities stage's
    s3.put_object(Bucket=ARTIFACTS, Key="entities/enc-kept.json", Body=b"{}")

    result = erasure.erase(erased, date(2026, 12, 3), PipelineSettings())

    assert result.deleted["score reports rewritten"] == 1
    versions = s3.list_object_versions(Bucket=ARTIFACTS, Prefix="reports/")["Versions"]
    assert sorted(v["Key"] for v in versions) == [other, report]  # one version each
    rows = list(csv.DictReader(io.StringIO(s3.get_object(Bucket=ARTIFACTS, Key=report)["Body"].read().decode())))
    assert [row["EncounterId"] for row in rows] == ["enc-kept"]
    assert result.deleted["artifact object versions"] == 2  # the EMR record and the entities
    assert [v["Key"] for v in s3.list_object_versions(Bucket=ARTIFACTS, Prefix="entities/")["Versions"]] == [
        "entities/enc-kept.json"]
    assert result.deleted["transcription jobs"] == 1
    assert result.deleted["input object versions"] == 1
    assert result.deleted["table items"] == 1
    assert jobs.jobs[False] == set()
    assert [a.store for a in result.ages_out if a.gone_by is None] == ["emails already sent (SNS)"]


def test_a_job_transcribe_refuses_to_delete_for_another_reason_is_an_error() -> None:
    class Busy(FakeTranscribe):
        def _delete(self, medical: bool, name: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "BadRequestException",
                                         "Message": "The job is in progress."}}, "Delete")

    with pytest.raises(PermanentError):
        JobDeleter(Busy(set(), set())).delete("running")


def test_an_erasure_cut_short_is_finished_by_running_it_again(table: str, bucket: str) -> None:
    erasure = service(table, bucket)
    audio = encounter(bucket, table, "audio/y/visit.wav", Kind.AUDIO, EncounterStatus.DOCUMENTED)
    truth = encounter(bucket, table, "ground-truth/y/visit.txt", Kind.GROUND_TRUTH, EncounterStatus.RECEIVED)
    boto3.client("s3").put_object(Bucket=ARTIFACTS, Key=f"notes/{audio}/note.json", Body=b"{}")

    class SlowDownOnInputs(CountingS3):
        def delete_objects(self, **params: Any) -> Any:
            if params["Bucket"] == bucket:
                return {"Errors": [{"Key": "k", "Code": "SlowDown", "Message": "slow down"}]}
            return super().delete_objects(**params)

    erasure.versions = ObjectVersions(SlowDownOnInputs())
    with pytest.raises(TransientError):
        erasure.erase(audio, date(2026, 12, 3), PipelineSettings())
    assert EncounterRepository(table).get(audio) is not None  # the record stays: the erasure can be found again

    erasure.versions = ObjectVersions()
    again = erasure.erase(audio, date(2026, 12, 3), PipelineSettings())
    assert sorted(again.erased) == sorted([audio, truth])
    assert [EncounterRepository(table).get(i) for i in (audio, truth)] == [None, None]
    assert boto3.client("s3").list_object_versions(Bucket=bucket).get("Versions", []) == []
