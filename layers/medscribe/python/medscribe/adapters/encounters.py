"""DynamoDB access for encounter records (single table; see README "Data model").

Items:
  encounter  pk=ENC#<encounter_id>  sk=ENC   status, updated_at (GSI by-status), source and verdict fields
  source     pk=SRC#<source_id>     sk=SRC   the highest S3 sequencer seen for a key (event ordering)
"""

from __future__ import annotations

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
STATUS_INDEX = "by-status"
STATUS_INDEX_KEYS = ("status", "updated_at")
TTL_ATTRIBUTE = "expires_at"
_ser = TypeSerializer()
_de = TypeDeserializer()


class EventOrder(StrEnum):
    FIRST = "first"  # first event seen for this key, or newer than any seen
    REPEAT = "repeat"  # the same event again (same sequencer)
    STALE = "stale"  # older than an event already processed for this key


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    clean = {k: (Decimal(str(v)) if isinstance(v, float) else v) for k, v in values.items() if v is not None}
    return {k: _ser.serialize(v) for k, v in clean.items()}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def encounter_from_item(item: dict[str, Any]) -> Encounter:
    data = _from_item(item)
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
    )


def table_definition(table_name: str) -> dict[str, Any]:
    """`CreateTable` arguments for the local runtime and tests; stacks/ builds the same from these names."""
    keys = (PARTITION_KEY, SORT_KEY, *STATUS_INDEX_KEYS)
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in keys],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [{
            "IndexName": STATUS_INDEX,
            "KeySchema": [{"AttributeName": STATUS_INDEX_KEYS[0], "KeyType": "HASH"},
                          {"AttributeName": STATUS_INDEX_KEYS[1], "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


class EncounterRepository:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("dynamodb")

    def order_event(self, ref: ObjectRef) -> EventOrder:
        """Record this event's sequencer for its key unless a later one was already recorded."""
        if ref.sequencer is None:
            return EventOrder.FIRST
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=_to_item({"pk": f"SRC#{ref.source_id}", "sk": "SRC"}),
                UpdateExpression="SET #seq = :seq, encounter_id = :enc, updated_at = :now",
                ConditionExpression="attribute_not_exists(#seq) OR #seq <= :seq",
                ExpressionAttributeNames={"#seq": "sequencer"},
                ExpressionAttributeValues=_to_item(
                    {":seq": ref.sequencer, ":enc": ref.encounter_id, ":now": utc_now()}
                ),
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return EventOrder.STALE
            raise classify(exc) from exc
        old = _from_item(response.get("Attributes", {})).get("sequencer")
        return EventOrder.REPEAT if old == ref.sequencer else EventOrder.FIRST

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
            "reason": encounter.reason, "media_format": encounter.media_format,
            "duration_seconds": encounter.duration_seconds,
        }
        try:
            self.client.put_item(
                TableName=self.table_name, Item=_to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def get(self, encounter_id: str) -> Encounter | None:
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key=_to_item({"pk": f"ENC#{encounter_id}", "sk": "ENC"}),
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
                TableName=self.table_name, IndexName=STATUS_INDEX,
                KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_to_item({":s": status.value}), ScanIndexForward=False,
            )
        else:
            pages = self.client.get_paginator("scan").paginate(
                TableName=self.table_name, FilterExpression="sk = :sk",
                ExpressionAttributeValues=_to_item({":sk": "ENC"}),
            )
        found = [encounter_from_item(item) for page in pages for item in page.get("Items", [])]
        return sorted(found, key=lambda e: e.updated_at, reverse=True)
