"""Notification topic, and per route: the queue, its dead-letter queue, the DLQ alarm and the trigger.

Every trigger goes through the route's queue: S3 ObjectCreated notifications from the input bucket
(one per key prefix), an EventBridge rule on the default bus, or an EventBridge Scheduler schedule.
- S3: `EncryptedQueueDestination` allows s3.amazonaws.com to send to the queue only for the input
  bucket of this account, and lets S3 use the project key. (CDK's `SqsDestination` would put the
  bucket ARN into the key policy, a circular dependency when the bucket is encrypted with that key.)
- EventBridge: CDK's `SqsQueue` target allows events.amazonaws.com to send (same account only, see
  EVENTS_TARGET_QUEUE_SAME_ACCOUNT in medscribe_stack.py) and adds the matching key-policy statement.
- Scheduler: the schedule sends as its own execution role (trusted by scheduler.amazonaws.com for
  this account's default schedule group only), which may send to the route's queue and DLQ and use
  the project key for exactly that; no queue- or key-policy change is needed for a same-account role.
- Stream: an EventBridge Pipe reads the table's DynamoDB stream as its own role (trusted by
  pipes.amazonaws.com for this pipe only), drops every item type the trigger does not name (pipe
  filter on the sort key), and sends the item's keys and change type only (`STREAM_MESSAGE_TEMPLATE`)
  to the route's queue; records it cannot deliver go to the route's DLQ.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

import jsii
from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces.aws_s3 import IBucketRef
from constructs import Construct

from medscribe.routes import STREAM_MESSAGE_TEMPLATE, EventTrigger, Route, S3Trigger, ScheduleTrigger, StreamTrigger
from medscribe.settings import PipelineSettings
from stacks.alarms import METRIC_ALARMS, metric_alarm_name

DLQ_RETENTION = Duration.days(14)  # the SQS maximum: time to find and redrive a poison message
SCHEDULE_RETRY_ATTEMPTS = 3
STREAM_BATCH_SIZE = 10
STREAM_RETRY_ATTEMPTS = 10
# What a role needs to send to a queue encrypted with a customer-managed key (SQS SSE-KMS).
QUEUE_SEND_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
# A pipe whose data is encrypted with a customer-managed key (its kms_key_identifier) also needs
# kms:DescribeKey on it, as EventBridge Pipes documents (tests/contract checks the rule).
PIPE_KEY_ACTIONS = [*QUEUE_SEND_KEY_ACTIONS, "kms:DescribeKey"]
# What a pipe reads a DynamoDB stream with (EventBridge Pipes' DynamoDB source); ListStreams has no
# resource type (IAM matches it only on "*"), the others are authorized on the stream's ARN.
STREAM_READ_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
STREAM_LIST_ACTIONS = ["dynamodb:ListStreams"]


@jsii.implements(s3.IBucketNotificationDestination)
class EncryptedQueueDestination:
    """S3 event notifications into a queue encrypted with a customer-managed key."""

    def __init__(self, queue: sqs.IQueue, key: kms.IKey) -> None:
        self.queue = queue
        self.key = key

    def bind(self, scope: Construct, bucket: IBucketRef) -> s3.BucketNotificationDestinationConfig:
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3NotificationsFromInputBucket",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": bucket.bucket_ref.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        # As AWS documents it (and CDK's SqsDestination adds it): no condition; the queue policy
        # above decides which bucket may send.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3NotificationsToEncryptedQueues",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
            )
        )
        return s3.BucketNotificationDestinationConfig(
            arn=self.queue.queue_arn,
            type=s3.BucketNotificationDestinationType.QUEUE,
            dependencies=[self.queue],
        )


def alarm_name(prefix: str, route_name: str) -> str:
    return f"{prefix}-{route_name}-dlq-not-empty"


class Notifications(Construct):
    """The SNS topic for pipeline notifications and alarms (KMS, TLS only)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{settings.prefix}-notifications",
            display_name="medscribe notifications",
            master_key=key,
            enforce_ssl=True,
        )
        # CloudWatch alarms publish as the service: allow only this stage's alarms in this account.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisStage",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": [
                            f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{name}"
                            for name in (alarm_name(settings.prefix, "*"),
                                         *(metric_alarm_name(settings.prefix, alarm) for alarm in METRIC_ALARMS))
                        ]
                    },
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        if settings.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.notification_email))


