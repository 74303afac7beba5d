"""Score handler.

Trigger: SQS queue fed by the EventBridge rule for "Encounter Ready For Scoring" (source "medscribe";
emitted when a transcription completes and when a ground truth is received), see medscribe.routes.
Side effects: per complete (transcript, ground truth) pair, a score record (numbers only) in the
table and the missed words in scores/<id>/<model>.json; per batch, a CSV report under
reports/scores/ and one SNS email with ids, numbers and the leaderboard.
Idempotency key: (encounter id, model) — a repeated event rewrites the same score record. An encounter
whose scoring fails transiently is retried on its own (batch item failure); one that can never be
scored (e.g. its transcript is gone) is logged as not scored and dropped.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from medscribe.handlers import sqs_bulk_handler
from medscribe.services.wiring import scoring_service

SERVICE = scoring_service()


def batch_handler(records: list[SQSRecord]) -> set[str]:
    """Score the pairs of every encounter in the batch as one run (one report, one email); returns the
    message ids of the encounters to retry."""
    ids = {record.message_id: str(EventBridgeEvent(json.loads(record.body)).detail["encounter_id"])
           for record in records}
    _rows, retry = SERVICE.score_encounters(ids.values())
    return {message_id for message_id, encounter_id in ids.items() if encounter_id in retry}


handler = sqs_bulk_handler(batch_handler)
