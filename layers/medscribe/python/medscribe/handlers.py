"""The one shape of every SQS-triggered handler: Powertools decorators around a batch processor
that reports partial failures (ReportBatchItemFailures). Handlers supply only `record_handler`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from medscribe.invocation import invocation
from medscribe.observability import logger, metrics, tracer

SqsHandler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]


def sqs_batch_handler(record_handler: Callable[[SQSRecord], None]) -> SqsHandler:
    """A Lambda handler for an SQS event source: each record through `record_handler`; a record that
    raises is reported in batchItemFailures (and retried by SQS); events and responses never logged."""
    processor = BatchProcessor(event_type=EventType.SQS)  # one per handler module (not thread-safe)
    traced = tracer.capture_method(capture_response=False)(record_handler)

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        with invocation(context):
            return process_partial_response(event=event, record_handler=traced, processor=processor, context=context)

    return cast(SqsHandler, handler)  # Powertools' decorators are untyped


def sqs_bulk_handler(batch_handler: Callable[[list[SQSRecord]], set[str]]) -> SqsHandler:
    """A Lambda handler for an SQS event source whose records are handled together (one bulk request):
    `batch_handler` returns the message ids that failed, reported in batchItemFailures and retried."""

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        records = [SQSRecord(raw) for raw in event.get("Records", [])]
        with invocation(context):
            failed = batch_handler(records)
        failures: list[PartialItemFailures] = [{"itemIdentifier": record.message_id}
                                               for record in records if record.message_id in failed]
        return {"batchItemFailures": failures}

    return cast(SqsHandler, handler)
