"""Index handler.

Trigger: SQS queue fed by the table's DynamoDB stream through an EventBridge Pipe (a stream poller in
the local runtime) that passes encounter items and note heads (a clinician's save or signature) only
and sends their keys, never the item; see
medscribe.routes (StreamTrigger, STREAM_MESSAGE_TEMPLATE).
Side effects: one bulk request to the search index (Amazon OpenSearch Service in AWS, SQLite FTS5
locally; MEDSCRIBE_SEARCH_URL): each encounter's current record and text upserted, or deleted when
the record is gone.
Idempotency key: the encounter id (the document id); the handler indexes the record as it is now,
so repeated or reordered messages leave the same document. Failed encounters are reported as
batch item failures and retried on their own; a message that names no encounter item is malformed
(the Pipe passes encounter items and note heads only) and dropped alone (medscribe.handlers).
"""

from __future__ import annotations

from medscribe.handlers import sqs_bulk_handler
from medscribe.messages import MalformedMessage, StreamMessage, parse
from medscribe.services.indexing import encounter_id_of
from medscribe.services.wiring import indexing_service

SERVICE = indexing_service()


def encounter_named(body: str) -> str:
    """The encounter a stream message is about."""
    encounter_id = encounter_id_of(parse(StreamMessage, body).model_dump())
    if encounter_id is None:
        raise MalformedMessage(StreamMessage.__name__, ["pk, sk: not an encounter item or note head"])
    return encounter_id


def batch_handler(encounters: dict[str, str]) -> set[str]:
    """Index every encounter named in the batch (message id -> encounter id); returns the message ids to retry."""
    by_encounter: dict[str, list[str]] = {}
    for message_id, encounter_id in encounters.items():
        by_encounter.setdefault(encounter_id, []).append(message_id)
    failed = SERVICE.sync(by_encounter)
    return {message_id for encounter_id in failed for message_id in by_encounter[encounter_id]}


handler = sqs_bulk_handler(encounter_named, batch_handler)
