"""The workspace's items in the single table: note versions, the note head, the audit trail, and
paged encounter listings over the existing indexes (README "Data model").

Items (no note or transcript text in any of them; the text is in the artifacts bucket):
  note head  pk=ENC#<id>  sk=NOTE             current_version, signed_version (absent: none signed)
  version    pk=ENC#<id>  sk=VER#<000001>     metadata of one version (domain.note_versions.NoteVersion);
                                              version 0 has an item only once it is signed
  audit      pk=AUDIT#ENC#<id> | AUDIT#ACTOR#<actor id> | AUDIT#DAY#<YYYY-MM-DD>, sk=<time>#<event id>
             one event in three partitions (per encounter, per actor, per UTC day), written in one
             transaction; expires_at (TTL) `audit_retention_days` after the event.

Note items share the encounter's partition, so an erasure (which deletes the partition) takes them;
audit items do not, so the trail outlives the encounter. A save and its audit event are one
transaction, conditional on the head still naming the version the edit started from: two saves on
the same base cannot both win. The stream's index pipe passes the head (a save or a signature
re-indexes the encounter's current version: services/indexing.py), not the versions or audit items.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import (
    FOLDER_INDEX,
    STATUS_INDEX,
    TTL_ATTRIBUTE,
    Index,
    encounter_from_item,
    from_item,
    to_item,
)
from medscribe.adapters.errors import classify, error_code
from medscribe.domain.audit import AuditEvent, expires_at
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind
from medscribe.domain.note_versions import HEAD_SORT_KEY, Change, NoteVersion, VersionState

HEAD_SK = HEAD_SORT_KEY
VERSION_PREFIX = "VER#"
AUDIT_PREFIX = "AUDIT#"
MAX_DAYS_PER_PAGE = 31  # day partitions one page of the all-actors audit reads at most
_SORT_KEY = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+Z#[0-9a-f]{8,32}")
_DAY = re.compile(r"\d{4}-\d\d-\d\d")


class BadCursor(ValueError):
    """A paging cursor this store did not make."""


@dataclass(frozen=True)
class NoteHead:
    current: int = 0
    signed: int | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None


def version_sk(version: int) -> str:
    return f"{VERSION_PREFIX}{version:06d}"


def encode_cursor(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[str]) -> dict[str, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("the cursor is not one this service returned") from exc
    if not isinstance(value, dict) or set(value) != set(keys) or not all(isinstance(v, str) for v in value.values()):
        raise BadCursor("the cursor is not one this service returned")
    return value


def _version_from_item(data: dict[str, Any]) -> NoteVersion:
    return NoteVersion(
        encounter_id=data["encounter_id"], version=int(data["version"]), state=VersionState(data["state"]),
        actor_id=data["actor_id"], role=data["role"], created_at=data["created_at"],
        base_version=int(data["base_version"]) if data.get("base_version") is not None else None,
        note_key=data["note_key"], changes=tuple(Change.from_dict(c) for c in data.get("changes", [])),
        problem_count=int(data.get("problem_count", 0)), amended=bool(data.get("amended", False)),
        signed_by=data.get("signed_by"), signed_role=data.get("signed_role"), signed_at=data.get("signed_at"),
    )


def _version_item(version: NoteVersion) -> dict[str, Any]:
    return to_item({"pk": f"ENC#{version.encounter_id}", "sk": version_sk(version.version), **version.to_dict()})


def _event_from_item(data: dict[str, Any]) -> AuditEvent:
    return AuditEvent(at=data["at"], event_id=data["event_id"], actor_id=data["actor_id"], role=data["role"],
                      action=data["action"], encounter_id=data.get("encounter_id"),
                      version=int(data["version"]) if data.get("version") is not None else None)


class WorkspaceStore(aws_clients.TableClient):
    def __init__(self, table_name: str, *, audit_retention_days: int, client: Any | None = None) -> None:
        super().__init__(table_name, client)
        self.audit_retention_days = audit_retention_days

    def _call(self, method: str, **params: Any) -> Any:
        try:
            return getattr(self.client, method)(TableName=self.table_name, **params)
        except ClientError as exc:
            raise classify(exc) from exc

    # --- note versions ----------------------------------------------------------------------------

    def head(self, encounter_id: str) -> NoteHead:
        item = self._call("get_item", Key=to_item({"pk": f"ENC#{encounter_id}", "sk": HEAD_SK}),
                          ConsistentRead=True).get("Item")
        data = from_item(item) if item else {}
        signed = data.get("signed_version")
        return NoteHead(int(data.get("current_version", 0)), int(signed) if signed is not None else None)

    def versions(self, encounter_id: str) -> list[NoteVersion]:
        """Every version item of the encounter, oldest first."""
        found: list[NoteVersion] = []
        try:
            for page in self.client.get_paginator("query").paginate(
                TableName=self.table_name, KeyConditionExpression="pk = :pk AND begins_with(sk, :ver)",
                ExpressionAttributeValues=to_item({":pk": f"ENC#{encounter_id}", ":ver": VERSION_PREFIX}),
                ConsistentRead=True,
            ):
                found += [_version_from_item(from_item(item)) for item in page.get("Items", [])]
        except ClientError as exc:
            raise classify(exc) from exc
        return found

    def version(self, encounter_id: str, version: int) -> NoteVersion | None:
        item = self._call("get_item", Key=to_item({"pk": f"ENC#{encounter_id}", "sk": version_sk(version)}),
                          ConsistentRead=True).get("Item")
        return _version_from_item(from_item(item)) if item else None

    def _head_update(self, encounter_id: str, expected: int, sets: str, values: dict[str, Any],
                     *, unsigned: bool) -> dict[str, Any]:
        """An Update of the head conditional on its current version being `expected` (a missing head
        is version 0) and, with `unsigned`, on that version not being signed."""
        condition = "current_version = :expected"
        if expected == 0:
            condition = f"(attribute_not_exists(current_version) OR {condition})"
        if unsigned:
            condition += " AND (attribute_not_exists(signed_version) OR signed_version <> :expected)"
        return {"Update": {
            "TableName": self.table_name, "Key": to_item({"pk": f"ENC#{encounter_id}", "sk": HEAD_SK}),
            "UpdateExpression": sets, "ConditionExpression": condition,
            "ExpressionAttributeValues": to_item({":expected": expected, **values}),
        }}

    def add_version(self, version: NoteVersion, event: AuditEvent, *, amending: bool) -> bool:
        """Write `version` (base + 1) as the head's current version with its audit event; False when the
        head no longer names its base, or (not `amending`) the base is signed."""
        base = version.base_version or 0
        return self._transact([
            self._head_update(version.encounter_id, base, "SET current_version = :new, updated_at = :now",
                              {":new": version.version, ":now": version.created_at}, unsigned=not amending),
            {"Put": {"TableName": self.table_name, "Item": _version_item(version),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            *self._audit_puts(event),
        ])

    def sign(self, version: NoteVersion, event: AuditEvent) -> bool:
        """Mark `version` (as read, DRAFT) SIGNED by the event's actor, if it is still the current one
        and still a draft; False otherwise."""
        key = to_item({"pk": f"ENC#{version.encounter_id}", "sk": version_sk(version.version)})
        if version.version == 0 and self.version(version.encounter_id, 0) is None:
            # the pipeline's note has no item until it is signed
            stored: dict[str, Any] = {"Put": {
                "TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                "Item": _version_item(replace(version, state=VersionState.SIGNED, signed_by=event.actor_id,
                                              signed_role=event.role, signed_at=event.at)),
            }}
        else:
            stored = {"Update": {
                "TableName": self.table_name, "Key": key,
                "UpdateExpression": "SET #state = :signed, signed_by = :by, signed_role = :role, signed_at = :at",
                "ConditionExpression": "#state = :draft", "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": to_item({":signed": VersionState.SIGNED.value, ":by": event.actor_id,
                                                      ":role": event.role, ":at": event.at,
                                                      ":draft": VersionState.DRAFT.value}),
            }}
        return self._transact([
            self._head_update(version.encounter_id, version.version,
                              "SET current_version = :expected, signed_version = :expected, updated_at = :now",
                              {":now": event.at}, unsigned=True),
            stored,
            *self._audit_puts(event),
        ])

    def supersede(self, head: NoteHead, archived: NoteVersion, draft: NoteVersion, event: AuditEvent) -> bool:
        """A re-run over clinician work (domain.note_versions.superseding): the pipeline's previous version
        points at its copy, the re-run's `draft` is added and made current, the signature is taken off the
        head (the signed version's item stays SIGNED: the history); conditional on the head still being
        `head` as read. False when it changed."""
        encounter_id = draft.encounter_id
        condition = "current_version = :expected AND " + (
            "signed_version = :signed" if head.signed is not None else "attribute_not_exists(signed_version)")
        values: dict[str, Any] = {":expected": head.current, ":new": draft.version, ":now": draft.created_at}
        if head.signed is not None:
            values[":signed"] = head.signed
        archive: dict[str, Any]
        if archived.version == 0 and self.version(encounter_id, 0) is None:  # an unsigned version 0 has no item
            archive = {"Put": {"TableName": self.table_name, "Item": _version_item(archived),
                               "ConditionExpression": "attribute_not_exists(pk)"}}
        else:
            archive = {"Update": {
                "TableName": self.table_name, "ConditionExpression": "attribute_exists(pk)",
                "Key": to_item({"pk": f"ENC#{encounter_id}", "sk": version_sk(archived.version)}),
                "UpdateExpression": "SET note_key = :key",
                "ExpressionAttributeValues": to_item({":key": archived.note_key}),
            }}
        return self._transact([
            {"Update": {
                "TableName": self.table_name, "Key": to_item({"pk": f"ENC#{encounter_id}", "sk": HEAD_SK}),
                "UpdateExpression": "SET current_version = :new, updated_at = :now REMOVE signed_version",
                "ConditionExpression": condition, "ExpressionAttributeValues": to_item(values),
            }},
            archive,
            {"Put": {"TableName": self.table_name, "Item": _version_item(draft),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            *self._audit_puts(event),
        ])

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                codes = [str(r.get("Code", "")) for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in codes:
                    return False
            raise classify(exc) from exc
        return True

    # --- audit ------------------------------------------------------------------------------------

    def _audit_puts(self, event: AuditEvent) -> list[dict[str, Any]]:
        sk = f"{event.at}#{event.event_id}"
        partitions = [f"{AUDIT_PREFIX}ACTOR#{event.actor_id}", f"{AUDIT_PREFIX}DAY#{event.at[:10]}"]
        if event.encounter_id:
            partitions.insert(0, f"{AUDIT_PREFIX}ENC#{event.encounter_id}")
        values = {"at": event.at, "event_id": event.event_id, "actor_id": event.actor_id, "role": event.role,
                  "action": event.action, "encounter_id": event.encounter_id, "version": event.version,
                  TTL_ATTRIBUTE: expires_at(event.at, self.audit_retention_days)}
        return [{"Put": {"TableName": self.table_name, "Item": to_item({"pk": pk, "sk": sk, **values}),
                         "ConditionExpression": "attribute_not_exists(pk)"}} for pk in partitions]

    def record(self, event: AuditEvent) -> None:
        if not self._transact(self._audit_puts(event)):
            raise RuntimeError("an audit event with this id exists already")

    def audit_of_encounter(self, encounter_id: str, *, limit: int, cursor: str | None) -> Page:
        return self._audit_page([f"{AUDIT_PREFIX}ENC#{encounter_id}"], since=None, limit=limit, cursor=cursor)

    def audit_of_actor(self, actor_id: str, *, since: str | None, limit: int, cursor: str | None) -> Page:
        return self._audit_page([f"{AUDIT_PREFIX}ACTOR#{actor_id}"], since=since, limit=limit, cursor=cursor)

    def audit_of_days(self, *, today: date, since: str | None, limit: int, cursor: str | None) -> Page:
        """Every actor's events, newest first, one day partition at a time back to `since` (or to the
        retention horizon), at most MAX_DAYS_PER_PAGE days per page."""
        first = date.fromisoformat(since[:10]) if since else today - timedelta(days=self.audit_retention_days)
        days = [(today - timedelta(days=n)).isoformat() for n in range(max((today - first).days + 1, 0))]
        return self._audit_page([f"{AUDIT_PREFIX}DAY#{day}" for day in days], since=since, limit=limit,
                                cursor=cursor, max_partitions=MAX_DAYS_PER_PAGE)

    def _audit_page(self, partitions: list[str], *, since: str | None, limit: int, cursor: str | None,
                    max_partitions: int | None = None) -> Page:
        start, after = 0, None
        if cursor:
            position = decode_cursor(cursor, ("p", "sk"))
            if position["p"] not in partitions or (position["sk"] and not _SORT_KEY.fullmatch(position["sk"])):
                raise BadCursor("the cursor is not one this service returned")
            start, after = partitions.index(position["p"]), position["sk"] or None
        events: list[AuditEvent] = []
        for index in range(start, len(partitions)):
            if max_partitions is not None and index - start == max_partitions:
                return Page([e.to_dict() for e in events], encode_cursor({"p": partitions[index], "sk": ""}))
            found, more = self._query_audit(partitions[index], since, after if index == start else None,
                                            limit - len(events))
            events += found
            if len(events) >= limit:
                if more or index + 1 < len(partitions):
                    last = f"{events[-1].at}#{events[-1].event_id}"
                    return Page([e.to_dict() for e in events], encode_cursor({"p": partitions[index], "sk": last}))
                break
        return Page([e.to_dict() for e in events], None)

    def _query_audit(self, pk: str, since: str | None, after: str | None, limit: int) -> tuple[list[AuditEvent], bool]:
        """Up to `limit` events of one partition, newest first, older than `after`; and whether more remain."""
        condition = "pk = :pk" + (" AND sk >= :since" if since else "")
        values: dict[str, Any] = {":pk": pk, **({":since": since} if since else {})}
        params: dict[str, Any] = {"KeyConditionExpression": condition, "ScanIndexForward": False,
                                  "ExpressionAttributeValues": to_item(values)}
        if after:
            params["ExclusiveStartKey"] = to_item({"pk": pk, "sk": after})
        found: list[AuditEvent] = []
        while len(found) < limit:
            response = self._call("query", Limit=limit - len(found), **params)
            found += [_event_from_item(from_item(item)) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return found, False
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found, True

    # --- encounter listing ------------------------------------------------------------------------

    def encounters(self, *, status: EncounterStatus | None, since: str | None, folder: str | None,
                   kind: Kind | None, limit: int, cursor: str | None) -> tuple[list[Encounter], str | None]:
        """Encounters newest first: by update time over the by-status index (every status's partition,
        merged, when none is given), or by creation time in one folder (the by-folder index). `since`
        bounds the index's sort key. The cursor is the position of the last one returned."""
        after = decode_cursor(cursor, ("t", "id")) if cursor else None
        filters: dict[str, str] = {}
        if folder is not None:
            index, partitions = FOLDER_INDEX, [folder.strip("/")]
            if status is not None:
                filters["status"] = status.value
        else:
            index, partitions = STATUS_INDEX, [status.value] if status else [s.value for s in EncounterStatus]
        if kind is not None:
            filters["kind"] = kind.value
        found: list[Encounter] = []
        for partition in partitions:
            found += self._newest(index, partition, since, after, filters, limit)
        found.sort(key=lambda e: (self._sort_value(index, e), e.encounter_id), reverse=True)
        page = found[:limit]
        more = len(found) > limit
        last = page[-1] if page and more else None
        return page, encode_cursor({"t": self._sort_value(index, last), "id": last.encounter_id}) if last else None

    @staticmethod
    def _sort_value(index: Index, encounter: Encounter) -> str:
        return encounter.updated_at if index is STATUS_INDEX else encounter.created_at

    def _newest(self, index: Index, partition: str, since: str | None, after: dict[str, str] | None,
                filters: dict[str, str], limit: int) -> list[Encounter]:
        """Up to limit + 1 encounters of one index partition, newest first, strictly after the cursor."""
        condition = "#p = :p"
        names = {"#p": index.partition, "#r": index.sort}
        values: dict[str, Any] = {":p": partition}
        if since and after:
            condition += " AND #r BETWEEN :since AND :until"
            values |= {":since": since, ":until": after["t"]}
        elif since:
            condition += " AND #r >= :since"
            values[":since"] = since
        elif after:
            condition += " AND #r <= :until"
            values[":until"] = after["t"]
        else:
            names.pop("#r")
        params: dict[str, Any] = {"IndexName": index.name, "KeyConditionExpression": condition,
                                  "ScanIndexForward": False}
        if filters:
            params["FilterExpression"] = " AND ".join(f"#f_{name} = :f_{name}" for name in filters)
            names |= {f"#f_{name}": name for name in filters}
            values |= {f":f_{name}": value for name, value in filters.items()}
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = to_item(values)
        found: list[Encounter] = []
        while len(found) <= limit:
            response = self._call("query", Limit=limit + 1, **params)
            for item in response.get("Items", []):
                encounter = encounter_from_item(item)
                position = (self._sort_value(index, encounter), encounter.encounter_id)
                if after is None or position < (after["t"], after["id"]):
                    found.append(encounter)
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found
