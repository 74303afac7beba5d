"""`medscribe reprocess --aws` is an operator action (the operator's credentials; no function runs it), so its
calls are checked against the operator policy the README lists (`services.reprocess.OPERATOR_ACTIONS`), as
erasure's are (tests/contract/test_erasure_operator.py): a re-run over signed clinician work with
`--discard-edits` in moto, a copy that loses the race to a save included, is recorded; every call maps to
the IAM actions it needs, each listed and a real IAM action (parliament's database), and every DynamoDB
request meets DynamoDB's request rules (tests/contract/dynamodb_rules.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from medscribe.adapters import aws_clients
from medscribe.domain.audit import AuditEvent
from medscribe.domain.encounter import utc_now
from medscribe.domain.note_versions import VersionState
from medscribe.services.reprocess import OPERATOR_ACTIONS
from tests.adapters.conftest import aws, bucket, table  # noqa: F401  (fixtures)
from tests.contract.dynamodb_rules import dynamodb_problems
from tests.contract.iam import action
from tests.handlers.conftest import load_handler, world  # noqa: F401  (fixtures)
from tests.handlers.test_reprocess import ALICE, OPERATOR, reprocessor, signed_edit  # noqa: F401  (fixture)

TRANSACT_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                    "ConditionCheck": "dynamodb:ConditionCheckItem"}
S3_ACTIONS = {"GetObject": "s3:GetObject", "PutObject": "s3:PutObject"}


def iam_actions(service_name: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one call needs (the KMS ones S3 asks for on the caller's behalf included)."""
    if service_name == "dynamodb" and operation == "TransactWriteItems":
        return {TRANSACT_ACTIONS[kind] for item in params["TransactItems"] for kind in item}
    if service_name == "s3" and operation == "DeleteObject":
        return {"s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"}
    if service_name == "s3":
        return {S3_ACTIONS[operation], "kms:Decrypt" if operation == "GetObject" else "kms:GenerateDataKey"}
    return {f"{service_name}:{operation}"}


@pytest.fixture
def recorded(world: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:  # noqa: F811
    boto3.client("s3").put_bucket_versioning(Bucket="artifacts", VersioningConfiguration={"Status": "Enabled"})
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for name in ("s3", "dynamodb", "events"):
        aws_clients.client(name).meta.events.register(
            "provide-client-params.*.*",
            lambda params, model, _name=name, **_: calls.append((_name, model.name, json.loads(json.dumps(params,
                                                                                                     default=str)))))
    return calls


def test_every_call_of_a_rerun_over_clinician_work_is_in_the_operator_policy(  # type: ignore[no-untyped-def]
    world, signed_edit, recorded,  # noqa: F811
) -> None:
    service = reprocessor(world)
    real_supersede = service.notes.supersede
    attempts: list[bool] = []

    def supersede_after_a_save(*args: Any) -> bool:
        if not attempts:  # an amendment that passed the workspace's check before the restart lands now
            signed = service.notes.version(signed_edit, 1)
            assert signed is not None
            amendment = replace(signed, version=2, base_version=1, state=VersionState.DRAFT, signed_by=None,
                                signed_role=None, signed_at=None, amended=True)
            event = AuditEvent(at=utc_now(), event_id="a" * 16, actor_id=ALICE.actor_id, role=ALICE.role,
                               action="amend", encounter_id=signed_edit, version=2)
            assert service.notes.add_version(amendment, event, amending=True)
        attempts.append(True)
        return bool(real_supersede(*args))

    service.notes.supersede = supersede_after_a_save  # type: ignore[method-assign]
    recorded.clear()  # the setup's own calls
    service.reprocess(signed_edit, OPERATOR, discard_edits=True)
    assert len(attempts) == 2  # the first transaction lost to the amendment; the second superseded it
    versions = service.notes.versions(signed_edit)
    assert [(v.version, v.actor_id) for v in versions][-2:] == [(2, ALICE.actor_id), (3, "pipeline")]
    needed = {name for service_name, operation, params in recorded
              for name in iam_actions(service_name, operation, params)}
    assert {"dynamodb:UpdateItem", "dynamodb:PutItem", "s3:PutObject", "s3:DeleteObjectVersion",
            "events:PutEvents"} <= needed
    assert needed - OPERATOR_ACTIONS == set()
    assert [name for name in OPERATOR_ACTIONS if action(name) is None] == []
    problems = {p for service_name, operation, params in recorded if service_name == "dynamodb"
                for p in dynamodb_problems(operation, params)}
    assert not problems, "\n".join(sorted(problems))
