"""Transcript handler.

Trigger: SQS queue fed by the EventBridge rule for "Transcribe Job State Change" (COMPLETED, FAILED;
job names starting "medscribe-"), see medscribe.routes.
Side effects: for this stage's jobs, GetTranscriptionJob; COMPLETED -> numbered lines JSON, tscribe
CSV and DOCX in the artifacts bucket and status TRANSCRIBED; FAILED -> status FAILED with the
service's reason and a notification (ids and reason only). Then waiting audio is started.
Idempotency key: the job name (= stage prefix + encounter id); only a TRANSCRIBING encounter moves.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from medscribe.observability import logger, metrics, tracer
from medscribe.services.wiring import transcription_service

SERVICE = transcription_service()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method(capture_response=False)
def record_handler(record: SQSRecord) -> None:
    event = EventBridgeEvent(json.loads(record.body))
    SERVICE.complete_job(str(event.detail["TranscriptionJobName"]))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
