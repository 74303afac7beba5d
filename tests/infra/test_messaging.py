"""Topic, queues, dead-letter queues, alarms and triggers, for both trigger kinds."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from medscribe.routes import ROUTES, EventTrigger, S3Trigger
from medscribe.settings import PipelineSettings
from stacks.messaging import DLQ_RETENTION
from tests.infra.helpers import PROBE_ROUTE, Synth, getatt, ref, statements

pytestmark = pytest.mark.infra


def logical_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.resolve(construct.node.default_child.logical_id))


def dead_letter_queue_ids(synth: Synth) -> set[str]:
    return {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in synth.resources("AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }


def test_topic_is_encrypted_and_tls_only(synth: Synth) -> None:
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    (key_id,) = synth.resources("AWS::KMS::Key")
    assert synth.template["Resources"][topic_id]["Properties"]["KmsMasterKeyId"] == getatt(key_id)
    (policy,) = synth.resources("AWS::SNS::TopicPolicy").values()
    document = policy["Properties"]["PolicyDocument"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements(document)
    )
    (alarms,) = [s for s in statements(document) if s.get("Sid") == "CloudWatchAlarmsOfThisStage"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_no_email_subscription_without_an_address(synth: Synth, settings: PipelineSettings) -> None:
    expected = 1 if settings.notification_email else 0
    assert len(synth.resources("AWS::SNS::Subscription")) == expected


@pytest.mark.parametrize("which", ["synth", "probe"])
def test_every_queue_is_kms_encrypted_and_tls_only(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    (key_id,) = synth.resources("AWS::KMS::Key")
    queues = synth.resources("AWS::SQS::Queue")
    assert queues
    policies = {
        policy["Properties"]["Queues"][0]["Ref"]: policy["Properties"]["PolicyDocument"]
        for policy in synth.resources("AWS::SQS::QueuePolicy").values()
    }
    for queue_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == getatt(key_id), queue_id
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements(policies[queue_id])
        ), queue_id


@pytest.mark.parametrize("which", ["synth", "probe"])
def test_route_queues_redrive_to_their_dlq(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    settings = synth.stack.settings
    dlqs = dead_letter_queue_ids(synth)
    assert len(synth.resources("AWS::SQS::Queue")) == 2 * len(synth.stack.routes)
    for name, resources in synth.stack.routes.items():
        queue = synth.template["Resources"][logical_id(synth, resources.queue.queue)]["Properties"]
        dlq_id = logical_id(synth, resources.queue.dead_letter_queue)
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": getatt(dlq_id),
            "maxReceiveCount": settings.max_receive_count,
        }, name
        assert queue["VisibilityTimeout"] == resources.route.visibility_timeout_seconds(), name
        assert dlq_id in dlqs
        dlq = synth.template["Resources"][dlq_id]["Properties"]
        assert dlq["MessageRetentionPeriod"] == DLQ_RETENTION.to_seconds() == 14 * 24 * 3600
        assert "RedrivePolicy" not in dlq


@pytest.mark.parametrize("which", ["synth", "probe"])
def test_every_dlq_alarms_to_the_topic(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    (topic_id,) = synth.resources("AWS::SNS::Topic")
    alarmed = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        (dimension,) = properties["Dimensions"]
        alarmed[dimension["Value"]["Fn::GetAtt"][0]] = properties
    dlqs = dead_letter_queue_ids(synth)
    assert dlqs
    assert dlqs <= set(alarmed)
    for dlq_id in dlqs:
        alarm = alarmed[dlq_id]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [ref(topic_id)]
        assert alarm["AlarmName"].startswith(f"{synth.stack.settings.prefix}-")


def test_each_s3_prefix_notifies_its_route_queue_only_on_object_created(synth: Synth) -> None:
    (notifications,) = synth.resources("Custom::S3BucketNotifications").values()
    input_id = logical_id(synth, synth.stack.storage.input_bucket)
    assert notifications["Properties"]["BucketName"] == ref(input_id)
    configuration = notifications["Properties"]["NotificationConfiguration"]
    assert set(configuration) == {"QueueConfigurations"}
    actual = sorted(
        (
            item["Filter"]["Key"]["FilterRules"][0]["Value"],
            item["QueueArn"]["Fn::GetAtt"][0],
            tuple(item["Events"]),
        )
        for item in configuration["QueueConfigurations"]
    )
    expected = sorted(
        (prefix, logical_id(synth, synth.stack.routes[route.name].queue.queue), ("s3:ObjectCreated:*",))
        for route in ROUTES
        if isinstance(route.trigger, S3Trigger)
        for prefix in route.trigger.prefixes
    )
    assert expected
    assert actual == expected


def test_s3_may_send_only_from_the_input_bucket_of_this_account(synth: Synth) -> None:
    input_id = logical_id(synth, synth.stack.storage.input_bucket)
    for route in ROUTES:
        if not isinstance(route.trigger, S3Trigger):
            continue
        queue_id = logical_id(synth, synth.stack.routes[route.name].queue.queue)
        Template.from_json(synth.template).has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [ref(queue_id)],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            {
                                "Sid": "S3NotificationsFromInputBucket",
                                "Effect": "Allow",
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": getatt(queue_id),
                                "Condition": {
                                    "ArnLike": {"aws:SourceArn": getatt(input_id)},
                                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                },
                            }
                        ]
                    )
                },
            },
        )


def test_event_trigger_rule_targets_the_route_queue_with_its_dlq(probe: Synth) -> None:
    assert isinstance(PROBE_ROUTE.trigger, EventTrigger)
    resources = probe.stack.routes[PROBE_ROUTE.name]
    queue_id = logical_id(probe, resources.queue.queue)
    dlq_id = logical_id(probe, resources.queue.dead_letter_queue)
    (rule,) = probe.resources("AWS::Events::Rule").values()
    properties = rule["Properties"]
    assert properties["Name"] == f"{probe.stack.settings.prefix}-{PROBE_ROUTE.trigger.rule}"
    assert properties["EventPattern"] == PROBE_ROUTE.trigger.pattern
    assert "EventBusName" not in properties  # the default bus
    (target,) = properties["Targets"]
    assert target["Arn"] == getatt(queue_id)
    assert target["DeadLetterConfig"] == {"Arn": getatt(dlq_id)}


def test_event_trigger_may_send_only_from_this_account(probe: Synth) -> None:
    resources = probe.stack.routes[PROBE_ROUTE.name]
    queue_id = logical_id(probe, resources.queue.queue)
    (policy,) = [
        p for p in probe.resources("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [ref(queue_id)]
    ]
    (events_statement,) = [
        s
        for s in statements(policy["Properties"]["PolicyDocument"])
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert events_statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (key,) = probe.resources("AWS::KMS::Key").values()
    (key_statement,) = [
        s for s in statements(key["Properties"]["KeyPolicy"]) if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert key_statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
