from dataclasses import replace

import pytest

from medscribe.adapters.encounters import EncounterRepository, EventOrder
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef


def ref(seq: str | None = "0A", version: str = "v1") -> ObjectRef:
    return ObjectRef.from_event(bucket="b", raw_key="audio/x.wav", size=5, version_id=version, sequencer=seq)


def test_create_is_conditional(table: str) -> None:
    repo = EncounterRepository(table)
    encounter = Encounter.from_ref(ref(), Kind.AUDIO, EncounterStatus.RECEIVED, media_format="wav")
    assert repo.create(encounter) is True
    assert repo.create(replace(encounter, status=EncounterStatus.REJECTED, reason="x")) is False
    stored = repo.get(encounter.encounter_id)
    assert stored == encounter  # the second write changed nothing


def test_get_unknown_is_none(table: str) -> None:
    assert EncounterRepository(table).get("enc-missing") is None


def test_event_order_per_key(table: str) -> None:
    repo = EncounterRepository(table)
    assert repo.order_event(ref("0B", "v2")) is EventOrder.FIRST
    assert repo.order_event(ref("0B", "v2")) is EventOrder.REPEAT
    assert repo.order_event(ref("0A", "v1")) is EventOrder.STALE  # older event arriving late
    assert repo.order_event(ref("0100", "v3")) is EventOrder.FIRST  # longer sequencer = later
    assert repo.order_event(ref(None)) is EventOrder.FIRST  # no sequencer: no ordering possible


def test_list_by_status_newest_first(table: str) -> None:
    repo = EncounterRepository(table)
    made = []
    for n, status in enumerate([EncounterStatus.RECEIVED, EncounterStatus.REJECTED, EncounterStatus.RECEIVED]):
        encounter = replace(Encounter.from_ref(ref(version=f"v{n}"), Kind.AUDIO, status),
                            updated_at=f"2026-01-0{n + 1}T00:00:00.000Z")
        repo.create(encounter)
        made.append(encounter)
    received = repo.list(EncounterStatus.RECEIVED)
    assert [e.encounter_id for e in received] == [made[2].encounter_id, made[0].encounter_id]
    assert len(repo.list()) == 3
    assert repo.list(EncounterStatus.FAILED) == []


def test_sdk_errors_are_typed(table: str) -> None:
    from medscribe.domain.errors import PermanentError

    with pytest.raises(PermanentError):
        EncounterRepository("no-such-table").get("enc-x")
