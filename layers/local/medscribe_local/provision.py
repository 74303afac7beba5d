"""Create in the emulator what the stack creates in AWS, from the same settings and route table.

One KMS key encrypts everything; both buckets are versioned with SSE-KMS; the table has the
by-status index, TTL, a stream and PITR; each route gets a queue and a dead-letter queue; S3 triggers
become bucket notifications and event triggers become EventBridge rules, both targeting the route's
queue. An SQS queue subscribed to the topic stands in for the email subscription (see outbox.py).
Local differences: queue visibility timeouts are `local_visibility_timeout_seconds` (short, so retries
are quick), not six times the function timeout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import TTL_ATTRIBUTE, table_definition
from medscribe.routes import ROUTES, EventTrigger, Route, S3Trigger
from medscribe.settings import PipelineSettings
from medscribe_local.environment import REGION
from medscribe_local.state import Resources, RouteResources

QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def function_name(settings: PipelineSettings, route: Route) -> str:
    return f"{settings.prefix}-{route.name}"


def provision(settings: PipelineSettings, routes: Sequence[Route] = ROUTES) -> Resources:
    kms_key_arn = _create_key(settings)
    input_bucket = _create_bucket(f"{settings.prefix}-input", kms_key_arn, settings)
    artifacts_bucket = _create_bucket(f"{settings.prefix}-artifacts", kms_key_arn, settings)
    table = _create_table(f"{settings.prefix}-records", kms_key_arn)
    topic_arn = aws_clients.client("sns").create_topic(
        Name=f"{settings.prefix}-notifications", Attributes={"KmsMasterKeyId": kms_key_arn},
    )["TopicArn"]
    route_resources = {route.name: _create_route_queues(settings, route, kms_key_arn) for route in routes}
    _wire_s3_triggers(input_bucket, routes, route_resources)
    _wire_event_triggers(settings, routes, route_resources)
    return Resources(
        region=REGION,
        account_id=kms_key_arn.split(":")[4],
        kms_key_arn=kms_key_arn,
        input_bucket=input_bucket,
        artifacts_bucket=artifacts_bucket,
        table=table,
        topic_arn=topic_arn,
        outbox_queue_url=_subscribe_outbox(settings, topic_arn, kms_key_arn),
        routes=route_resources,
    )


def _create_key(settings: PipelineSettings) -> str:
    kms = aws_clients.client("kms")
    key = kms.create_key(Description=f"{settings.prefix} data key (local)")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms.create_alias(AliasName=f"alias/{settings.prefix}", TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def _create_bucket(name: str, kms_key_arn: str, settings: PipelineSettings) -> str:
    s3 = aws_clients.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
    })
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn},
        "BucketKeyEnabled": True,
    }]})
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
        "ID": "expire-noncurrent-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": settings.noncurrent_version_days},
    }]})
    return name


def _create_table(name: str, kms_key_arn: str) -> str:
    dynamodb = aws_clients.client("dynamodb")
    dynamodb.create_table(
        **table_definition(name),
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key_arn},
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    return name


def _create_queue(name: str, attributes: dict[str, str]) -> tuple[str, str]:
    sqs = aws_clients.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(url), str(arn)


def _create_route_queues(settings: PipelineSettings, route: Route, kms_key_arn: str) -> RouteResources:
    name = function_name(settings, route)
    dlq_url, dlq_arn = _create_queue(f"{name}-dlq", {
        "KmsMasterKeyId": kms_key_arn, "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
    })
    queue_url, queue_arn = _create_queue(name, {
        "KmsMasterKeyId": kms_key_arn,
        "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
        "VisibilityTimeout": str(settings.local_visibility_timeout_seconds),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}),
    })
    return RouteResources(
        name=route.name, function_name=name, queue_url=queue_url, queue_arn=queue_arn,
        dlq_url=dlq_url, dlq_arn=dlq_arn, max_concurrency=route.max_concurrency(settings),
    )


def _wire_s3_triggers(bucket: str, routes: Sequence[Route], resources: dict[str, RouteResources]) -> None:
    # One configuration holds every route's prefixes: putting it replaces what was there. S3 (and
    # moto) sends an s3:TestEvent to each queue when it is set; the handlers ignore it.
    configurations: list[dict[str, Any]] = [
        {
            "Id": f"{route.name}-{prefix.strip('/')}",
            "QueueArn": resources[route.name].queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
        }
        for route in routes if isinstance(route.trigger, S3Trigger)
        for prefix in route.trigger.prefixes
    ]
    if configurations:
        aws_clients.client("s3").put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations},
        )


def _wire_event_triggers(
    settings: PipelineSettings, routes: Sequence[Route], resources: dict[str, RouteResources],
) -> None:
    events = aws_clients.client("events")
    for route in routes:
        if not isinstance(route.trigger, EventTrigger):
            continue
        rule = f"{settings.prefix}-{route.trigger.rule}"
        events.put_rule(Name=rule, EventPattern=json.dumps(route.trigger.pattern), State="ENABLED")
        events.put_targets(Rule=rule, Targets=[{"Id": route.name, "Arn": resources[route.name].queue_arn}])


def _subscribe_outbox(settings: PipelineSettings, topic_arn: str, kms_key_arn: str) -> str:
    url, arn = _create_queue(f"{settings.prefix}-outbox", {"KmsMasterKeyId": kms_key_arn})
    aws_clients.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url
