"""The workspace's table items against moto (adapters/workspace_store.py): paged encounter listings
over the existing indexes, the audit trail's three partitions with their TTL and paging, and version
writes conditional on the head."""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3

from medscribe.adapters.encounters import TTL_ATTRIBUTE, EncounterRepository
from medscribe.adapters.workspace_store import MAX_DAYS_PER_PAGE, WorkspaceStore
from medscribe.domain.audit import AuditEvent, expires_at
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind, ObjectRef
from medscribe.domain.note_versions import NoteVersion, VersionState
from medscribe.routes import stream_message

ENC = "enc-" + "1" * 32


def encounter(table: str, n: int, status: EncounterStatus, updated_at: str, key: str = "audio/clinic-a/x") -> str:
    ref = ObjectRef(bucket="in", key=f"{key}{n}.wav", size=1, version_id="v")
    record = Encounter.from_ref(ref, Kind.AUDIO, status)
    record = Encounter(**{**record.__dict__, "created_at": updated_at, "updated_at": updated_at})
    EncounterRepository(table).create(record)
    return ref.encounter_id


def event(at: str, actor: str = "local-alice", encounter_id: str | None = ENC, n: int = 0) -> AuditEvent:
    return AuditEvent(at=at, event_id=f"{n:016x}", actor_id=actor, role="clinician", action="view",
                      encounter_id=encounter_id, version=None)


def test_encounters_page_newest_first_across_statuses_with_a_cursor(table: str) -> None:
    store = WorkspaceStore(table, audit_retention_days=30)
    statuses = [EncounterStatus.DOCUMENTED, EncounterStatus.NEEDS_REVIEW, EncounterStatus.FAILED]
    ids = [encounter(table, n, statuses[n % 3], f"2026-12-0{1 + n // 3}T10:00:0{n % 3}.000Z") for n in range(7)]
    ids.append(encounter(table, 7, EncounterStatus.DOCUMENTED, "2026-12-03T10:00:00.000Z"))  # a tie with ids[6]
    expected = sorted(zip(
        ["2026-12-01T10:00:00.000Z", "2026-12-01T10:00:01.000Z", "2026-12-01T10:00:02.000Z",
         "2026-12-02T10:00:00.000Z", "2026-12-02T10:00:01.000Z", "2026-12-02T10:00:02.000Z",
         "2026-12-03T10:00:00.000Z", "2026-12-03T10:00:00.000Z"], ids, strict=True), reverse=True)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = store.encounters(status=None, since=None, folder=None, kind=None, limit=3, cursor=cursor)
        seen += [e.encounter_id for e in page]
        if cursor is None:
            break
    assert seen == [encounter_id for _, encounter_id in expected]
    failed, _ = store.encounters(status=EncounterStatus.FAILED, since="2026-12-02", folder=None, kind=None,
                                 limit=10, cursor=None)
    assert [e.encounter_id for e in failed] == [ids[5]]
    other = encounter(table, 9, EncounterStatus.DOCUMENTED, "2026-12-05T10:00:00.000Z", key="audio/clinic-b/y")
    in_folder, _ = store.encounters(status=None, since=None, folder="audio/clinic-b/", kind=None, limit=10,
                                    cursor=None)
    assert [e.encounter_id for e in in_folder] == [other]
    text, _ = store.encounters(status=None, since=None, folder=None, kind=Kind.TEXT, limit=10, cursor=None)
    assert text == []


