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


def _created(repo: EncounterRepository, key: str, created_at: str) -> Encounter:
    ref_ = ObjectRef.from_event(bucket="b", raw_key=key, size=5, version_id="v1", sequencer=None)
    encounter = replace(Encounter.from_ref(ref_, Kind.AUDIO, EncounterStatus.RECEIVED),
                        created_at=created_at, updated_at=created_at)
    assert repo.create(encounter)
    return encounter


def test_by_date_range_spans_day_partitions_and_honours_times(table: str) -> None:
    repo = EncounterRepository(table)
    a = _created(repo, "audio/a.wav", "2026-03-01T23:59:00.000Z")
    b = _created(repo, "audio/b.wav", "2026-03-02T08:00:00.000Z")
    c = _created(repo, "audio/c.wav", "2026-03-04T12:00:00.000Z")
    _created(repo, "audio/d.wav", "2026-03-05T00:00:00.000Z")
    ids = [e.encounter_id for e in repo.created_between("2026-03-01", "2026-03-04")]
    assert ids == [a.encounter_id, b.encounter_id, c.encounter_id]  # oldest first, the 3rd is an empty day
    # times narrow the first and last day
    narrowed = repo.created_between("2026-03-02T00:00:00.000Z", "2026-03-04T11:00:00.000Z")
    assert [e.encounter_id for e in narrowed] == [b.encounter_id]
    assert len(repo.created_between("2026-03-01", "2026-03-05", limit=2)) == 2
    with pytest.raises(ValueError, match="ends"):
        repo.created_between("2026-03-05", "2026-03-01")
    with pytest.raises(ValueError, match="at most"):
        repo.created_between("2020-01-01", "2026-01-01")
    with pytest.raises(ValueError, match="not a date"):
        repo.created_between("yesterday", "2026-01-01")


def test_by_source_folder(table: str) -> None:
    repo = EncounterRepository(table)
    a = _created(repo, "audio/clinic-a/1.wav", "2026-03-01T10:00:00.000Z")
    b = _created(repo, "audio/clinic-a/2.wav", "2026-03-02T10:00:00.000Z")
    _created(repo, "audio/clinic-b/1.wav", "2026-03-01T10:00:00.000Z")
    _created(repo, "audio/clinic-a/sub/1.wav", "2026-03-01T10:00:00.000Z")  # a different folder
    assert [e.encounter_id for e in repo.in_folder("audio/clinic-a/")] == [a.encounter_id, b.encounter_id]
    assert [e.encounter_id for e in repo.in_folder("audio/clinic-a", since="2026-03-02")] == [b.encounter_id]
    assert repo.in_folder("audio/none") == []


def test_source_records_expire_encounter_records_do_not(table: str) -> None:
    import time

    import boto3

    repo = EncounterRepository(table)
    repo.order_event(ref("0B", "v2"))
    encounter = _created(repo, "audio/x.wav", "2026-03-01T10:00:00.000Z")
    items = {item["pk"]["S"].split("#")[0]: item for item in boto3.client("dynamodb").scan(TableName=table)["Items"]}
    ttl = int(items["SRC"]["expires_at"]["N"])
    assert 29 * 86400 < ttl - time.time() <= 30 * 86400
    assert "expires_at" not in items["ENC"]  # PHI records are kept (retention is the clinic's policy)
    assert items["ENC"]["folder"] == {"S": "audio"}
    assert items["ENC"]["created_day"] == {"S": "2026-03-01"}
    assert encounter.encounter_id in items["ENC"]["pk"]["S"]


def test_a_key_at_the_bucket_root_has_no_folder_entry(table: str) -> None:
    repo = EncounterRepository(table)
    encounter = _created(repo, "visit.wav", "2026-03-01T10:00:00.000Z")  # DynamoDB rejects "" index keys
    assert repo.get(encounter.encounter_id) is not None
    assert [e.encounter_id for e in repo.created_between("2026-03-01", "2026-03-01")] == [encounter.encounter_id]


