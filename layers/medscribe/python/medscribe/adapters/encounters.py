"""DynamoDB access for encounter records (single table; see README "Data model").

Items:
  encounter  pk=ENC#<encounter_id>  sk=ENC   status/updated_at (GSI by-status), created_day/created_at
                                             (GSI by-day), folder/created_at (GSI by-folder), source and
                                             verdict fields, pointers to the note/transcript artifacts
  source     pk=SRC#<source_id>     sk=SRC   the highest S3 sequencer seen for a key (event ordering);
                                             transient: expires_at (TTL) SOURCE_TTL_DAYS after the last event
  slots      pk=SLOTS#transcribe    sk=SLOTS in_flight: transcription jobs holding a slot (the job cap)
  content    pk=CON#<content_id>    sk=CON   the encounter that holds one content of one key: content_id =
                                             sha256(bucket, key, checksum or ETag), so the item names no key
                                             and no text; encounter_id, claimed_at. An identical re-upload
                                             finds it and is that encounter (ingest), not a new one. No TTL:
                                             a folder re-run a year later is still the same content.

The GSIs are sparse: only encounter items carry their keys.

A slot is taken and released in the same transaction as the status change it belongs to
(RECEIVED -> TRANSCRIBING takes one; TRANSCRIBING -> TRANSCRIBED/FAILED gives it back), so the count
can neither leak nor double-count when events repeat.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify, error_code
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef, utc_now

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"
# SQS keeps a message at most 14 days, so no S3 event older than that can still arrive: a source
# record's sequencer is useless after it and expires.
SOURCE_TTL_DAYS = 30
# a content claim whose encounter record is still missing after this long was erased (or its ingest
# died for good): the next identical upload takes the claim over instead of waiting for it forever
CONTENT_CLAIM_GRACE_SECONDS = 900
# the longest date range `created_between` will walk, one by-day partition per day
MAX_DAYS_PER_QUERY = 366


@dataclass(frozen=True)
class Index:
    """A global secondary index: its name and (partition, sort) attributes; projection ALL."""

    name: str
    partition: str
    sort: str


STATUS_INDEX = Index("by-status", "status", "updated_at")  # stuck work, listing by status
DAY_INDEX = Index("by-day", "created_day", "created_at")  # a date range: one partition per UTC day
FOLDER_INDEX = Index("by-folder", "folder", "created_at")  # everything from one source folder
INDEXES = (STATUS_INDEX, DAY_INDEX, FOLDER_INDEX)
_ser = TypeSerializer()
_de = TypeDeserializer()


SLOTS_KEY = {"pk": "SLOTS#transcribe", "sk": "SLOTS"}


class Acquire(StrEnum):
    ACQUIRED = "acquired"  # slot taken, status now TRANSCRIBING
    AT_CAPACITY = "at-capacity"  # every slot is taken; the encounter stays RECEIVED
    NOT_WAITING = "not-waiting"  # the encounter is not RECEIVED (already started, or finished)


class EventOrder(StrEnum):
    FIRST = "first"  # first event seen for this key, or newer than any seen
    REPEAT = "repeat"  # the same event again (same sequencer)
    STALE = "stale"  # older than an event already processed for this key


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    clean = {k: (Decimal(str(v)) if isinstance(v, float) else v) for k, v in values.items() if v is not None}
    return {k: _ser.serialize(v) for k, v in clean.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def encounter_from_item(item: dict[str, Any]) -> Encounter:
    data = from_item(item)
    return Encounter(
        encounter_id=data["encounter_id"],
        kind=Kind(data["kind"]) if data.get("kind") else None,
        status=EncounterStatus(data["status"]),
        source_bucket=data["source_bucket"],
        source_key=data["source_key"],
        revision=data["revision"],
        size=int(data["size"]),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        reason=data.get("reason"),
        media_format=data.get("media_format"),
        duration_seconds=float(data["duration_seconds"]) if data.get("duration_seconds") is not None else None,
        job_name=data.get("job_name"),
        run=int(data["run"]) if data.get("run") is not None else None,
        transcript_key=data.get("transcript_key"),
        artifacts=dict(data["artifacts"]) if data.get("artifacts") else None,
        line_count=int(data["line_count"]) if data.get("line_count") is not None else None,
        speakers=int(data["speakers"]) if data.get("speakers") is not None else None,
        language_code=data.get("language_code"),
        note_key=data.get("note_key"),
        review_key=data.get("review_key"),
        note_engine=data.get("note_engine"),
        problem_count=int(data["problem_count"]) if data.get("problem_count") is not None else None,
        model=data.get("model"),
        entities_key=data.get("entities_key"),
        entity_count=int(data["entity_count"]) if data.get("entity_count") is not None else None,
        entity_codes=tuple(data["entity_codes"]) if data.get("entity_codes") is not None else None,
        note_template=data.get("note_template"), language=data.get("language"),
    )


def _cancellation_codes(exc: ClientError) -> list[str]:
    return [str(reason.get("Code", "")) for reason in exc.response.get("CancellationReasons", [])]


def table_definition(table_name: str) -> dict[str, Any]:
    """`CreateTable` arguments for the local runtime and tests; stacks/ builds the same from `INDEXES`."""
    keys = dict.fromkeys([PARTITION_KEY, SORT_KEY, *(a for i in INDEXES for a in (i.partition, i.sort))])
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in keys],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [{
            "IndexName": index.name,
            "KeySchema": [{"AttributeName": index.partition, "KeyType": "HASH"},
                          {"AttributeName": index.sort, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        } for index in INDEXES],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def content_id(ref: ObjectRef, fingerprint: str) -> str:
    """Id of one content of one key (hashed as encounter and source ids are: no key text in the item)."""
    return "con-" + hashlib.sha256("\x1f".join((ref.bucket, ref.key, fingerprint)).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ContentClaim:
    encounter_id: str
    claimed_at: str


def source_folder(key: str) -> str:
    """The folder part of an object key ("audio/clinic-a/x.wav" -> "audio/clinic-a"; "x.wav" -> "")."""
    return key.rsplit("/", 1)[0] if "/" in key else ""


def _expires_at(days: int) -> int:
    return int((datetime.now(UTC) + timedelta(days=days)).timestamp())


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ValueError(f"not a date (YYYY-MM-DD or ISO-8601 time): {value!r}") from exc


class EncounterRepository(aws_clients.TableClient):
    def order_event(self, ref: ObjectRef) -> EventOrder:
        """Record this event's sequencer for its key unless a later one was already recorded."""
        if ref.sequencer is None:
            return EventOrder.FIRST
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"pk": f"SRC#{ref.source_id}", "sk": "SRC"}),
                UpdateExpression="SET #seq = :seq, encounter_id = :enc, updated_at = :now, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#seq) OR #seq <= :seq",
                ExpressionAttributeNames={"#seq": "sequencer", "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues=to_item({
                    ":seq": ref.sequencer, ":enc": ref.encounter_id, ":now": utc_now(),
                    ":ttl": _expires_at(SOURCE_TTL_DAYS),
                }),
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return EventOrder.STALE
            raise classify(exc) from exc
        old = from_item(response.get("Attributes", {})).get("sequencer")
        return EventOrder.REPEAT if old == ref.sequencer else EventOrder.FIRST

    def _content_key(self, ref: ObjectRef, fingerprint: str) -> dict[str, Any]:
        return to_item({"pk": f"CON#{content_id(ref, fingerprint)}", "sk": "CON"})

    def claim_content(self, ref: ObjectRef, fingerprint: str, *, replacing: str | None = None) -> ContentClaim:
        """Record `ref`'s encounter as the holder of this content of this key unless one already is
        (or, with `replacing`, unless the holder is no longer that encounter); returns the holder."""
        claim = ContentClaim(ref.encounter_id, utc_now())
        condition = "attribute_not_exists(pk)" + (" OR encounter_id = :old" if replacing else "")
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={**self._content_key(ref, fingerprint),
                      **to_item({"encounter_id": claim.encounter_id, "claimed_at": claim.claimed_at})},
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": to_item({":old": replacing})} if replacing else {}),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise classify(exc) from exc
            holder = self.content_holder(ref, fingerprint)
            if holder is None:  # released in between: claim again
                return self.claim_content(ref, fingerprint)
            return holder
        return claim

    def content_holder(self, ref: ObjectRef, fingerprint: str) -> ContentClaim | None:
        try:
            response = self.client.get_item(TableName=self.table_name, Key=self._content_key(ref, fingerprint),
                                            ConsistentRead=True)
        except ClientError as exc:
            raise classify(exc) from exc
        data = from_item(response.get("Item", {}))
        return ContentClaim(data["encounter_id"], data["claimed_at"]) if data else None

    def restart(self, encounter: Encounter) -> Encounter | None:
        """`encounter` (as read) -> RECEIVED for a deliberate re-run: its run number goes up by one
        and its reason and job name are cleared; None when its status changed since it was read."""
        run = (encounter.run or 1) + 1
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._encounter_key(encounter.encounter_id),
                UpdateExpression=("SET #s = :to, updated_at = :now, #run = :run REMOVE reason, job_name, "
                                  "entities_key, entity_count, entity_codes, entities_at"),
                ConditionExpression="#s = :from AND updated_at = :seen",
                ExpressionAttributeNames={"#s": "status", "#run": "run"},
                ExpressionAttributeValues=to_item({
                    ":to": EncounterStatus.RECEIVED.value, ":from": encounter.status.value, ":now": utc_now(),
                    ":run": run, ":seen": encounter.updated_at,
                }),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise classify(exc) from exc
        return self.get(encounter.encounter_id)

    def create(self, encounter: Encounter) -> bool:
        """Create the record unless it exists; False means it already did (a duplicate event)."""
        values = {
            "pk": f"ENC#{encounter.encounter_id}", "sk": "ENC",
            "encounter_id": encounter.encounter_id,
            "kind": encounter.kind.value if encounter.kind else None,
            "status": encounter.status.value,
            "source_bucket": encounter.source_bucket, "source_key": encounter.source_key,
            "revision": encounter.revision, "size": encounter.size,
            "created_at": encounter.created_at, "updated_at": encounter.updated_at,
            # a key at the bucket root has no folder: no by-folder entry (an index key cannot be "")
            "created_day": encounter.created_at[:10], "folder": source_folder(encounter.source_key) or None,
            "reason": encounter.reason, "media_format": encounter.media_format, "language": encounter.language,
            "duration_seconds": encounter.duration_seconds, "note_template": encounter.note_template,
        }
        try:
            self.client.put_item(
                TableName=self.table_name, Item=to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def _encounter_key(self, encounter_id: str) -> dict[str, Any]:
        return to_item({"pk": f"ENC#{encounter_id}", "sk": "ENC"})

    def acquire_slot(self, encounter_id: str, *, cap: int, job_name: str) -> Acquire:
        """RECEIVED -> TRANSCRIBING while taking one of `cap` transcription slots, atomically."""
        now = utc_now()
        try:
            self.client.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self.table_name, "Key": to_item(SLOTS_KEY),
                    "UpdateExpression": "SET in_flight = if_not_exists(in_flight, :zero) + :one",
                    "ConditionExpression": "attribute_not_exists(in_flight) OR in_flight < :cap",
                    "ExpressionAttributeValues": to_item({":zero": 0, ":one": 1, ":cap": cap}),
                }},
                {"Update": {
                    "TableName": self.table_name, "Key": self._encounter_key(encounter_id),
                    "UpdateExpression": "SET #s = :to, job_name = :job, updated_at = :now",
                    "ConditionExpression": "#s = :from",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": to_item({
                        ":to": EncounterStatus.TRANSCRIBING.value, ":from": EncounterStatus.RECEIVED.value,
                        ":job": job_name, ":now": now,
                    }),
                }},
            ])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                slots, encounter = [*_cancellation_codes(exc), "", ""][:2]
                if encounter == "ConditionalCheckFailed":
                    return Acquire.NOT_WAITING
                if slots == "ConditionalCheckFailed":
                    return Acquire.AT_CAPACITY
            raise classify(exc) from exc
        return Acquire.ACQUIRED

    def finish_transcription(self, encounter_id: str, status: EncounterStatus, **fields: Any) -> bool:
        """TRANSCRIBING -> `status`, setting `fields` and giving the slot back; False if not TRANSCRIBING."""
        present = {name: value for name, value in sorted(fields.items()) if value is not None}
        sets = ["#s = :to", "updated_at = :now", *(f"{name} = :f_{name}" for name in present)]
        values = {":to": status.value, ":from": EncounterStatus.TRANSCRIBING.value, ":now": utc_now(),
                  **{f":f_{name}": value for name, value in present.items()}}
        try:
            self.client.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self.table_name, "Key": to_item(SLOTS_KEY),
                    "UpdateExpression": "SET in_flight = in_flight - :one",
                    "ConditionExpression": "in_flight > :zero",
                    "ExpressionAttributeValues": to_item({":one": 1, ":zero": 0}),
                }},
                {"Update": {
                    "TableName": self.table_name, "Key": self._encounter_key(encounter_id),
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": "#s = :from",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": to_item(values),
                }},
            ])
        except ClientError as exc:
            cancelled = error_code(exc) == "TransactionCanceledException"
            if cancelled and "ConditionalCheckFailed" in _cancellation_codes(exc):
                return False
            raise classify(exc) from exc
        return True

    def transition(self, encounter_id: str, from_status: EncounterStatus, to_status: EncounterStatus,
                   **fields: Any) -> bool:
        """`from_status` -> `to_status` with `fields`; False when the encounter was not in `from_status`."""
        present = {name: value for name, value in sorted(fields.items()) if value is not None}
        sets = ["#s = :to", "updated_at = :now", *(f"{name} = :f_{name}" for name in present)]
        values = {":to": to_status.value, ":from": from_status.value, ":now": utc_now(),
                  **{f":f_{name}": value for name, value in present.items()}}
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._encounter_key(encounter_id),
                UpdateExpression="SET " + ", ".join(sets), ConditionExpression="#s = :from",
                ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues=to_item(values),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def record_entities(self, encounter_id: str, *, entities_key: str, count: int, codes: Sequence[str],
                        engine: str) -> bool:
        """The entities stage's summary (artifact, count, "system:code" codes: no text) on a DOCUMENTED or
        NEEDS_REVIEW encounter, replacing an earlier one; False when it is no longer either. `updated_at`
        is kept: it still says when the note was written (the reconciler's window)."""
        values = {":key": entities_key, ":count": count, ":codes": list(codes), ":engine": engine, ":now": utc_now(),
                  ":documented": EncounterStatus.DOCUMENTED.value, ":review": EncounterStatus.NEEDS_REVIEW.value}
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._encounter_key(encounter_id), ConditionExpression=(
                    "#s IN (:documented, :review)"), ExpressionAttributeNames={"#s": "status"},
                UpdateExpression=("SET entities_key = :key, entity_count = :count, entity_codes = :codes, "
                                  "entity_engine = :engine, entities_at = :now"),
                ExpressionAttributeValues=to_item(values))
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def slots_in_flight(self) -> int:
        response = self.client.get_item(TableName=self.table_name, Key=to_item(SLOTS_KEY), ConsistentRead=True)
        return int(from_item(response.get("Item", {})).get("in_flight", 0))

    def oldest(self, status: EncounterStatus, *, updated_before: str | None = None, updated_after: str | None = None,
               kind: Kind | None = None, without_entities: bool = False, limit: int = 25) -> list[Encounter]:
        """Encounters in `status`, least recently updated first (the by-status index); `without_entities`:
        only those the entities stage has not recorded (the reconciler's re-sends, in a window: documented
        encounters accumulate)."""
        condition = "#s = :s" + (" AND updated_at BETWEEN :after AND :before" if updated_after and updated_before
                                 else " AND updated_at < :before" if updated_before else "")
        values: dict[str, Any] = {":s": status.value}
        values.update({":before": updated_before} if updated_before else {})
        values.update({":after": updated_after} if updated_after and updated_before else {})
        params: dict[str, Any] = {
            "TableName": self.table_name, "IndexName": STATUS_INDEX.name, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "status"}, "ScanIndexForward": True,
        }
        filters = ["attribute_not_exists(entity_count)"] if without_entities else []
        if kind is not None:
            filters.append("kind = :kind")
            values[":kind"] = kind.value
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        params["ExpressionAttributeValues"] = to_item(values)
        return self._paginate(params, limit)

    def _paginate(self, params: dict[str, Any], limit: int) -> builtins.list[Encounter]:
        """The first `limit` encounters a Query returns, page by page. Pages hold at most `limit` items
        (DynamoDB's Limit, applied before any filter): a query for the oldest few must not read the
        whole partition (a burst leaves thousands of RECEIVED records, and every freed slot asks)."""
        found: builtins.list[Encounter] = []
        try:
            pages = self.client.get_paginator("query").paginate(**params, PaginationConfig={"PageSize": limit})
            for page in pages:
                found.extend(encounter_from_item(item) for item in page.get("Items", []))
                if len(found) >= limit:
                    break
        except ClientError as exc:
            raise classify(exc) from exc
        return found[:limit]

    def get(self, encounter_id: str) -> Encounter | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=to_item({"pk": f"ENC#{encounter_id}", "sk": "ENC"}),
                ConsistentRead=True,
            )
        except ClientError as exc:
            raise classify(exc) from exc
        item = response.get("Item")
        return encounter_from_item(item) if item else None

    def list(self, status: EncounterStatus | None = None) -> list[Encounter]:
        """Encounters, newest update first: by the status index when a status is given."""
        if status is not None:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table_name, IndexName=STATUS_INDEX.name,
                KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item({":s": status.value}), ScanIndexForward=False,
            )
        else:
            pages = self.client.get_paginator("scan").paginate(
                TableName=self.table_name, FilterExpression="sk = :sk",
                ExpressionAttributeValues=to_item({":sk": "ENC"}),
            )
        found = [encounter_from_item(item) for page in pages for item in page.get("Items", [])]
        return sorted(found, key=lambda e: e.updated_at, reverse=True)

    def created_between(self, start: str, end: str, *, limit: int = 1000) -> builtins.list[Encounter]:
        """Encounters created from `start` to `end` inclusive (dates or ISO times), oldest first.

        One by-day partition per UTC day, so no single partition takes every write."""
        first, last = _day(start), _day(end)
        if last < first:
            raise ValueError(f"the range ends ({end}) before it starts ({start})")
        days = (last - first).days + 1
        if days > MAX_DAYS_PER_QUERY:
            raise ValueError(f"a date range covers at most {MAX_DAYS_PER_QUERY} days, not {days}")
        low = start if len(start) > 10 else f"{start}T00:00:00.000Z"
        high = end if len(end) > 10 else f"{end}T23:59:59.999Z"
        found: builtins.list[Encounter] = []
        for offset in range(days):
            day = (first + timedelta(days=offset)).isoformat()
            found += self._query(DAY_INDEX, day, since=low, until=high, limit=limit - len(found))
            if len(found) >= limit:
                break
        return found

    def in_folder(self, folder: str, *, since: str | None = None, limit: int = 1000) -> builtins.list[Encounter]:
        """Encounters whose source object is directly in `folder` (e.g. "audio/clinic-a"), oldest first."""
        return self._query(FOLDER_INDEX, folder.strip("/"), since=since, limit=limit)

    def _query(self, index: Index, value: str, *, since: str | None = None, until: str | None = None,
               limit: int) -> builtins.list[Encounter]:
        condition = "#p = :p"
        names = {"#p": index.partition} | ({"#r": index.sort} if since else {})
        values: dict[str, Any] = {":p": value}
        if since and until:
            condition += " AND #r BETWEEN :since AND :until"
            values |= {":since": since, ":until": until}
        elif since:
            condition += " AND #r >= :since"
            values[":since"] = since
        if limit <= 0:
            return []
        return self._paginate({
            "TableName": self.table_name, "IndexName": index.name, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values), "ScanIndexForward": True,
        }, limit)
