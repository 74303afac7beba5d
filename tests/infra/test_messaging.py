"""Topic, queues, dead-letter queues, alarms and triggers, for both trigger kinds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from medscribe.routes import ROUTES, EventTrigger, S3Trigger, ScheduleTrigger
from medscribe.settings import PipelineSettings
from stacks.medscribe_stack import RouteResources
from stacks.messaging import DLQ_RETENTION
from tests.infra.helpers import Synth, as_list, getatt, ref, statements

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
        if properties.get("Namespace") != "AWS/SQS":
            continue  # the alarms on the pipeline's own metrics: tests/infra/test_alarms.py
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


def rate_expression(minutes: int) -> str:
    """EventBridge Scheduler's rate() as CDK writes it: the largest whole unit (60 minutes -> 1 hour)."""
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes % size == 0:
            count = minutes // size
            return f"rate({count} {unit}{'s' if count > 1 else ''})"
    raise AssertionError("unreachable")


def routes_triggered_by(synth: Synth, kind: type) -> list[RouteResources]:
    return [resources for resources in synth.stack.routes.values() if isinstance(resources.route.trigger, kind)]


@pytest.mark.parametrize("which", ["synth", "probe"])
def test_event_triggers_target_the_route_queue_with_its_dlq(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    rules = {rule["Properties"]["Name"]: rule["Properties"] for rule in synth.resources("AWS::Events::Rule").values()}
    event_routes = routes_triggered_by(synth, EventTrigger)
    assert event_routes
    assert len(rules) == len(event_routes)
    for resources in event_routes:
        trigger = resources.route.trigger
        assert isinstance(trigger, EventTrigger)
        properties = rules[f"{synth.stack.settings.prefix}-{trigger.rule}"]
        assert properties["EventPattern"] == trigger.pattern
        assert "EventBusName" not in properties  # the default bus
        (target,) = properties["Targets"]
        assert target["Arn"] == getatt(logical_id(synth, resources.queue.queue))
        assert target["DeadLetterConfig"] == {"Arn": getatt(logical_id(synth, resources.queue.dead_letter_queue))}


@pytest.mark.parametrize("which", ["synth", "probe"])
def test_event_triggers_may_send_only_from_this_account(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    this_account = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    for resources in routes_triggered_by(synth, EventTrigger):
        queue_id = logical_id(synth, resources.queue.queue)
        (policy,) = [
            p for p in synth.resources("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [ref(queue_id)]
        ]
        (events_statement,) = [
            s
            for s in statements(policy["Properties"]["PolicyDocument"])
            if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
        ]
        assert events_statement["Condition"] == this_account
    (key,) = synth.resources("AWS::KMS::Key").values()
    key_statements = [
        s for s in statements(key["Properties"]["KeyPolicy"]) if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert key_statements
    assert all(s["Condition"] == this_account for s in key_statements)


def test_schedule_triggers_send_their_message_to_the_route_queue(synth: Synth) -> None:
    settings = synth.stack.settings
    schedules = {s["Properties"]["Name"]: s["Properties"] for s in synth.resources("AWS::Scheduler::Schedule").values()}
    schedule_routes = routes_triggered_by(synth, ScheduleTrigger)
    assert schedule_routes
    assert len(schedules) == len(schedule_routes)
    for resources in schedule_routes:
        trigger = resources.route.trigger
        assert isinstance(trigger, ScheduleTrigger)
        minutes = int(getattr(settings, trigger.interval_setting))
        properties = schedules[f"{settings.prefix}-{resources.route.name}"]
        assert properties["ScheduleExpression"] == rate_expression(minutes)
        assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert properties["State"] == "ENABLED"
        target = properties["Target"]
        assert target["Arn"] == getatt(logical_id(synth, resources.queue.queue))
        assert type(trigger.message).model_validate_json(target["Input"]) == trigger.message  # the handler's model
        assert target["DeadLetterConfig"] == {"Arn": getatt(logical_id(synth, resources.queue.dead_letter_queue))}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == minutes * 60


def test_schedule_role_is_trusted_by_scheduler_and_may_only_send_to_its_queues(synth: Synth) -> None:
    (key_id,) = synth.resources("AWS::KMS::Key")
    for resources in routes_triggered_by(synth, ScheduleTrigger):
        assert resources.queue.schedule_role is not None
        role_id = logical_id(synth, resources.queue.schedule_role)
        (target,) = [
            s["Properties"]["Target"]
            for s in synth.resources("AWS::Scheduler::Schedule").values()
            if s["Properties"]["Name"] == f"{synth.stack.settings.prefix}-{resources.route.name}"
        ]
        assert target["RoleArn"] == getatt(role_id)
        role = synth.template["Resources"][role_id]["Properties"]
        assert "ManagedPolicyArns" not in role
        assert "Policies" not in role
        (trust,) = statements(role["AssumeRolePolicyDocument"])
        assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
        conditions = trust["Condition"]["StringEquals"]
        assert conditions["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert conditions["aws:SourceArn"]["Fn::Join"][1][-1] == ":schedule-group/default"
        (policy,) = [
            p["Properties"]["PolicyDocument"]
            for p in synth.resources("AWS::IAM::Policy").values()
            if p["Properties"]["Roles"] == [ref(role_id)]
        ]
        granted = {
            tuple(sorted(as_list(s["Action"]))): sorted(as_list(s["Resource"]), key=json.dumps)
            for s in statements(policy)
        }
        queue_arns = [getatt(logical_id(synth, q)) for q in (resources.queue.queue, resources.queue.dead_letter_queue)]
        assert granted == {
            ("sqs:SendMessage",): sorted(queue_arns, key=json.dumps),
            ("kms:Decrypt", "kms:GenerateDataKey"): [getatt(key_id)],
        }
