"""Reconcile handler.

Trigger: SQS queue fed by a schedule (EventBridge Scheduler in AWS, a timer in the local runtime)
with the message {"task": "reconcile"}, see medscribe.routes.
Side effects: encounters TRANSCRIBING for longer than `stuck_after_seconds` are checked with
Transcribe: finished jobs are completed as the transcript handler would (lost completion events),
missing jobs are started again; waiting RECEIVED audio is started while slots are free.
Idempotency key: none needed; every action is a conditional transition.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from medscribe.observability import logger, metrics, tracer
from medscribe.services.wiring import transcription_service

SERVICE = transcription_service()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method(capture_response=False)
def record_handler(record: SQSRecord) -> None:
    task = json.loads(record.body).get("task")
    if task != "reconcile":
        raise ValueError("unknown task")
    SERVICE.reconcile()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
