"""Index handler.

Trigger: SQS queue fed by the table's DynamoDB stream through an EventBridge Pipe (a stream poller in
the local runtime) that passes encounter items only and sends their keys, never the item; see
medscribe.routes (StreamTrigger, STREAM_MESSAGE_TEMPLATE).
Side effects: one bulk request to the search index (Amazon OpenSearch Service in AWS, SQLite FTS5
locally; MEDSCRIBE_SEARCH_URL): each encounter's current record and text upserted, or deleted when
the record is gone.
Idempotency key: the encounter id (the document id); the handler indexes the record as it is now,
so repeated or reordered messages leave the same document. Failed encounters are reported as
batch item failures and retried on their own.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from medscribe.handlers import sqs_bulk_handler
from medscribe.observability import logger
from medscribe.services.indexing import encounter_id_of
from medscribe.services.wiring import indexing_service

SERVICE = indexing_service()


def batch_handler(records: list[SQSRecord]) -> set[str]:
    """Index every encounter named in the batch; returns the message ids to retry."""
    by_encounter: dict[str, list[str]] = {}
    for record in records:
        try:
            encounter_id = encounter_id_of(json.loads(record.body))
        except (ValueError, AttributeError):
            encounter_id = None
        if encounter_id is None:
            logger.warning("ignored a message that names no encounter", extra={"message_id": record.message_id})
            continue
        by_encounter.setdefault(encounter_id, []).append(record.message_id)
    failed = SERVICE.sync(by_encounter)
    return {message_id for encounter_id in failed for message_id in by_encounter[encounter_id]}


handler = sqs_bulk_handler(batch_handler)
