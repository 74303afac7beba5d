"""Document handler.

Trigger: SQS queue fed by the EventBridge rule for "Encounter Ready For Documentation" (source
"medscribe"; emitted after TRANSCRIBED audio and RECEIVED text notes, and re-emitted by the
reconciler), see medscribe.routes.
Side effects: notes/<id>/note.json (clinical note with verified line citations) or emr.json (EMR
record) and review.html in the artifacts bucket; status DOCUMENTED or NEEDS_REVIEW; then an
"Encounter Ready For Entities" event (unless `entity_engine` is off).
Idempotency key: the encounter id; only an encounter still waiting (TRANSCRIBED audio, RECEIVED
text) moves, and outputs are written to fixed keys.
"""

from __future__ import annotations

from functools import partial

from medscribe.handlers import sqs_batch_handler
from medscribe.messages import EncounterEvent, parse
from medscribe.services.wiring import documentation_stage

SERVICE = documentation_stage()


def record_handler(event: EncounterEvent) -> None:
    SERVICE.document(event.detail.encounter_id)


handler = sqs_batch_handler(partial(parse, EncounterEvent), record_handler)
