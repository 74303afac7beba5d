"""Document handler.

Trigger: SQS queue fed by the EventBridge rule for "Encounter Ready For Documentation" (source
"medscribe"; emitted after TRANSCRIBED audio and RECEIVED text notes, and re-emitted by the
reconciler), see medscribe.routes.
Side effects: notes/<id>/note.json (clinical note with verified line citations) or emr.json (EMR
record) and review.html in the artifacts bucket; status DOCUMENTED or NEEDS_REVIEW.
Idempotency key: the encounter id; only an encounter still waiting (TRANSCRIBED audio, RECEIVED
text) moves, and outputs are written to fixed keys.
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
from medscribe.services.wiring import documentation_stage

SERVICE = documentation_stage()
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method(capture_response=False)
def record_handler(record: SQSRecord) -> None:
    event = EventBridgeEvent(json.loads(record.body))
    SERVICE.document(str(event.detail["encounter_id"]))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
