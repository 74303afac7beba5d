"""Endpoints: functions behind a Lambda function URL that only signed IAM callers of this account can use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from medscribe.routes import ENDPOINTS
from stacks.naming import construct_id
from tests.infra.helpers import Synth, as_list, getatt

pytestmark = pytest.mark.infra

FIXTURES = ["synth", "probe"]


def logical_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.resolve(construct.node.default_child.logical_id))


def test_every_endpoint_of_the_table_is_deployed(synth: Synth) -> None:
    assert ENDPOINTS
    assert set(synth.stack.endpoints) == {endpoint.name for endpoint in ENDPOINTS}


@pytest.mark.parametrize("which", FIXTURES)
def test_each_endpoint_has_one_iam_authorised_url_without_cors(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    urls = synth.resources("AWS::Lambda::Url")
    assert len(urls) == len(synth.stack.endpoints) >= 1
    by_function = {url["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0]: url["Properties"] for url in urls.values()}
    for name, endpoint in synth.stack.endpoints.items():
        url = by_function[logical_id(synth, endpoint.function)]
        assert url["AuthType"] == "AWS_IAM", name
        assert "Cors" not in url, name
        assert url.get("InvokeMode", "BUFFERED") == "BUFFERED", name
        assert "Qualifier" not in url, name


@pytest.mark.parametrize("which", FIXTURES)
def test_no_principal_may_invoke_a_function_through_a_resource_policy_wildcard(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    endpoint_functions = {logical_id(synth, e.function) for e in synth.stack.endpoints.values()}
    for permission_id, permission in synth.resources("AWS::Lambda::Permission").items():
        properties = permission["Properties"]
        if properties["Principal"] == "apigateway.amazonaws.com":
            continue  # the workspace API's integration, scoped to that API (tests/infra/test_workspace.py)
        # Neither a public (or any '*') function URL grant nor any other grant on an endpoint function.
        assert properties["Principal"] != "*", permission_id
        assert properties["Action"] not in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction"), permission_id
        assert "FunctionUrlAuthType" not in properties, permission_id
        assert not endpoint_functions & set(json.dumps(properties["FunctionName"]).split('"')), permission_id


@pytest.mark.parametrize("which", FIXTURES)
def test_endpoints_have_no_event_source_and_no_reserved_concurrency(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    mapped = {
        m["Properties"]["FunctionName"]["Ref"] for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
    }
    for name, endpoint in synth.stack.endpoints.items():
        function_id = logical_id(synth, endpoint.function)
        assert function_id not in mapped, name
        assert "ReservedConcurrentExecutions" not in synth.template["Resources"][function_id]["Properties"], name


@pytest.mark.parametrize("which", FIXTURES)
def test_endpoint_roles_carry_no_queue_access(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    for name, endpoint in synth.stack.endpoints.items():
        policy = endpoint.role.node.find_child("DefaultPolicy").node.find_child("Resource")
        document = synth.template["Resources"][str(synth.stack.resolve(policy.logical_id))]["Properties"]  # type: ignore[attr-defined]
        actions = {a for s in as_list(document["PolicyDocument"]["Statement"]) for a in as_list(s["Action"])}
        assert not {a for a in actions if a.startswith("sqs:")}, name
        assert "lambda:InvokeFunctionUrl" not in actions, name


def test_outputs_give_each_endpoint_url_and_function_name(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    for name, endpoint in synth.stack.endpoints.items():
        cid = construct_id(name)
        url_id = logical_id(synth, endpoint.url)
        assert outputs[f"{cid}EndpointUrl"]["Value"] == getatt(url_id, "FunctionUrl")
        assert "AWS_IAM" in outputs[f"{cid}EndpointUrl"]["Description"]
        assert outputs[f"{cid}EndpointFunctionName"]["Value"] == {"Ref": logical_id(synth, endpoint.function)}