class RouteQueue(Construct):
    """A route's queue with its dead-letter queue, an alarm on the DLQ, and the trigger feeding the queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        route: Route,
        settings: PipelineSettings,
        key: kms.IKey,
        topic: sns.ITopic,
        input_bucket: s3.IBucket,
        table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        name = f"{settings.prefix}-{route.name}"
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=f"{name}-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(route.visibility_timeout_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=settings.max_receive_count
            ),
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_name=alarm_name(settings.prefix, route.name),
            alarm_description=f"Messages of route '{route.name}' reached its dead-letter queue",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        self.rule: events.Rule | None = None
        self.schedule: scheduler.Schedule | None = None
        self.schedule_role: iam.Role | None = None
        self.pipe: pipes.CfnPipe | None = None
        self.pipe_role: iam.Role | None = None
        self._connect(route, settings, key, input_bucket, table)

    def _connect(
        self, route: Route, settings: PipelineSettings, key: kms.IKey, input_bucket: s3.IBucket, table: dynamodb.ITable
    ) -> None:
        trigger = route.trigger
        if isinstance(trigger, S3Trigger):
            destination = EncryptedQueueDestination(self.queue, key)
            for prefix in trigger.prefixes:
                input_bucket.add_event_notification(
                    s3.EventType.OBJECT_CREATED, destination, s3.NotificationKeyFilter(prefix=prefix)
                )
        elif isinstance(trigger, EventTrigger):
            self.rule = events.Rule(
                self,
                "Rule",
                rule_name=f"{settings.prefix}-{trigger.rule}",
                description=route.description,
                event_pattern=event_pattern(trigger.pattern),
                # Events EventBridge cannot deliver (after its retries) land in the route's DLQ and alarm.
                targets=[targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue)],
            )
        elif isinstance(trigger, ScheduleTrigger):
            self._schedule(route, trigger, settings, key)
        elif isinstance(trigger, StreamTrigger):
            self._pipe(route, trigger, settings, key, table)
        else:
            assert_never(trigger)

    def _schedule(self, route: Route, trigger: ScheduleTrigger, settings: PipelineSettings, key: kms.IKey) -> None:
        name = f"{settings.prefix}-{route.name}"
        interval = Duration.minutes(int(getattr(settings, trigger.interval_setting)))
        default_group = Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule-group",
            resource_name="default",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            # AWS's confused-deputy guidance: the schedule group ARN (never a schedule) and the account.
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID, "aws:SourceArn": default_group}},
            ),
            description=f"{name} schedule: sends its message to the route queue (or its DLQ) only",
        )
        self.schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn, self.dead_letter_queue.queue_arn],
            )
        )
        self.schedule_role.add_to_policy(iam.PolicyStatement(actions=QUEUE_SEND_KEY_ACTIONS, resources=[key.key_arn]))
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=name,
            description=route.description,
            schedule=scheduler.ScheduleExpression.rate(interval),
            time_window=scheduler.TimeWindow.off(),
            target=scheduler_targets.SqsSendMessage(
                self.queue,
                input=scheduler.ScheduleTargetInput.from_text(trigger.message.model_dump_json()),
                # The statements above are the role's whole policy: the target's own grant would add
                # sqs:GetQueueAttributes/GetQueueUrl and kms:Encrypt/ReEncrypt*, which sending does not use.
                role=self.schedule_role.without_policy_updates(),
                # A tick older than the interval is superseded by the next one; failures go to the DLQ.
                max_event_age=interval,
                retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                dead_letter_queue=self.dead_letter_queue,
            ),
        )


    def _pipe(
        self, route: Route, trigger: StreamTrigger, settings: PipelineSettings, key: kms.IKey, table: dynamodb.ITable
    ) -> None:
        name = f"{settings.prefix}-{route.name}"
        stream_arn = table.table_stream_arn
        if stream_arn is None:
            raise ValueError(f"route {route.name!r} reads the table's stream, but the table has none")
        pipe_arn = Stack.of(self).format_arn(
            service="pipes", resource="pipe", resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
        )
        self.pipe_role = iam.Role(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal(
                "pipes.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID, "aws:SourceArn": pipe_arn}},
            ),
            description=f"{name} pipe: reads the table stream, sends keys to the route queue (or its DLQ)",
        )
        self.pipe_role.add_to_policy(iam.PolicyStatement(actions=STREAM_READ_ACTIONS, resources=[stream_arn]))
        self.pipe_role.add_to_policy(iam.PolicyStatement(actions=STREAM_LIST_ACTIONS, resources=["*"]))
        self.pipe_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn, self.dead_letter_queue.queue_arn],
            )
        )
        # Decrypt: the stream is encrypted with the table's key; GenerateDataKey: the encrypted queues;
        # DescribeKey: the pipe's own data is encrypted with the key (kms_key_identifier below).
        self.pipe_role.add_to_policy(iam.PolicyStatement(actions=PIPE_KEY_ACTIONS, resources=[key.key_arn]))
        item_filter = {"dynamodb": {"Keys": {"sk": {"S": list(trigger.item_types)}}}}
        self.pipe = pipes.CfnPipe(
            self,
            "Pipe",
            name=name,
            description=route.description,
            role_arn=self.pipe_role.role_arn,
            kms_key_identifier=key.key_arn,  # the pipe's own data (filter pattern) under the project key
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern=json.dumps(item_filter))]
                ),
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="LATEST",
                    batch_size=STREAM_BATCH_SIZE,
                    maximum_retry_attempts=STREAM_RETRY_ATTEMPTS,
                    dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
                ),
            ),
            target=self.queue.queue_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(input_template=STREAM_MESSAGE_TEMPLATE),
        )
        self.pipe.node.add_dependency(self.pipe_role)


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """An EventBridge pattern as written in routes.py (JSON field names) as a CDK EventPattern."""
    fields = {key.replace("-", "_"): value for key, value in pattern.items()}
    try:
        return events.EventPattern(**fields)
    except TypeError as exc:
        raise ValueError(f"unsupported field in event pattern {sorted(pattern)}: {exc}") from exc
