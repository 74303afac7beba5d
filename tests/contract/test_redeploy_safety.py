"""A failed first deploy can be retried: nothing with a fixed physical name survives a create rollback.

When a stack's creation fails, CloudFormation rolls back by deleting what it created, except
resources whose DeletionPolicy is `Retain`. A retained resource with a fixed name (a log group
`/aws/lambda/<prefix>-ingest`, the domain `<prefix>`...) then makes the retry fail with "already
exists". `RetainExceptOnCreate` (CDK: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE) deletes on a create
rollback and retains on stack deletion and replacement. docs/operations.md describes deleting a
stage and deploying it again, and retrying a failed first deploy.

A fixed physical name: a top-level property whose name ends in `Name` (LogGroupName, DomainName,
BackupVaultName, BucketName, TableName, FunctionName, QueueName, TopicName, RoleName, ...) and whose
value is known before deployment: a literal, or a join / Fn::Sub / Fn::Select / Fn::Split of literals
and pseudo parameters (AWS::Region, AWS::AccountId, AWS::StackName, ...), never a reference to another
resource. `AWS::StackId` is the exception: its GUID is new for every stack CloudFormation creates, so a
name built from it (stacks.security.deployment_id) is new when a deleted stage is deployed again.

A stage deleted and deployed again (RELIABILITY.md): what a deletion keeps (DeletionPolicy Retain or
RetainExceptOnCreate: the data stores, log groups, search domain and backup vault hold PHI or its
audit trail) must not have a fixed name, or the new stack's create fails on its own leftovers.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import synth  # noqa: F401  (the fixture)
from tests.infra.helpers import Synth

pytestmark = pytest.mark.infra

# Properties ending in "Name" that name no resource of their own (an SNS display name, an alarm's metric).
NOT_PHYSICAL_NAMES = frozenset({"DisplayName", "MetricName"})
PER_STACK = "AWS::StackId"  # new for every stack created: a name built from it is never reused


def fixed(value: Any) -> bool:
    """Whether a template value is known before deployment (no resource attribute or reference in it)."""
    if isinstance(value, str):
        return True
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Ref":
            return str(argument).startswith("AWS::") and argument != PER_STACK
        if function == "Fn::Select":
            return fixed(argument[1])
        if function == "Fn::Split":
            return fixed(argument[1])
        if function == "Fn::Join":
            return all(fixed(part) for part in argument[1])
        if function == "Fn::Sub":
            template, variables = (argument, {}) if isinstance(argument, str) else argument
            return not variables and all(name.startswith("AWS::") and name != PER_STACK
                                         for name in _sub_names(template))
    return False


def _sub_names(template: str) -> list[str]:
    names, rest = [], template
    while "${" in rest:
        rest = rest.split("${", 1)[1]
        name, rest = rest.split("}", 1)
        if not name.startswith("!"):  # ${!Literal} is an escaped literal
            names.append(name)
    return names


def fixed_names(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in resource.get("Properties", {}).items()
        if key.endswith("Name") and key not in NOT_PHYSICAL_NAMES and fixed(value)
    }


def test_the_fixed_name_reader() -> None:
    assert fixed("medscribe-dev")
    assert fixed({"Fn::Join": ["", ["/aws/lambda/", {"Ref": "AWS::StackName"}, "-ingest"]]})
    assert fixed({"Fn::Sub": "medscribe-${AWS::Region}-${!Literal}"})
    assert not fixed({"Ref": "Bucket83908E77"})
    assert not fixed({"Fn::Join": ["", [{"Ref": "Bucket83908E77"}, "-copy"]]})
    assert not fixed({"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Bucket83908E77"}}]})
    assert not fixed({"Fn::GetAtt": ["Bucket83908E77", "Arn"]})
    per_stack = {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": PER_STACK}]}]}]}]}
    assert not fixed({"Fn::Join": ["", ["/aws/lambda/medscribe-dev-ingest-", per_stack]]})
    assert fixed({"Fn::Select": [0, {"Fn::Split": ["-", "a-b"]}]})


def test_nothing_with_a_fixed_name_is_retained_by_a_create_rollback(synth: Synth) -> None:  # noqa: F811
    named = {logical_id: resource for logical_id, resource in synth.template["Resources"].items()
             if fixed_names(resource)}
    types = {resource["Type"] for resource in named.values()}
    assert {"AWS::Lambda::Function", "AWS::SQS::Queue"} <= types  # the reader finds what it must
    retained = sorted(f"{logical_id} ({resource['Type']}: {fixed_names(resource)})"
                      for logical_id, resource in named.items() if resource.get("DeletionPolicy") == "Retain")
    assert not retained, "kept by a create rollback, so a retry fails with 'already exists'"


def test_stores_are_still_retained_on_stack_deletion_and_replacement(synth: Synth) -> None:  # noqa: F811
    stores = {"AWS::Logs::LogGroup", "AWS::OpenSearchService::Domain", "AWS::Backup::BackupVault"}
    found = {logical_id: resource for logical_id, resource in synth.template["Resources"].items()
             if resource["Type"] in stores}
    # a log group per function, three for the domain, the domain, the vault, the workspace API's access logs
    assert len(found) == len(synth.stack.functions) + 3 + 1 + 1 + (1 if synth.stack.workspace else 0)
    for logical_id, resource in found.items():
        assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", logical_id
        assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_a_stage_deleted_and_deployed_again_meets_none_of_its_leftovers(synth: Synth) -> None:  # noqa: F811
    kept = {logical_id: resource for logical_id, resource in synth.template["Resources"].items()
            if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")}
    assert {"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Logs::LogGroup",
            "AWS::OpenSearchService::Domain", "AWS::Backup::BackupVault",
            "AWS::Cognito::UserPool"} <= {r["Type"] for r in kept.values()}
    reused = sorted(f"{logical_id} ({resource['Type']}: {fixed_names(resource)})"
                    for logical_id, resource in kept.items() if fixed_names(resource))
    assert not reused, "kept after the stack is deleted under a name the next stack of this stage would reuse"
