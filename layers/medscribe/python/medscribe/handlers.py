"""The one shape of every SQS-triggered handler: Powertools decorators around a batch processor
that reports partial failures (ReportBatchItemFailures). Handlers supply how a body parses into its
message (medscribe.messages) and what to do with the message.

A record whose body never parses (not JSON, the wrong shape, no ids) is permanent for that record
alone: it is logged by message id (never the body: it may hold PHI), counted in the
`MalformedMessages` metric and not reported as a batch item failure, so SQS deletes it instead of
delivering it again until it reaches the dead-letter queue. Its neighbours are processed as usual."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from medscribe.invocation import invocation
from medscribe.messages import MalformedMessage
from medscribe.observability import logger, metrics, tracer

SqsHandler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]
M = TypeVar("M")


def sqs_batch_handler(parse: Callable[[str], M], record_handler: Callable[[M], None]) -> SqsHandler:
    """A Lambda handler for an SQS event source: each record's body through `parse`, its message through
    `record_handler`; a record that raises is reported in batchItemFailures (and retried by SQS), a
    malformed one is dropped (see the module); events and responses never logged."""
    processor = BatchProcessor(event_type=EventType.SQS)  # one per handler module (not thread-safe)
    handle = tracer.capture_method(capture_response=False)(record_handler)

    def traced(record: SQSRecord) -> None:
        message = parsed(record, parse)
        if message is not None:
            handle(message)

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        with invocation(context):
            return process_partial_response(event=event, record_handler=traced, processor=processor, context=context)

    return cast(SqsHandler, handler)  # Powertools' decorators are untyped


def sqs_bulk_handler(parse: Callable[[str], M], batch_handler: Callable[[dict[str, M]], set[str]]) -> SqsHandler:
    """A Lambda handler for an SQS event source whose records are handled together (one bulk request):
    `batch_handler` gets the parsed messages by message id (malformed ones dropped, see the module) and
    returns the message ids that failed, reported in batchItemFailures and retried."""

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        records = [SQSRecord(raw) for raw in event.get("Records", [])]
        with invocation(context):
            failed = batch_handler(
                {record.message_id: message for record in records if (message := parsed(record, parse)) is not None}
            )
        failures: list[PartialItemFailures] = [{"itemIdentifier": record.message_id}
                                               for record in records if record.message_id in failed]
        return {"batchItemFailures": failures}

    return cast(SqsHandler, handler)


def parsed(record: SQSRecord, parse: Callable[[str], M]) -> M | None:
    """The record's message, or None for a malformed record: logged by message id, counted, dropped."""
    try:
        return parse(record.body)
    except MalformedMessage as error:
        logger.warning("dropped a malformed message", extra={
            "message_id": record.message_id, "expected": error.kind, "problems": error.problems,
        })
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=1)
        return None
