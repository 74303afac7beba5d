"""Pollers that play Lambda's SQS event source mapping for each route.

Per route: one receiver long-polls the route's queue for batches of `batch_size` and hands each
batch to one of at most `route.max_concurrency(settings)` concurrent invocations (the mapping's
maximum concurrency). An invocation gets the exact Lambda SQS event shape and a Lambda-like context;
afterwards every message not named in `batchItemFailures` is deleted. A raised exception, an
invalid response or a run past the function timeout fails the whole batch. Failed messages come
back after the queue's visibility timeout, and the emulator moves a message to the dead-letter
queue once it has been received `max_receive_count` times (moto implements the redrive policy).

Visibility: in AWS a queue's visibility timeout is six times its function's timeout, so a message is
never delivered again while its invocation runs. Local queues use a short one
(`local_visibility_timeout_seconds`) so that failed messages come back quickly; a heartbeat keeps
the messages of running invocations invisible (ChangeMessageVisibility every third of the timeout)
until the invocation ends or passes the function timeout, as in AWS. Without it, invocations slowed
by a loaded machine were delivered two or three times over (harmless, the handlers are idempotent,
but the repeats were most of a burst's work).

Schedules: a route with a ScheduleTrigger gets a `ScheduleTimer` that sends the trigger's message
to the route's queue every `settings.<local_interval_setting>` seconds (EventBridge Scheduler's
role in AWS); its poller then delivers it like any other message.

Streams: a route with a StreamTrigger gets a `StreamPump` that reads the table's DynamoDB stream in
the emulator and sends each record that passes the trigger's filter, reduced to its keys
(`routes.stream_message`), to the route's queue: the EventBridge Pipe's role in AWS.

Execution environments: Lambda runs one invocation at a time per environment and keeps module
state (e.g. a module-level Powertools BatchProcessor) per environment. So each concurrent
invocation here gets its own instance of the handler module, loaded once when first needed (a cold
start) and then reused warm; there are never more instances than the concurrency cap. Modules the
handler imports (medscribe.*, Powertools) are shared by the whole process.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from medscribe.adapters import aws_clients
from medscribe.messages import StreamMessage
from medscribe.routes import Route, ScheduleTrigger, StreamTrigger, stream_message
from medscribe.settings import PipelineSettings
from medscribe_local.loops import BackgroundLoop
from medscribe_local.state import Resources, RouteResources

log = logging.getLogger("medscribe_local")

RECEIVE_WAIT_SECONDS = 1
STREAM_POLL_SECONDS = 0.2
SLOT_WAIT_SECONDS = 0.25
SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"
_load_lock = threading.Lock()  # handler modules execute their imports one at a time

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float  # time.monotonic() at which Lambda would stop the invocation
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def sqs_event_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, built from a ReceiveMessage result."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return converted


def failed_message_ids(response: Any, batch_ids: frozenset[str]) -> frozenset[str]:
    """Which messages failed, read the way Lambda reads a ReportBatchItemFailures response.

    No response, no `batchItemFailures` or an empty list: all succeeded. A response that is not an
    object, or a failure whose `itemIdentifier` is missing, empty or not in the batch: all failed.
    """
    if not response:
        return frozenset()
    if not isinstance(response, dict):
        return batch_ids
    failures = response.get("batchItemFailures") or []
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return batch_ids
        failed.add(identifier)
    return frozenset(failed)


class ExecutionEnvironments:
    """Warm instances of one route's handler; a new one is loaded only when all are busy."""

    def __init__(self, route: Route, root: Path) -> None:
        self.route = route
        self.path = root / route.handler_path
        self._idle: list[Handler] = []
        self._lock = threading.Lock()
        self.cold_starts = 0

    def acquire(self) -> Handler:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.cold_starts += 1
            number = self.cold_starts
        return self._load(number)

    def release(self, handler: Handler) -> None:
        with self._lock:
            self._idle.append(handler)

    def _load(self, number: int) -> Handler:
        if not self.path.is_file():
            raise RuntimeError(f"route {self.route.name}: its handler {self.route.handler_path} does not exist "
                               f"(looked in {self.path.parent})")
        module_name = f"medscribe_lambda_{self.route.name.replace('-', '_')}_{number}"
        spec = importlib.util.spec_from_file_location(module_name, self.path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load the {self.route.name} handler from {self.path}")
        module = importlib.util.module_from_spec(spec)
        with _load_lock:
            # Powertools reads the service name when the observability module is first imported.
            os.environ[SERVICE_NAME_ENV] = f"medscribe-{self.route.name}"
            spec.loader.exec_module(module)
        handler = getattr(module, "handler", None)
        if not callable(handler):
            raise RuntimeError(f"{self.route.handler_path} has no callable `handler`")
        log.info("route %s: cold start of execution environment %d", self.route.name, number)
        return cast(Handler, handler)


@dataclass
class RouteStats:
    """Counters for tests and benchmarks (a snapshot; see RoutePoller.stats)."""

    invocations: int = 0
    messages_ok: int = 0
    messages_failed: int = 0
    failed_invocations: int = 0  # raised, returned an invalid response or ran past the timeout
    cold_starts: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RoutePoller:
    """The event source mapping of one route."""

    def __init__(self, route: Route, resources: Resources, settings: PipelineSettings, root: Path) -> None:
        self.route = route
        self.queue: RouteResources = resources.routes[route.name]
        self.region = resources.region
        self.account_id = resources.account_id
        self.batch_size = settings.batch_size
        self.max_concurrency = route.max_concurrency(settings)
        self._counters = RouteStats()
        self._counters_lock = threading.Lock()
        self.environments = ExecutionEnvironments(route, root)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"medscribe-{route.name}")
        self._receiver = BackgroundLoop(f"{route.name}-poller", self._receive_once)
        self.visibility_seconds = settings.local_visibility_timeout_seconds
        self._running: dict[str, tuple[list[dict[str, Any]], float]] = {}  # request id -> (messages, deadline)
        self._running_lock = threading.Lock()
        self._heartbeat = BackgroundLoop(f"{route.name}-visibility", self._extend_visibility,
                                         pause_seconds=self.visibility_seconds / 3)

    def prewarm(self) -> None:
        """Load one execution environment now, so a handler that cannot start fails `up`, not a message."""
        self.environments.release(self.environments.acquire())

    def stats(self) -> RouteStats:
        with self._counters_lock:
            return RouteStats(**{**asdict(self._counters), "cold_starts": self.environments.cold_starts})

    def start(self) -> None:
        self._receiver.start()
        self._heartbeat.start()

    def signal_stop(self) -> None:
        self._receiver.signal_stop()
        self._heartbeat.signal_stop()

    def join(self) -> None:
        self._receiver.join()
        self._executor.shutdown(wait=True)
        self._heartbeat.join()

    def _extend_visibility(self) -> None:
        """Keep the messages of running invocations invisible until their function timeout."""
        now = time.monotonic()
        with self._running_lock:
            batches = [messages for messages, deadline in self._running.values() if deadline > now]
        for messages in batches:
            aws_clients.client("sqs").change_message_visibility_batch(
                QueueUrl=self.queue.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"],
                          "VisibilityTimeout": self.visibility_seconds} for i, m in enumerate(messages)],
            )  # an entry that fails (its invocation just ended) needs nothing

    def _receive_once(self) -> None:
        if not self._slots.acquire(timeout=SLOT_WAIT_SECONDS):
            return  # every invocation slot is busy: leave the messages in the queue
        try:
            messages = aws_clients.client("sqs").receive_message(
                QueueUrl=self.queue.queue_url, MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS, AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
        except BaseException:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return
        self._executor.submit(self._invoke_and_release, messages)

    def _invoke_and_release(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._invoke(messages)
        except Exception as exc:  # a bug here must not kill the worker thread silently
            log.error("route %s: poller error %s", self.route.name, type(exc).__name__)
        finally:
            self._slots.release()

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_event_record(m, self.queue.queue_arn, self.region) for m in messages]}
        batch_ids = frozenset(m["MessageId"] for m in messages)
        handler = self.environments.acquire()  # a cold start, like Lambda's init, is not part of the timeout
        context = LocalLambdaContext(
            function_name=self.queue.function_name,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.queue.function_name}",
            memory_limit_in_mb=self.route.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.route.timeout_seconds,
            log_group_name=f"/aws/lambda/{self.queue.function_name}",
        )
        counters = self._counters
        with self._counters_lock:
            counters.invocations += 1
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        with self._running_lock:
            self._running[context.aws_request_id] = (messages, context.deadline)
        try:
            failed = self._run(handler, event, context, batch_ids)
        finally:
            with self._running_lock:
                del self._running[context.aws_request_id]
            self.environments.release(handler)
            with self._counters_lock:
                counters.in_flight -= 1
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        self._delete(succeeded)
        with self._counters_lock:
            counters.messages_ok += len(succeeded)
            counters.messages_failed += len(failed)
            counters.failed_invocations += int(failed == batch_ids)

    def _run(
        self, handler: Handler, event: dict[str, Any], context: LocalLambdaContext,
        batch_ids: frozenset[str],
    ) -> frozenset[str]:
        try:
            response = handler(event, context)
        except Exception as exc:
            log.warning(
                "route %s: invocation %s raised %s; the whole batch of %d returns to the queue",
                self.route.name, context.aws_request_id, type(exc).__name__, len(batch_ids),
            )
            return batch_ids
        if context.get_remaining_time_in_millis() == 0:
            log.warning(
                "route %s: invocation %s ran past the %d s timeout; Lambda would have stopped it",
                self.route.name, context.aws_request_id, self.route.timeout_seconds,
            )
            return batch_ids
        return failed_message_ids(response, batch_ids)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        response = aws_clients.client("sqs").delete_message_batch(
            QueueUrl=self.queue.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        if response.get("Failed"):
            log.warning(
                "route %s: %d deletes failed (receipt expired?); those messages will be delivered again",
                self.route.name, len(response["Failed"]),
            )


class ScheduleTimer:
    """The schedule of one ScheduleTrigger route: its message into the route's queue, at start and
    then every `local_interval_setting` seconds, until stopped."""

    def __init__(self, route: Route, resources: Resources, settings: PipelineSettings) -> None:
        if not isinstance(route.trigger, ScheduleTrigger):
            raise TypeError(f"route {route.name} has no schedule")
        self.route = route
        self.interval_seconds = float(getattr(settings, route.trigger.local_interval_setting))
        self.queue_url = resources.routes[route.name].queue_url
        self._body = route.trigger.message.model_dump_json()
        self.sent = 0
        self.loop = BackgroundLoop(f"{route.name}-schedule", self._send, pause_seconds=self.interval_seconds)

    def _send(self) -> None:
        aws_clients.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=self._body)
        self.sent += 1


