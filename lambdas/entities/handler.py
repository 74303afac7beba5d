"""Entities handler.

Trigger: SQS queue fed by the EventBridge rule for "Encounter Ready For Entities" (source "medscribe";
emitted by the documentation stage when an encounter is DOCUMENTED or NEEDS_REVIEW, and re-emitted by
the reconciler for documented encounters without entities), see medscribe.routes.
Side effects: entities/<id>.json (clinical entities with codes and line spans), the redacted copies
redacted/<id>/{transcript,note,emr}.json (offline rules; DetectPHI for English with Comprehend Medical)
and the review page drawn again with the entities, in the artifacts bucket; the encounter's
entity_count and entity_codes ("system:code", no text).
Idempotency key: the encounter id; the artifact keys are fixed and the encounter update replaces the
previous summary (on condition the encounter is still documented).
"""

from __future__ import annotations

from functools import partial

from medscribe.handlers import sqs_batch_handler
from medscribe.messages import EncounterEvent, parse
from medscribe.services.wiring import entities_stage

SERVICE = entities_stage()


def record_handler(event: EncounterEvent) -> None:
    SERVICE.extract(event.detail.encounter_id)


handler = sqs_batch_handler(partial(parse, EncounterEvent), record_handler)
