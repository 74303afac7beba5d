"""The outbox: what the topic's email subscription would deliver, as RFC 5322 .eml files.

An SQS queue subscribed to the topic stands in for the email subscription; this poller turns
each SNS notification into `<state>/outbox/<time>-<message id>.eml`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from medscribe.adapters import aws_clients
from medscribe_local.loops import BackgroundLoop
from medscribe_local.state import write_atomically

log = logging.getLogger("medscribe_local")

SENDER = "AWS Notifications <no-reply@sns.amazonaws.com>"
DEFAULT_RECIPIENT = "operator@localhost"
RECEIVE_WAIT_SECONDS = 1


def email_from_notification(notification: dict[str, Any], recipient: str) -> EmailMessage:
    """The email SNS would send for one notification (the SNS JSON envelope an SQS subscriber gets)."""
    sent = datetime.fromisoformat(notification["Timestamp"].replace("Z", "+00:00"))
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = recipient
    # one line: a long subject folded by the email policy would read back with a leading space
    message["Subject"] = " ".join((notification.get("Subject") or "AWS Notification Message").split())
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = f"<{notification['MessageId']}@sns.local>"
    message.set_content(
        f"{notification['Message']}\n\n--\nSent to you by the topic {notification['TopicArn']} "
        "(local runtime outbox).\n"
    )
    return message


class Outbox:
    def __init__(self, queue_url: str, folder: Path, recipient: str | None) -> None:
        self.queue_url = queue_url
        self.folder = folder
        self.recipient = recipient or DEFAULT_RECIPIENT
        self.loop = BackgroundLoop("outbox", self._deliver)

    def _deliver(self) -> None:
        sqs = aws_clients.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
        ).get("Messages", [])
        for message in messages:
            notification = json.loads(message["Body"])
            email = email_from_notification(notification, self.recipient)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.folder / f"{stamp}-{notification['MessageId']}.eml"
            write_atomically(path, email.as_string())
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            log.info("outbox: wrote %s", path.name)