class StreamPump:
    """The EventBridge Pipe of one StreamTrigger route: table stream -> filter -> keys -> route queue.

    Reads every shard from its start (TRIM_HORIZON: the emulator's table is new with each runtime)
    and follows each shard's iterator; records leave in stream order."""

    def __init__(self, route: Route, resources: Resources) -> None:
        if not isinstance(route.trigger, StreamTrigger):
            raise TypeError(f"route {route.name} has no stream trigger")
        self.route = route
        self.item_types = route.trigger.item_types
        self.queue_url = resources.routes[route.name].queue_url
        self.stream_arn = str(aws_clients.client("dynamodb").describe_table(
            TableName=resources.table)["Table"]["LatestStreamArn"])
        self._iterators: dict[str, str | None] = {}
        self.sent = 0
        self.loop = BackgroundLoop(f"{route.name}-stream", self._pump, pause_seconds=STREAM_POLL_SECONDS)

    def _pump(self) -> None:
        streams = aws_clients.client("dynamodbstreams")
        for shard in streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", []):
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON",
                )["ShardIterator"]
        for shard_id, iterator in list(self._iterators.items()):
            while iterator:
                response = streams.get_records(ShardIterator=iterator, Limit=100)
                messages = [m for record in response.get("Records", [])
                            if (m := stream_message(record, self.item_types)) is not None]
                self._send(messages)
                # the iterator moves on only once its records are in the queue (nothing lost)
                self._iterators[shard_id] = iterator = response.get("NextShardIterator")
                if not response.get("Records"):
                    break

    def _send(self, messages: list[StreamMessage]) -> None:
        sqs = aws_clients.client("sqs")
        for start in range(0, len(messages), 10):
            batch = messages[start:start + 10]
            response = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "MessageBody": body.model_dump_json()} for n, body in enumerate(batch)])
            if response.get("Failed"):
                raise RuntimeError(f"{len(response['Failed'])} stream messages not sent")
            self.sent += len(batch)
