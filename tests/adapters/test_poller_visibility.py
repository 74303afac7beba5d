"""A route poller keeps a running invocation's messages invisible, as AWS's six-times-the-timeout
visibility does, and lets them come back once the invocation passes its function timeout.

Here, not in tests/e2e: it starts its own emulator, which resets moto's process-wide state, and the
e2e package shares one runtime across its modules."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medscribe.adapters import aws_clients
from medscribe.routes import Access, Route, S3Trigger
from medscribe.settings import PipelineSettings
from medscribe_local.emulator import Emulator
from medscribe_local.environment import connect
from medscribe_local.pollers import RoutePoller
from medscribe_local.state import Resources, RouteResources

VISIBILITY = 1  # seconds: each invocation below outlasts it several times

HANDLER = textwrap.dedent('''
    import json, time
    from pathlib import Path

    LOG = Path(__file__).with_name("invocations.log")

    def handler(event, context):
        for record in event["Records"]:
            with LOG.open("a") as log:
                log.write(record["body"] + "\\n")
        time.sleep(json.loads(event["Records"][0]["body"])["seconds"])
        return {"batchItemFailures": []}
''')


@pytest.fixture
def emulator() -> Iterator[None]:
    emulator = Emulator()
    restore = connect(emulator.start())
    try:
        yield
    finally:
        emulator.stop()
        restore()


def make_poller(root: Path, timeout_seconds: int) -> tuple[RoutePoller, str]:
    (root / "lambdas" / "slow").mkdir(parents=True)
    (root / "lambdas" / "slow" / "handler.py").write_text(HANDLER)
    sqs = aws_clients.client("sqs")
    url = sqs.create_queue(QueueName="slow", Attributes={"VisibilityTimeout": str(VISIBILITY)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    route = Route(name="slow", description="sleeps", trigger=S3Trigger(prefixes=("x/",)),
                  access=frozenset({Access.TABLE_READ_WRITE}), timeout_seconds=timeout_seconds)
    resources = Resources(
        region="us-east-1", account_id="123456789012", kms_key_arn="k", input_bucket="i", artifacts_bucket="a",
        table="t", topic_arn="arn:aws:sns:us-east-1:123456789012:t", outbox_queue_url=url,
        routes={"slow": RouteResources(name="slow", function_name="slow", queue_url=url, queue_arn=arn,
                                       dlq_url=url, dlq_arn=arn, max_concurrency=1)},
    )
    settings = PipelineSettings().model_copy(update={"local_visibility_timeout_seconds": VISIBILITY,
                                                     "batch_size": 1})
    return RoutePoller(route, resources, settings, root), url


def run(poller: RoutePoller, url: str, seconds: float, wait: float) -> list[str]:
    aws_clients.client("sqs").send_message(QueueUrl=url, MessageBody=f'{{"seconds": {seconds}}}')
    poller.start()
    try:
        time.sleep(wait)
    finally:
        poller.signal_stop()
        poller.join()
    log = poller.environments.path.with_name("invocations.log")
    return log.read_text().splitlines() if log.exists() else []


def test_a_message_is_not_delivered_again_while_its_invocation_runs(emulator: None, tmp_path: Path) -> None:
    poller, url = make_poller(tmp_path, timeout_seconds=30)
    invocations = run(poller, url, seconds=4 * VISIBILITY, wait=6 * VISIBILITY)
    assert len(invocations) == 1  # without the heartbeat: delivered again every second it ran
    assert poller.stats().messages_ok == 1


def test_a_message_comes_back_once_its_invocation_passes_the_function_timeout(emulator: None, tmp_path: Path) -> None:
    poller, url = make_poller(tmp_path, timeout_seconds=1)
    invocations = run(poller, url, seconds=3, wait=3)
    # Lambda would have stopped the first run after 1 s; its message then became visible again
    assert len(invocations) >= 2