def test_oldest_reads_pages_of_the_limit_not_the_whole_status(table: str) -> None:
    """Every freed transcription slot asks for the oldest few RECEIVED encounters; after a burst there
    are thousands. The query must page by the limit (DynamoDB's Limit) and stop once it has enough."""
    repo = EncounterRepository(table)
    made = []
    for n in range(15):
        kind = Kind.TEXT if n % 5 == 0 else Kind.AUDIO  # the kind filter drops some of each page
        ref_ = ObjectRef.from_event(bucket="b", raw_key=f"audio/{n:02d}.wav", size=5, version_id="v1", sequencer=None)
        stamp = f"2026-01-01T00:00:{n:02d}.000Z"
        encounter = replace(Encounter.from_ref(ref_, kind, EncounterStatus.RECEIVED),
                            created_at=stamp, updated_at=stamp)
        repo.create(encounter)
        made.append(encounter)
    requests: list[dict[str, object]] = []
    scanned: list[int] = []
    repo.client.meta.events.register("provide-client-params.dynamodb.Query",
                                     lambda params, **_: requests.append(dict(params)))
    repo.client.meta.events.register("after-call.dynamodb.Query",
                                     lambda parsed, **_: scanned.append(parsed["ScannedCount"]))
    oldest = repo.oldest(EncounterStatus.RECEIVED, kind=Kind.AUDIO, limit=4)
    assert [e.encounter_id for e in oldest] == [e.encounter_id for e in made if e.kind is Kind.AUDIO][:4]
    assert requests
    assert all(r["Limit"] == 4 for r in requests)
    assert sum(scanned) < 15  # two pages (4 + 4 read, 1 filtered out), not all fifteen


def test_content_is_claimed_once_per_key_and_taken_over_only_from_its_holder(table: str) -> None:
    repo = EncounterRepository(table)
    first, second = ref(version="v1"), ref(version="v2")
    assert repo.claim_content(first, "ChecksumSHA256:abc").encounter_id == first.encounter_id
    assert repo.claim_content(first, "ChecksumSHA256:abc").encounter_id == first.encounter_id  # a repeat
    assert repo.claim_content(second, "ChecksumSHA256:abc").encounter_id == first.encounter_id
    assert repo.claim_content(second, "ChecksumSHA256:other").encounter_id == second.encounter_id
    assert repo.claim_content(second, "ChecksumSHA256:abc", replacing="enc-someone-else").encounter_id \
        == first.encounter_id
    assert repo.claim_content(second, "ChecksumSHA256:abc", replacing=first.encounter_id).encounter_id \
        == second.encounter_id


def test_restart_raises_the_run_and_clears_the_reason_unless_the_record_moved(table: str) -> None:
    repo = EncounterRepository(table)
    encounter = Encounter.from_ref(ref(), Kind.AUDIO, EncounterStatus.RECEIVED, media_format="wav")
    repo.create(encounter)
    repo.transition(encounter.encounter_id, EncounterStatus.RECEIVED, EncounterStatus.FAILED, reason="boom")
    failed = repo.get(encounter.encounter_id)
    assert failed is not None
    restarted = repo.restart(failed)
    assert restarted is not None
    assert (restarted.status, restarted.run, restarted.reason) == (EncounterStatus.RECEIVED, 2, None)
    assert repo.restart(failed) is None  # read before the restart: changed since
    again = repo.restart(restarted)
    assert again is not None
    assert again.run == 3


def test_an_identical_upload_waits_for_a_fresh_claim_and_takes_over_an_erased_one(table: str) -> None:
    from datetime import UTC, datetime, timedelta

    from medscribe.adapters.encounters import to_item
    from medscribe.domain.errors import TransientError
    from medscribe.services.ingest import IngestService, Outcome
    from medscribe.settings import load_settings

    class Objects:
        def fingerprint(self, _: ObjectRef) -> str:
            return "ETag:same"

        def read(self, _: ObjectRef, limit: int, start: int = 0) -> bytes:
            return b"knee pain"[start:start + limit]

        def tags(self, _: ObjectRef) -> dict[str, str]:
            return {}

    repo = EncounterRepository(table)
    service = IngestService(repo, Objects(), load_settings())  # type: ignore[arg-type]
    note = ObjectRef.from_event(bucket="b", raw_key="text/n.txt", size=9, version_id="v2")
    earlier = ObjectRef.from_event(bucket="b", raw_key="text/n.txt", size=9, version_id="v1")
    repo.claim_content(earlier, "ETag:same")  # its record is not written yet (being ingested)
    with pytest.raises(TransientError):
        service.ingest(note)
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    [item] = [i for i in repo.client.scan(TableName=table)["Items"] if i["pk"]["S"].startswith("CON#")]
    repo.client.put_item(TableName=table, Item={**item, **to_item({"claimed_at": old})})  # erased long ago
    result = service.ingest(note)
    assert (result.outcome, result.encounter_id) == (Outcome.CREATED, note.encounter_id)
    assert service.ingest(ObjectRef.from_event(bucket="b", raw_key="text/n.txt", size=9, version_id="v3")).outcome \
        is Outcome.SAME_CONTENT
