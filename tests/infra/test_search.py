"""The search domain and the stream pipe that feeds the index route, as synthesized."""

from __future__ import annotations

import json
from typing import Any

import pytest

from medscribe.routes import STREAM_MESSAGE_TEMPLATE, Access, StreamTrigger
from medscribe.settings import ENV
from stacks.search import SEARCH_HTTP_ACTIONS
from tests.infra.helpers import DEPLOYMENT_ID, Synth, as_list, render, statements

pytestmark = pytest.mark.infra


def _one(synth: Synth, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = synth.resources(resource_type).items()
    return logical_id, resource


def _logical_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.resolve(construct.node.default_child.logical_id))


def test_domain_is_encrypted_https_only_logged_and_sized_from_settings(synth: Synth) -> None:
    settings = synth.stack.settings
    (key_id,) = synth.resources("AWS::KMS::Key")
    _, domain = _one(synth, "AWS::OpenSearchService::Domain")
    properties = domain["Properties"]
    # the index holds PHI: retained on stack deletion; deleted by a create rollback (fixed name)
    assert (domain["DeletionPolicy"], domain["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert properties["EngineVersion"] == f"OpenSearch_{settings.search_engine_version}"
    assert properties["EncryptionAtRestOptions"] == {"Enabled": True, "KmsKeyId": {"Ref": key_id}}
    assert properties["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert properties["DomainEndpointOptions"] == {
        "EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10",
    }
    cluster = properties["ClusterConfig"]
    assert cluster["InstanceType"] == settings.search_instance_type
    assert cluster["InstanceCount"] == settings.search_instance_count
    assert properties["EBSOptions"]["VolumeSize"] == settings.search_volume_gb
    assert properties["EBSOptions"]["VolumeType"] == "gp3"
    assert "VPCOptions" not in properties  # the decision documented in README "Search domain"
    assert "AdvancedSecurityOptions" not in properties or not properties["AdvancedSecurityOptions"].get(
        "AnonymousAuthEnabled"
    )
    published = properties["LogPublishingOptions"]
    assert set(published) == {"ES_APPLICATION_LOGS", "SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS"}
    groups = synth.resources("AWS::Logs::LogGroup")
    for option in published.values():
        assert option["Enabled"] is True
        group_id = option["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0]
        group = groups[group_id]["Properties"]
        assert group["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        name = render(group["LogGroupName"])  # a new name for every stack created (deployment_id)
        assert name.startswith(f"/aws/opensearch/{settings.prefix}/{DEPLOYMENT_ID}/")
        assert group["RetentionInDays"] == settings.log_retention_days


def test_log_delivery_policy_is_limited_to_the_domain_log_groups_of_this_account(synth: Synth) -> None:
    _, policy = _one(synth, "AWS::Logs::ResourcePolicy")
    # a JSON string with the log group ARNs joined in: render the intrinsics, then parse
    (statement,) = statements(json.loads(render(policy["Properties"]["PolicyDocument"])))
    assert statement["Principal"] == {"Service": "es.amazonaws.com"}
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert len(statement["Resource"]) == 3
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def test_domain_access_policy_names_only_the_roles_that_index_or_query(synth: Synth) -> None:
    _, domain = _one(synth, "AWS::OpenSearchService::Domain")
    writers = [function for function in synth.stack.functions.values() if Access.SEARCH_WRITE in function.access]
    readers = [function for function in synth.stack.functions.values() if Access.SEARCH_QUERY in function.access]
    assert [w.handler.name for w in writers] == ["index"]
    assert [r.handler.name for r in readers] == ["workspace"]
    name = render(synth.stack.resolve(synth.stack.storage.search.name))
    domain_arn = f"arn:${{AWS::Partition}}:es:${{AWS::Region}}:${{AWS::AccountId}}:domain/{name}"
    found = {(tuple(statement["Action"]), tuple(render(statement["Resource"]))): statement["Principal"]
             for statement in statements(domain["Properties"]["AccessPolicies"])}
    assert all(statement["Effect"] == "Allow" for statement in statements(domain["Properties"]["AccessPolicies"]))

    def roles(functions: list[Any]) -> dict[str, Any]:  # never "*": no anonymous or open access
        return {"AWS": [{"Fn::GetAtt": [_logical_id(synth, f.role), "Arn"]} for f in functions]}

    # the indexer on every path; the workspace a query (its _search) and, for an admin's erasure, a bulk delete
    assert found == {
        (tuple(SEARCH_HTTP_ACTIONS), (f"{domain_arn}/*",)): roles(writers),
        (("es:ESHttpPost",), (f"{domain_arn}/encounters/_search",)): roles(readers),
        (("es:ESHttpPost",), (f"{domain_arn}/_bulk",)): roles(readers),
    }
    assert render(domain["Properties"]["DomainName"]) == name


def test_only_the_index_and_workspace_functions_know_the_domain_and_may_call_it(synth: Synth) -> None:
    domain_id = _logical_id(synth, synth.stack.storage.search.domain)
    for name, function in synth.stack.functions.items():
        cfn = synth.template["Resources"][_logical_id(synth, function.function)]["Properties"]
        variables = cfn["Environment"]["Variables"]
        policy = function.role.node.find_child("DefaultPolicy").node.find_child("Resource")
        document = synth.template["Resources"][str(synth.stack.resolve(policy.logical_id))]["Properties"]
        es = [s for s in statements(document["PolicyDocument"]) if any(
            a.startswith("es:") for a in as_list(s["Action"]))]
        if name == "index":
            assert render(variables[ENV.SEARCH_URL]) == f"https://${{{domain_id}.DomainEndpoint}}"
            (statement,) = es
            assert sorted(as_list(statement["Action"])) == SEARCH_HTTP_ACTIONS
            assert render(as_list(statement["Resource"])) == [f"${{{domain_id}.Arn}}/*"]
        elif name == "workspace":  # its statements: tests/infra/test_workspace.py
            assert render(variables[ENV.SEARCH_URL]) == f"https://${{{domain_id}.DomainEndpoint}}"
            assert {a for s in es for a in as_list(s["Action"])} == {"es:ESHttpPost"}
        else:
            assert ENV.SEARCH_URL not in variables, name
            assert not es, name


def test_stream_pipe_sends_keys_of_encounter_items_to_the_index_queue(synth: Synth) -> None:
    resources = synth.stack.routes["index"]
    trigger = resources.route.trigger
    assert isinstance(trigger, StreamTrigger)
    table_id = _logical_id(synth, synth.stack.storage.table)
    (key_id,) = synth.resources("AWS::KMS::Key")
    _, pipe = _one(synth, "AWS::Pipes::Pipe")
    properties = pipe["Properties"]
    assert properties["Source"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert properties["Target"] == {"Fn::GetAtt": [_logical_id(synth, resources.queue.queue), "Arn"]}
    assert properties["KmsKeyIdentifier"] == {"Fn::GetAtt": [key_id, "Arn"]}
    source = properties["SourceParameters"]
    (pattern,) = source["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {"dynamodb": {"Keys": {"sk": {"S": list(trigger.item_types)}}}}
    stream = source["DynamoDBStreamParameters"]
    assert stream["StartingPosition"] == "LATEST"
    assert stream["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [_logical_id(synth, resources.queue.dead_letter_queue), "Arn"]}
    }
    assert properties["TargetParameters"] == {"InputTemplate": STREAM_MESSAGE_TEMPLATE}
    # the message carries keys and the change type, never the item (PHI stays in the table)
    assert "NewImage" not in STREAM_MESSAGE_TEMPLATE
    assert "OldImage" not in STREAM_MESSAGE_TEMPLATE


def test_pipe_role_is_trusted_for_this_pipe_only_and_reads_only_the_stream(synth: Synth) -> None:
    role = synth.stack.routes["index"].queue.pipe_role
    assert role is not None
    cfn = synth.template["Resources"][_logical_id(synth, role)]["Properties"]
    (trust,) = statements(cfn["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "pipes.amazonaws.com"}
    conditions = render(trust["Condition"]["StringEquals"])
    assert conditions["aws:SourceArn"].endswith(":pipe/medscribe-dev-index")
    policy = role.node.find_child("DefaultPolicy").node.find_child("Resource")
    document = synth.template["Resources"][str(synth.stack.resolve(policy.logical_id))]["Properties"]
    actions = {a: render(s["Resource"]) for s in statements(document["PolicyDocument"]) for a in as_list(s["Action"])}
    table_id = _logical_id(synth, synth.stack.storage.table)
    assert actions["dynamodb:GetRecords"] == f"${{{table_id}.StreamArn}}"
    assert not [a for a in actions if a.startswith("dynamodb:") and a not in (
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")]
    assert sorted(a for a in actions if a.startswith("sqs:")) == ["sqs:SendMessage"]
