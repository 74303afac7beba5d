"""Audit events (domain.audit): closed patterns for every field, so no text a user typed reaches the
trail; the CSV export is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

import pytest

from medscribe.domain.audit import Actor, AuditEvent, InvalidAuditEvent, audit_csv, expires_at

ENC = "enc-" + "a" * 32


def event(**changes: object) -> AuditEvent:
    values: dict[str, object] = {"at": "2026-12-04T10:00:00.000Z", "event_id": "0123456789abcdef",
                                 "actor_id": "local-alice", "role": "clinician", "action": "view",
                                 "encounter_id": ENC, "version": 1}
    return AuditEvent(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("change", [
    {"actor_id": "Zebulon Quackenbush"}, {"actor_id": "zeb@example.com"}, {"actor_id": ""},
    {"role": "superuser"}, {"action": "read the note: chest pain"}, {"encounter_id": "audio/zebulon.wav"},
    {"version": -1}, {"event_id": "not hex!"},
])
def test_a_field_outside_its_pattern_is_refused_without_its_value(change: dict[str, object]) -> None:
    with pytest.raises(InvalidAuditEvent) as refused:
        event(**change)
    value = str(next(iter(change.values())))
    assert not value or value not in str(refused.value)


def test_actors_and_events_that_fit_are_kept_as_given() -> None:
    actor = Actor("3f1c2a9e-1111-2222-3333-444455556666", "admin")
    assert actor.is_admin and not Actor("local-bob", "clinician").is_admin
    assert event(encounter_id=None, version=None).to_dict() == {
        "time": "2026-12-04T10:00:00.000Z", "actor_id": "local-alice", "role": "clinician", "action": "view",
        "encounter_id": None, "version": None}


def test_events_expire_after_the_retention_days() -> None:
    assert expires_at("2026-12-04T10:00:00.000Z", 1) - expires_at("2026-12-04T10:00:00.000Z", 0) == 86400
    assert expires_at("1970-01-01T00:00:00.000Z", 2) == 2 * 86400


def test_the_csv_has_a_header_and_defuses_formula_cells() -> None:
    rows = [event().to_dict(), {**event().to_dict(), "actor_id": "=HYPERLINK(1)", "version": None}]
    text = audit_csv(rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["time", "actor_id", "role", "action", "encounter_id", "version"]
    assert parsed[1] == ["2026-12-04T10:00:00.000Z", "local-alice", "clinician", "view", ENC, "1"]
    assert parsed[2][1] == "'=HYPERLINK(1)" and parsed[2][5] == ""