def test_an_audit_event_is_in_its_encounter_actor_and_day_partitions_with_a_ttl(table: str) -> None:
    store = WorkspaceStore(table, audit_retention_days=7)
    store.record(event("2026-12-04T10:00:00.000Z"))
    store.record(event("2026-12-04T11:00:00.000Z", actor="local-bob", encounter_id=None, n=1))
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    assert sorted(i["pk"]["S"] for i in items) == sorted([
        f"AUDIT#ENC#{ENC}", "AUDIT#ACTOR#local-alice", "AUDIT#DAY#2026-12-04",
        "AUDIT#ACTOR#local-bob", "AUDIT#DAY#2026-12-04"])
    assert {int(i[TTL_ATTRIBUTE]["N"]) for i in items} == {
        expires_at("2026-12-04T10:00:00.000Z", 7), expires_at("2026-12-04T11:00:00.000Z", 7)}
    image = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": items[0]["pk"], "sk": items[0]["sk"]}}}
    assert stream_message(image, ("ENC",)) is None  # the index pipe's filter passes encounter items only
    assert [e["actor_id"] for e in store.audit_of_encounter(ENC, limit=10, cursor=None).items] == ["local-alice"]
    assert [e["time"] for e in store.audit_of_days(today=date(2026, 12, 4), since=None, limit=10,
                                                   cursor=None).items] == [
        "2026-12-04T11:00:00.000Z", "2026-12-04T10:00:00.000Z"]


def test_audit_pages_walk_partitions_newest_first_and_resume_at_the_cursor(table: str) -> None:
    store = WorkspaceStore(table, audit_retention_days=400)
    times = [f"2026-12-0{day}T0{hour}:00:00.000Z" for day in (1, 2, 4) for hour in (1, 2, 3)]
    for n, at in enumerate(times):
        store.record(event(at, n=n))
    store.record(event("2026-10-01T00:00:00.000Z", n=99))  # beyond one page's days

    def walk(**query: Any) -> tuple[list[str], int]:
        seen, pages, cursor = [], 0, None
        while True:
            page = store.audit_of_days(today=date(2026, 12, 4), limit=4, cursor=cursor, **query)
            seen += [e["time"] for e in page.items]
            pages += 1
            if page.next is None:
                return seen, pages
            cursor = page.next

    everything, pages = walk(since=None)
    assert everything == sorted(times, reverse=True) + ["2026-10-01T00:00:00.000Z"]
    assert pages >= 1 + (64 // MAX_DAYS_PER_PAGE)  # day partitions are read at most 31 per page
    assert walk(since="2026-12-02T02:00:00.000Z")[0] == sorted(times, reverse=True)[:5]
    mine = store.audit_of_actor("local-alice", since=None, limit=5, cursor=None)
    rest = store.audit_of_actor("local-alice", since=None, limit=5, cursor=mine.next)
    assert len(mine.items) == 5 and len(rest.items) == 5 and rest.next is None


def version(n: int, base: int | None) -> NoteVersion:
    return NoteVersion(encounter_id=ENC, version=n, state=VersionState.DRAFT, actor_id="local-alice",
                       role="clinician", created_at="2026-12-04T10:00:00.000Z", base_version=base,
                       note_key=f"notes/{ENC}/versions/{n}.json")


def test_a_version_is_written_only_on_the_head_it_was_made_from(table: str) -> None:
    store = WorkspaceStore(table, audit_retention_days=7)
    assert store.head(ENC).current == 0 and store.head(ENC).signed is None
    assert store.add_version(version(1, 0), event("2026-12-04T10:00:00.000Z", n=1), amending=False)
    assert not store.add_version(version(1, 0), event("2026-12-04T10:00:01.000Z", n=2), amending=False)
    assert store.sign(version(1, 0), event("2026-12-04T10:00:02.000Z", n=3))
    assert store.head(ENC).signed == 1
    assert not store.sign(version(1, 0), event("2026-12-04T10:00:03.000Z", n=4))  # signed once only
    assert not store.add_version(version(2, 1), event("2026-12-04T10:00:04.000Z", n=5), amending=False)
    assert store.add_version(version(2, 1), event("2026-12-04T10:00:05.000Z", n=6), amending=True)
    assert [v.version for v in store.versions(ENC)] == [1, 2]
    assert store.version(ENC, 1).state is VersionState.SIGNED  # type: ignore[union-attr]
    # a failed write leaves no audit event behind: it is in the same transaction
    trail = store.audit_of_encounter(ENC, limit=20, cursor=None).items
    assert len(trail) == 3
