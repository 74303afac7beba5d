"""Transcript handler.

Trigger: SQS queue fed by the EventBridge rule for "Transcribe Job State Change" (COMPLETED, FAILED;
job names starting "medscribe-"), see medscribe.routes.
Side effects: for this stage's jobs, GetTranscriptionJob; COMPLETED -> numbered lines JSON, tscribe
CSV and DOCX in the artifacts bucket and status TRANSCRIBED; FAILED -> status FAILED with the
service's reason and a notification (ids and reason only). Then waiting audio is started.
Idempotency key: the job name (= stage prefix + encounter id); only a TRANSCRIBING encounter moves.
"""

from __future__ import annotations

from functools import partial

from medscribe.handlers import sqs_batch_handler
from medscribe.messages import TranscribeJobStateChange, parse
from medscribe.services.wiring import transcription_service

SERVICE = transcription_service()


def record_handler(event: TranscribeJobStateChange) -> None:
    SERVICE.complete_job(event.detail.TranscriptionJobName)


handler = sqs_batch_handler(partial(parse, TranscribeJobStateChange), record_handler)
