"""The workspace service's AWS calls against AWS's rules, recorded here, in moto, over a whole session of
the service (list, view, edit, a lost save, sign, amend, audit queries, CSV, erase), beside what the workspace handler
makes in tests/handlers/test_workspace_handler.py (checked by test_iam_coverage, erasure and search
included), and:
- each call maps to IAM requests in the synthesized stack's terms (tests/contract/authorizations.py,
  the same mapping the handlers' calls get), every action a real IAM action authorized on the
  resource named, and all of them in `WORKSPACE_ACTIONS` (erasure's in `OPERATOR_ACTIONS`);
- when the synthesized stack has a `workspace` function, its role allows every call;
- every DynamoDB request, the workspace's and every one the handler and e2e tiers recorded, meets
  DynamoDB's documented request rules (tests/contract/dynamodb_rules.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.workspace_store import NoteHead
from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.note_writing import write_note
from medscribe.domain.transcript_lines import lines_from_json
from medscribe.services.erasure import OPERATOR_ACTIONS
from medscribe.services.wiring import workspace_service
from medscribe.services.workspace import WORKSPACE_ACTIONS, Actor, StaleVersion
from medscribe.settings import FunctionSettings, PipelineSettings
from tests.adapters.conftest import aws, bucket, table  # noqa: F401  (fixtures)
from tests.contract import iam
from tests.contract.authorizations import requirements
from tests.contract.conftest import Recordings
from tests.contract.dynamodb_rules import MAX_TRANSACTION_ACTIONS, dynamodb_problems
from tests.contract.recorder import Call, Names
from tests.contract.stack import RenderedStack
from tests.contract.test_erasure_operator import iam_action
from tests.contract.test_iam_coverage import check
from tests.handlers.test_document import fareez_lines, transcribed_encounter

KEY = "arn:aws:kms:us-east-1:123456789012:key/k"
CLINICIAN = Actor("local-alice", "clinician")
ADMIN = Actor("local-admin", "admin")


@dataclass
class Session:
    calls: list[Call]
    erase_from: int  # the index of erasure's first call


def _names(table_name: str, input_bucket: str) -> Names:
    return Names(table=table_name, input_bucket=input_bucket, artifacts_bucket="artifacts", topic_arn=None,
                 kms_key_arn=KEY, clm_role_arn=None, prefix=PipelineSettings().prefix)


@pytest.fixture
def session(table: str, bucket: str) -> Session:  # noqa: F811
    boto3.client("s3").create_bucket(Bucket="artifacts")
    # versioned, as the stack's buckets are: a lost save deletes its object by version id
    boto3.client("s3").put_bucket_versioning(Bucket="artifacts", VersioningConfiguration={"Status": "Enabled"})
    world = {"table": table, "bucket": bucket}
    encounter_id = transcribed_encounter(world, fareez_lines(count=12))
    lines = lines_from_json({"lines": fareez_lines(count=12)})
    note_key = f"notes/{encounter_id}/note.json"
    note = write_note(lines, template="hp", engine=None).to_dict()
    boto3.client("s3").put_object(Bucket="artifacts", Key=note_key, Body=json.dumps(note).encode())
    EncounterRepository(table).transition(encounter_id, EncounterStatus.TRANSCRIBED, EncounterStatus.DOCUMENTED,
                                          note_key=note_key)
    workspace = workspace_service(FunctionSettings(
        table_name=table, input_bucket=bucket, artifacts_bucket="artifacts", topic_arn="arn:aws:sns:us-east-1:1:t",
        kms_key_arn=KEY, pipeline=PipelineSettings(), search_url=None))
    names = _names(table, bucket)
    calls: list[Call] = []

    def before(params: dict[str, Any], model: Any, _service: str, **_: Any) -> None:
        calls.append(Call("workspace", "handler", _service, model.name, json.loads(json.dumps(params, default=str)),
                          names, None))

    def after(parsed: dict[str, Any], **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code")
        if code and calls:
            calls[-1].error = str(code)

    for service_name in ("s3", "dynamodb"):
        client = aws_clients.client(service_name)
        client.meta.events.register("provide-client-params.*.*",
                                    lambda params, model, _s=service_name, **kw: before(params, model, _s, **kw))
        client.meta.events.register("after-call.*.*", after)
    workspace.list_encounters(CLINICIAN, limit=5)
    view = workspace.encounter(CLINICIAN, encounter_id)
    sections = view["note"]["sections"]
    sections[0]["items"].append({"text": "Chest pain", "lines": [1]})
    workspace.save_note(CLINICIAN, encounter_id, base_version=0, note={"sections": sections})
    # a save that read the head before the one above won: its transaction loses and its object is deleted
    real_head = workspace.store.head
    workspace.store.head = lambda _id: NoteHead()  # type: ignore[method-assign]
    with pytest.raises(StaleVersion):
        workspace.save_note(CLINICIAN, encounter_id, base_version=0, note={"sections": sections})
    workspace.store.head = real_head  # type: ignore[method-assign]
    workspace.sign(CLINICIAN, encounter_id, version=1)
    workspace.save_note(CLINICIAN, encounter_id, base_version=1, note={"sections": sections}, amend_reason="typo")
    workspace.signed_note(encounter_id)
    workspace.export_fhir(CLINICIAN, encounter_id)  # the FHIR export: notes, versions, entities/<id>.json, audit
    workspace.record(CLINICIAN, "export", encounter_id, 1)
    workspace.audit_for_encounter(CLINICIAN, encounter_id)
    workspace.audit(ADMIN, actor_id="local-alice", since="2020-01-01")
    workspace.audit_csv(ADMIN, since="2026-01-01")
    erase_from = len(calls)
    workspace.erase(ADMIN, encounter_id)
    return Session(calls, erase_from)


def test_every_workspace_call_needs_only_real_actions_it_declares(session: Session, stack: RenderedStack) -> None:
    needed: set[str] = set()
    for call in session.calls[:session.erase_from]:
        for requirement in requirements(call, stack):
            request = requirement.request
            action = iam.action(request.action)
            assert action is not None, f"{call.service}.{call.operation}: IAM has no action {request.action}"
            assert action.supports(request.resource), f"{request.action} is not authorized on {request.resource}"
            needed.add(request.action)
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "s3:PutObject",
            "s3:DeleteObjectVersion"} <= needed
    assert needed - WORKSPACE_ACTIONS == set()
    # erasure (an operator action until now) is mapped as tests/contract/test_erasure_operator.py maps it
    # (its audit events are the workspace's own transactions, mapped as above)
    erasing = {requirement.request.action if c.operation == "TransactWriteItems" else iam_action(c.service,
                                                                                              c.operation, c.params)
               for c in session.calls[session.erase_from:] for requirement in requirements(c, stack)[:1]}
    assert "s3:DeleteObjectVersion" in erasing
    assert erasing - OPERATOR_ACTIONS - WORKSPACE_ACTIONS == set()
    assert [name for name in WORKSPACE_ACTIONS if iam.action(name) is None] == []
    transactions = [c for c in session.calls if c.operation == "TransactWriteItems"]
    assert transactions
    assert all(c.params["TransactItems"] for c in transactions)


def test_the_workspace_functions_role_allows_every_call(session: Session, stack: RenderedStack) -> None:
    if "workspace" not in {p.name for p in stack.principals() if p.kind == "function"}:
        pytest.skip("the synthesized stack has no workspace function yet (stacks/workspace.py)")
    denials, _ = check(session.calls[:session.erase_from], stack.principal("function", "workspace"), stack)
    assert not denials, "\n".join(map(str, denials))


def test_every_dynamodb_request_meets_dynamodb_rules(session: Session, recordings: Recordings) -> None:
    calls = [c for c in [*session.calls, *recordings.calls] if c.service == "dynamodb"]
    assert any(c.function == "workspace" for c in calls)
    assert any(c.function != "workspace" for c in calls)
    problems = {f"{c.function}: {p}" for c in calls for p in dynamodb_problems(c.operation, c.params)}
    assert not problems, "\n".join(sorted(problems))


@pytest.mark.parametrize(("operation", "params", "expected"), [
    ("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}}] * 2},
     "a second action on the same item"),
    ("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "t", "Item": {"pk": {"S": str(n)}}}}
                                              for n in range(MAX_TRANSACTION_ACTIONS + 1)]}, "at most 100"),
    ("Query", {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "a"},
                                                                                   ":unused": {"S": "b"}}},
     ":unused is given but used in no expression"),
    ("PutItem", {"Item": {"pk": {"S": "x" * 2049}, "sk": {"S": "a"}}}, "partition key pk over 2048 bytes"),
    ("GetItem", {"Key": {"pk": {"S": "a"}, "sk": {"S": "é" * 513}}}, "sort key sk over 1024 bytes"),
    ("Query", {"Limit": 0}, "Limit must be at least 1"),
])
def test_the_rules_catch_what_dynamodb_rejects(operation: str, params: dict[str, Any], expected: str) -> None:
    assert any(expected in problem for problem in dynamodb_problems(operation, params))
