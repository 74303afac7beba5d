"""Dead-letter queue alarms, as the stack's CloudWatch alarm (DLQ visible messages >= 1) -> SNS does.

When a dead-letter queue's depth goes from 0 to more than 0, an alarm notification in CloudWatch's
JSON shape is published to the topic. It names the alarm and the queue and carries counts only:
never a message body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from medscribe.adapters import aws_clients
from medscribe.domain.encounter import utc_now
from medscribe_local.loops import BackgroundLoop
from medscribe_local.state import Resources, RouteResources

log = logging.getLogger("medscribe_local")

CHECK_INTERVAL_SECONDS = 0.5
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}


def alarm_name(route: RouteResources) -> str:
    return f"{route.function_name}-dlq-not-empty"


def dlq_name(route: RouteResources) -> str:
    return route.dlq_arn.rsplit(":", 1)[-1]


class DlqAlarms:
    def __init__(self, resources: Resources, routes: Iterable[RouteResources]) -> None:
        self.resources = resources
        self.routes = list(routes)
        self._in_alarm: set[str] = set()
        self.loop = BackgroundLoop("dlq-alarms", self._check, pause_seconds=CHECK_INTERVAL_SECONDS)

    def _check(self) -> None:
        sqs = aws_clients.client("sqs")
        for route in self.routes:
            attributes = sqs.get_queue_attributes(
                QueueUrl=route.dlq_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depth = sum(int(value) for value in attributes.values())
            if depth == 0:
                self._in_alarm.discard(route.name)
            elif route.name not in self._in_alarm:
                self._publish(route, depth)
                self._in_alarm.add(route.name)

    def _publish(self, route: RouteResources, depth: int) -> None:
        name = alarm_name(route)
        region = self.resources.region
        message = {
            "AlarmName": name,
            "AlarmDescription": f"Messages of route '{route.name}' reached its dead-letter queue",
            "AWSAccountId": self.resources.account_id,
            "NewStateValue": "ALARM",
            "NewStateReason": (
                f"Threshold Crossed: 1 datapoint [{depth}.0] was greater than or equal to the threshold (1.0)."
            ),
            "StateChangeTime": utc_now(),
            "Region": REGION_NAMES.get(region, region),
            "OldStateValue": "OK",
            "Trigger": {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Namespace": "AWS/SQS",
                "Statistic": "MAXIMUM",
                "Dimensions": [{"name": "QueueName", "value": dlq_name(route)}],
                "Period": 300,
                "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Threshold": 1.0,
                "TreatMissingData": "notBreaching",
            },
        }
        aws_clients.client("sns").publish(
            TopicArn=self.resources.topic_arn,
            Subject=f'ALARM: "{name}" in {REGION_NAMES.get(region, region)}'[:100],
            Message=json.dumps(message, indent=2),
        )
        log.warning("alarm %s: %d message(s) in %s", name, depth, dlq_name(route))
