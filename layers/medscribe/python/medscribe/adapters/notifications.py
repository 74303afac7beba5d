"""SNS notifications: ids, statuses and numbers only, never transcript text or object keys."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify


class Notifier:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("sns")

    def publish(self, subject: str, lines: list[str], attributes: dict[str, Any]) -> None:
        body = "\n".join(lines) + "\n\n" + json.dumps(attributes, indent=1, sort_keys=True)
        try:
            self.client.publish(TopicArn=self.topic_arn, Subject=subject[:100], Message=body)
        except ClientError as exc:
            raise classify(exc) from exc
