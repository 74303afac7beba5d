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

from functools import partial

from medscribe.handlers import sqs_bulk_handler
from medscribe.messages import EncounterEvent, parse
from medscribe.services.wiring import scoring_service

SERVICE = scoring_service()


def batch_handler(events: dict[str, EncounterEvent]) -> set[str]:
    """Score the pairs of every encounter in the batch as one run (one report, one email); returns the
    message ids of the encounters to retry."""
    ids = {message_id: event.detail.encounter_id for message_id, event in events.items()}
    _rows, retry = SERVICE.score_encounters(ids.values())
    return {message_id for message_id, encounter_id in ids.items() if encounter_id in retry}


handler = sqs_bulk_handler(partial(parse, EncounterEvent), batch_handler)
