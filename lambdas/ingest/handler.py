"""Ingest handler.

Trigger: SQS queue fed by S3 ObjectCreated notifications for the input bucket prefixes
audio/, text/, ground-truth/, keywords/ (see medscribe.routes).
Side effects: one encounter record per object revision (RECEIVED, or REJECTED with a reason); for
accepted audio, a transcription job when a slot is free (status TRANSCRIBING).
Idempotency key: the encounter id = hash(bucket, decoded key, version id or ETag); the record is
created with a conditional write, events are ordered per key by S3 sequencer, and the job name
derives from the encounter id. The same bytes re-uploaded under the same key (a new version) are
the existing encounter: hash(bucket, key, checksum or ETag) is claimed once (EncounterRepository.
claim_content), so no second record, job or note.
Failures: a transient error fails only its own SQS message (ReportBatchItemFailures); a malformed
message is dropped alone (medscribe.handlers).
"""

from __future__ import annotations

from functools import partial

from medscribe.domain.encounter import ObjectRef
from medscribe.handlers import sqs_batch_handler
from medscribe.messages import S3Message, S3TestEvent, parse
from medscribe.observability import logger
from medscribe.services.wiring import ingest_service

SERVICE = ingest_service()


def object_refs(message: S3Message) -> list[ObjectRef]:
    """The objects an S3 notification names; none for s3:TestEvent."""
    notification = message.root
    if isinstance(notification, S3TestEvent):
        logger.info("ignored s3:TestEvent")
        return []
    return [
        ObjectRef.from_event(
            bucket=record.s3.bucket.name, raw_key=record.s3.object.key, size=record.s3.object.size,
            etag=record.s3.object.eTag, version_id=record.s3.object.versionId, sequencer=record.s3.object.sequencer,
        )
        for record in notification.Records
        if record.eventName.startswith("ObjectCreated:")
    ]


def record_handler(message: S3Message) -> None:
    for ref in object_refs(message):
        SERVICE.ingest(ref)


handler = sqs_batch_handler(partial(parse, S3Message), record_handler)
