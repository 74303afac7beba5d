"""Ingest handler.

Trigger: SQS queue fed by S3 ObjectCreated notifications for the input bucket prefixes
audio/, text/, ground-truth/, keywords/ (see medscribe.routes).
Side effects: one encounter record per object revision (RECEIVED, or REJECTED with a reason); for
accepted audio, a transcription job when a slot is free (status TRANSCRIBING).
Idempotency key: the encounter id = hash(bucket, decoded key, version id or ETag); the record is
created with a conditional write, events are ordered per key by S3 sequencer, and the job name
derives from the encounter id.
Failures: a transient error fails only its own SQS message (ReportBatchItemFailures).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from medscribe.domain.encounter import ObjectRef
from medscribe.handlers import sqs_batch_handler
from medscribe.observability import logger
from medscribe.services.wiring import ingest_service

SERVICE = ingest_service()


def object_refs(body: dict[str, Any]) -> list[ObjectRef]:
    """The objects an S3 notification names; none for s3:TestEvent."""
    if body.get("Event") == "s3:TestEvent":
        logger.info("ignored s3:TestEvent")
        return []
    refs = []
    for record in S3Event(body).records:
        if not record.event_name.startswith("ObjectCreated:"):
            continue
        obj = record.s3.get_object.raw_event
        refs.append(ObjectRef.from_event(
            bucket=record.s3.bucket.name, raw_key=obj["key"], size=obj.get("size"), etag=obj.get("eTag"),
            version_id=obj.get("versionId"), sequencer=obj.get("sequencer"),
        ))
    return refs


def record_handler(record: SQSRecord) -> None:
    for ref in object_refs(json.loads(record.body)):
        SERVICE.ingest(ref)


handler = sqs_batch_handler(record_handler)
