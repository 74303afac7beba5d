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

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from medscribe.handlers import sqs_batch_handler
from medscribe.services.wiring import documentation_stage

SERVICE = documentation_stage()


def record_handler(record: SQSRecord) -> None:
    event = EventBridgeEvent(json.loads(record.body))
    SERVICE.document(str(event.detail["encounter_id"]))


handler = sqs_batch_handler(record_handler)
