"""Grants of the newer access kinds: read-only table and artifacts, EventBridge PutEvents, Bedrock invoke."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_cdk import App, Stack

from medscribe.adapters import events as pipeline_events
from medscribe.routes import READY_FOR_DOCUMENTATION_PATTERN, Access, Endpoint, Route
from stacks.grants import (
    BEDROCK_INVOKE_ACTIONS,
    OBJECT_READ_ACTIONS,
    PIPELINE_EVENT_SOURCE,
    TABLE_INDEX_ACTIONS,
    TABLE_READ_ACTIONS,
    TABLE_READ_WRITE_ACTIONS,
    bedrock_model_ids,
    bedrock_statements,
    effective_access,
    split_inference_profile,
)
from tests.infra.helpers import Synth, as_list, render

pytestmark = pytest.mark.infra

ROUTE_FIXTURES = ["synth", "probe"]
PARTITION, REGION, ACCOUNT = "${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}"


def policy_of(synth: Synth, name: str) -> list[dict[str, Any]]:
    """A function's role policy statements with intrinsics rendered as strings."""
    policy = synth.stack.functions[name].role.node.find_child("DefaultPolicy").node.find_child("Resource")
    logical_id = str(synth.stack.resolve(policy.logical_id))  # type: ignore[attr-defined]
    document = synth.template["Resources"][logical_id]["Properties"]["PolicyDocument"]
    return [render(statement) for statement in as_list(document["Statement"])]


def arn_of(synth: Synth, construct: Any) -> str:
    return "${" + str(synth.stack.resolve(construct.node.default_child.logical_id)) + ".Arn}"


def granted(policy: list[dict[str, Any]], prefix: str) -> set[str]:
    return {action for s in policy for action in as_list(s["Action"]) if action.startswith(prefix)}


def with_action(policy: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in policy if action in as_list(s["Action"])]


def test_endpoints_use_the_default_requirements_file_of_routes() -> None:
    defaults = {f.default for kind in (Route, Endpoint) for f in dataclasses.fields(kind) if f.name == "requirements"}
    assert defaults == {"layers/deps/requirements.txt"}


