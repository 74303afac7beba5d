"""Erasure is an operator action (`medscribe erase --aws`, the operator's credentials; no function runs
it), so its calls are checked against the operator policy the README lists (`OPERATOR_ACTIONS`)
rather than a synthesized role: an erasure in moto is recorded, every call is mapped to the IAM action
it needs, and each must be listed and be a real IAM action (parliament's database). Its Transcribe
requests meet the service's request rules (medscribe_local.service_rules), for every job name the
pipeline gives (transcription and self-heal evaluation jobs), and the rule catches a bad name."""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3
import pytest

from medscribe.adapters import aws_clients
from medscribe.domain.encounter import EncounterStatus, Kind
from medscribe.domain.selfheal import eval_job_name
from medscribe.domain.transcribe_naming import job_name
from medscribe.services.erasure import OPERATOR_ACTIONS
from medscribe.settings import PipelineSettings
from medscribe_local.service_rules import transcribe_problems
from tests.adapters.conftest import aws, bucket, table  # noqa: F401  (fixtures)
from tests.adapters.test_erasure import ARTIFACTS, FakeTranscribe, encounter, service
from tests.contract.iam import action

S3_ACTIONS = {"ListObjectVersions": "s3:ListBucketVersions", "PutObject": "s3:PutObject",
              "DeleteObjects": "s3:DeleteObjectVersion"}  # DeleteObjects by version id: per-object permission


def iam_action(service_name: str, operation: str, params: dict[str, Any]) -> str:
    if service_name == "s3" and operation in ("GetObject", "HeadObject"):  # HeadObject: the read permission
        return "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    if service_name == "s3":
        return S3_ACTIONS[operation]
    return f"{service_name}:{operation}"


@pytest.fixture
def recorded(aws: None) -> list[tuple[str, str, dict[str, Any]]]:  # noqa: F811
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for name in ("s3", "dynamodb"):
        client = aws_clients.client(name)
        client.meta.events.register(
            "provide-client-params.*.*",
            lambda params, model, _name=name, **_: calls.append((_name, model.name, dict(params))))
    return calls


def test_every_call_an_erasure_makes_is_in_the_operator_policy(
    table: str, bucket: str, recorded: list[tuple[str, str, dict[str, Any]]],  # noqa: F811
) -> None:
    jobs = FakeTranscribe({"medscribe-dev-job"}, set())
    erasure = service(table, bucket, jobs)
    erased = encounter(bucket, table, "audio/x/visit.wav", Kind.AUDIO, EncounterStatus.NEEDS_REVIEW)
    encounter(bucket, table, "ground-truth/x/visit.txt", Kind.GROUND_TRUTH, EncounterStatus.RECEIVED)
    boto3.client("s3").put_object(Bucket=ARTIFACTS, Key="reports/scores/1.csv", Body=f"Filename\n{erased}\n".encode())
    recorded.clear()  # the setup's own calls
    erasure.erase(erased, date(2026, 12, 3), PipelineSettings())

    needed = {iam_action(service_name, operation, params) for service_name, operation, params in recorded}
    needed |= {f"transcribe:{'DeleteMedicalTranscriptionJob' if medical else 'DeleteTranscriptionJob'}"
               for medical, _name in jobs.calls}
    assert {"s3:DeleteObjectVersion", "s3:ListBucketVersions", "dynamodb:DeleteItem", "s3:PutObject"} <= needed
    assert needed - OPERATOR_ACTIONS == set()
    assert [name for name in OPERATOR_ACTIONS if action(name) is None] == []


@pytest.mark.parametrize("medical", [False, True])
def test_every_job_deletion_meets_transcribe_rules(medical: bool) -> None:
    operation = "DeleteMedicalTranscriptionJob" if medical else "DeleteTranscriptionJob"
    member = "MedicalTranscriptionJobName" if medical else "TranscriptionJobName"
    prefix = PipelineSettings().prefix
    encounter_id = "enc-" + "f" * 32
    for name in (job_name(prefix, encounter_id), eval_job_name(prefix, f"{prefix}-sh-abc", encounter_id)):
        assert transcribe_problems(operation, {member: name}) == []
    assert transcribe_problems(operation, {member: "a name/with a slash"}) != []
