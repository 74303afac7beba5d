"""Reconcile handler.

Trigger: SQS queue fed by a schedule (EventBridge Scheduler in AWS, a timer in the local runtime)
with the message {"task": "reconcile"}, see medscribe.routes.
Side effects: encounters TRANSCRIBING for longer than `stuck_after_seconds` are checked with
Transcribe: finished jobs are completed as the transcript handler would (lost completion events),
missing jobs are started again; waiting RECEIVED audio is started while slots are free; lost "ready"
events are sent again: for documentation (TRANSCRIBED audio, RECEIVED text) and for entities
(documented encounters without entities, within `entities_reconcile_hours`).
Idempotency key: none needed; every action is a conditional transition.
"""

from __future__ import annotations

from functools import partial

from medscribe.handlers import sqs_batch_handler
from medscribe.messages import ReconcileTick, parse
from medscribe.services.wiring import transcription_service

SERVICE = transcription_service()


def record_handler(_tick: ReconcileTick) -> None:
    SERVICE.reconcile()


handler = sqs_batch_handler(partial(parse, ReconcileTick), record_handler)