def test_read_only_access_is_dropped_where_read_write_covers_it() -> None:
    both = frozenset({Access.TABLE_READ, Access.TABLE_READ_WRITE, Access.ARTIFACTS_READ, Access.ARTIFACTS_READ_WRITE})
    assert effective_access(both) == {Access.TABLE_READ_WRITE, Access.ARTIFACTS_READ_WRITE}
    assert effective_access(frozenset({Access.TABLE_READ})) == {Access.TABLE_READ}


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_table_access_is_read_only_unless_read_write_is_declared(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    table = arn_of(synth, synth.stack.storage.table)
    for name, function in synth.stack.functions.items():
        policy = policy_of(synth, name)
        on_table = [s for s in policy if table in as_list(s["Resource"])]
        indexes = [f"{table}/index/{i}" for i in ("by-day", "by-folder", "by-status")]
        on_indexes = [s for s in policy if set(indexes) & set(as_list(s["Resource"]))]
        if Access.TABLE_READ_WRITE in function.access:
            (statement,) = on_table
            assert sorted(as_list(statement["Action"])) == TABLE_READ_WRITE_ACTIONS, name
        elif Access.TABLE_READ in function.access:
            (statement,) = on_table
            assert sorted(as_list(statement["Action"])) == TABLE_READ_ACTIONS, name
        else:
            assert not on_table, name
            assert not on_indexes, name
            continue
        # item actions on the table only; the indexes get the two actions IAM authorizes on them
        assert as_list(statement["Resource"]) == [table], name
        (index_statement,) = on_indexes
        assert sorted(as_list(index_statement["Action"])) == TABLE_INDEX_ACTIONS, name
        assert index_statement["Resource"] == indexes, name


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_artifacts_read_grants_no_write(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    bucket = arn_of(synth, synth.stack.storage.artifacts_bucket)
    readers = [name for name, f in synth.stack.functions.items() if Access.ARTIFACTS_READ in f.access]
    assert readers
    for name in readers:
        policy = policy_of(synth, name)
        on_objects = [s for s in policy if f"{bucket}/*" in as_list(s["Resource"])]
        assert [sorted(as_list(s["Action"])) for s in on_objects] == [OBJECT_READ_ACTIONS], name
        if Access.TRANSCRIBE_START not in synth.stack.functions[name].access:
            assert not granted(policy, "s3:Put"), name


def test_ask_reads_and_never_writes(synth: Synth) -> None:
    policy = policy_of(synth, "ask")
    assert granted(policy, "dynamodb:") == set(TABLE_READ_ACTIONS)
    assert granted(policy, "s3:") == {"s3:ListBucket", *OBJECT_READ_ACTIONS}
    assert granted(policy, "kms:") == {"kms:Decrypt"}
    for prefix in ("sns:", "sqs:", "events:", "transcribe:"):
        assert not granted(policy, prefix), prefix
    assert granted(policy, "bedrock:") == set(BEDROCK_INVOKE_ACTIONS)


def test_pipeline_event_source_is_the_one_the_publisher_uses_and_the_rule_matches() -> None:
    assert pipeline_events.SOURCE == PIPELINE_EVENT_SOURCE
    assert READY_FOR_DOCUMENTATION_PATTERN["source"] == [PIPELINE_EVENT_SOURCE]
    assert READY_FOR_DOCUMENTATION_PATTERN["detail-type"] == [pipeline_events.READY_FOR_DOCUMENTATION]


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_put_events_only_on_the_default_bus_with_the_pipeline_source(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    putters = [name for name, f in synth.stack.functions.items() if Access.EVENTS_PUT in f.access]
    assert putters
    for name in synth.stack.functions:
        statements = with_action(policy_of(synth, name), "events:PutEvents")
        if name not in putters:
            assert not statements, name
            continue
        (statement,) = statements
        assert as_list(statement["Action"]) == ["events:PutEvents"], name
        assert statement["Resource"] == f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/default", name
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"events:source": [PIPELINE_EVENT_SOURCE]},
            "Null": {"events:source": "false"},
        }, name
    assert {"ingest", "transcript", "reconcile"} <= set(putters)


@pytest.mark.parametrize("which", ROUTE_FIXTURES)
def test_bedrock_invoke_is_scoped_to_the_configured_profiles_and_their_models(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    settings = synth.stack.settings
    invokers = [name for name, f in synth.stack.functions.items() if Access.BEDROCK_INVOKE in f.access]
    assert {"document", "ask"} <= set(invokers)
    for name in synth.stack.functions:
        policy = policy_of(synth, name)
        if name not in invokers:
            assert not granted(policy, "bedrock:"), name
            continue
        bedrock = [s for s in policy if granted([s], "bedrock:")]
        assert all(sorted(as_list(s["Action"])) == BEDROCK_INVOKE_ACTIONS for s in bedrock), name
        unconditioned = {r for s in bedrock if "Condition" not in s for r in as_list(s["Resource"])}
        conditioned = {
            (r, s["Condition"]["StringEquals"]["bedrock:InferenceProfileArn"])
            for s in bedrock
            if "Condition" in s
            for r in as_list(s["Resource"])
        }
        assert all(set(s.get("Condition", {"StringEquals": {}})) == {"StringEquals"} for s in bedrock), name
        expected_unconditioned, expected_conditioned = set(), set()
        for model_id in bedrock_model_ids(settings):
            geography, foundation_model = split_inference_profile(model_id)
            if geography is None:
                expected_unconditioned.add(f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/{model_id}")
                continue
            profile = f"arn:{PARTITION}:bedrock:{REGION}:{ACCOUNT}:inference-profile/{model_id}"
            expected_unconditioned.add(profile)
            expected_conditioned.add((f"arn:{PARTITION}:bedrock:*::foundation-model/{foundation_model}", profile))
        assert unconditioned == expected_unconditioned, name
        assert conditioned == expected_conditioned, name


def test_the_default_model_ids_are_us_inference_profiles(synth: Synth) -> None:
    ids = bedrock_model_ids(synth.stack.settings)
    assert [split_inference_profile(model_id)[0] for model_id in ids] == ["us", "us"]
    assert split_inference_profile(ids[0])[1] == "anthropic.claude-haiku-4-5-20251001-v1:0"


def resolved_statements(model_ids: list[str]) -> list[dict[str, Any]]:
    stack = Stack(App(), "BedrockProbe")
    return [render(stack.resolve(s.to_statement_json())) for s in bedrock_statements(stack, model_ids)]


def test_a_foundation_model_id_is_granted_in_this_region_only() -> None:
    (statement,) = resolved_statements(["anthropic.claude-3-haiku-20240307-v1:0"])
    assert statement["Resource"] == (
        f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    )
    assert "Condition" not in statement


def test_a_global_profile_reaches_its_model_in_any_region_only_through_the_profile() -> None:
    profile_id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    profile, model = resolved_statements([profile_id])
    profile_arn = f"arn:{PARTITION}:bedrock:{REGION}:{ACCOUNT}:inference-profile/{profile_id}"
    assert profile["Resource"] == profile_arn
    assert model["Resource"] == f"arn:{PARTITION}:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert model["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}


def test_arn_model_ids_are_rejected_at_synth(synth: Synth) -> None:
    settings = synth.stack.settings.model_copy(
        update={"bedrock_model_id": "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc"}
    )
    with pytest.raises(ValueError, match="not ARNs"):
        bedrock_model_ids(settings)
