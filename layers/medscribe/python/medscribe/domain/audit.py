"""The workspace's audit trail: who did what to which encounter, and when. Pure.

An event holds an actor id (a Cognito `sub`, or `local-<user>` for the local workspace), the actor's
role, one action of `ACTIONS`, an encounter id and a note version: no transcript or note text, no
object key, no name. Each field is checked against a closed pattern here, so nothing a user typed
can reach an audit record. `audit_csv` renders events for an admin's export with every cell made
safe for spreadsheets (`csv_cell`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from medscribe.domain.text_safety import csv_cell

Role = Literal["clinician", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "admin")
ACTIONS = frozenset({"view", "edit", "amend", "sign", "export", "upload", "erase", "play", "search", "reprocess"})
ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a Cognito sub (UUID) or local-<user>
ENCOUNTER_ID = re.compile(r"enc-[0-9a-f]{32}")
CSV_COLUMNS = ("time", "actor_id", "role", "action", "encounter_id", "version")


class InvalidAuditEvent(ValueError):
    """A field outside its pattern (the message names the field, never its value)."""


@dataclass(frozen=True)
class Actor:
    """Who acts in the workspace; never a patient's name."""

    actor_id: str
    role: Role

    def __post_init__(self) -> None:
        if not ACTOR_ID.fullmatch(self.actor_id):
            raise InvalidAuditEvent("actor_id must be 1-128 letters, digits, '.', '_' or '-'")
        if self.role not in ROLES:
            raise InvalidAuditEvent(f"role must be one of {', '.join(ROLES)}")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def is_encounter_id(value: str) -> bool:
    return bool(ENCOUNTER_ID.fullmatch(value))


@dataclass(frozen=True)
class AuditEvent:
    at: str  # ISO-8601 UTC with milliseconds (sorts as text)
    event_id: str  # makes two events of the same millisecond distinct
    actor_id: str
    role: Role
    action: str
    encounter_id: str | None
    version: int | None

    def __post_init__(self) -> None:
        Actor(self.actor_id, self.role)  # checks both
        if self.action not in ACTIONS:
            raise InvalidAuditEvent(f"action must be one of {', '.join(sorted(ACTIONS))}")
        if self.encounter_id is not None and not is_encounter_id(self.encounter_id):
            raise InvalidAuditEvent("encounter_id must be enc- and 32 hex digits")
        if self.version is not None and (isinstance(self.version, bool) or self.version < 0):
            raise InvalidAuditEvent("version must be a non-negative integer")
        if not re.fullmatch(r"[0-9a-f]{8,32}", self.event_id):
            raise InvalidAuditEvent("event_id must be hex")

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.at, "actor_id": self.actor_id, "role": self.role, "action": self.action,
                "encounter_id": self.encounter_id, "version": self.version}


def expires_at(at: str, retention_days: int) -> int:
    """The epoch second an event made at `at` may be deleted (the table's TTL attribute)."""
    made = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
    return int((made + timedelta(days=retention_days)).timestamp())


def audit_csv(events: Iterable[Mapping[str, Any]]) -> str:
    """Events (`AuditEvent.to_dict()`) as CSV with a header row; every cell safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in events:
        writer.writerow([csv_cell("" if row[column] is None else row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
