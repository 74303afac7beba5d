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

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from medscribe.handlers import sqs_batch_handler
from medscribe.services.wiring import transcription_service

SERVICE = transcription_service()


def record_handler(record: SQSRecord) -> None:
    event = EventBridgeEvent(json.loads(record.body))
    SERVICE.complete_job(str(event.detail["TranscriptionJobName"]))


handler = sqs_batch_handler(record_handler)
