"""Index handler: moto for DynamoDB/S3, the real document handler to make notes, SQLite FTS5 as the index.

Dialogue text from tests/fixtures/dialogues/fareez-osce (CC BY 4.0, Fareez et al. 2022)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import boto3
import pytest

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe.adapters.workspace_store import HEAD_SK
from medscribe.domain.search import SearchDocument
from medscribe.messages import StreamMessage
from medscribe.routes import ROUTES, StreamTrigger, stream_message
from medscribe.services.wiring import workspace_service
from medscribe.services.workspace import Actor
from medscribe.settings import ENV, FunctionSettings, load_settings
from tests.handlers.conftest import Context
from tests.handlers.test_document import fareez_lines, ready, text_encounter, transcribed_encounter
from tests.handlers.test_ingest import sqs_event

KOREAN_NOTE = "주호소: 3일 전부터 시작된 오른쪽 무릎 통증.\n계획: 소염진통제 처방, 2주 후 재진.".encode()


@pytest.fixture
def world(table: str, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    boto3.client("s3").create_bucket(Bucket="artifacts")
    db = tmp_path / "search.db"
    monkeypatch.setenv(ENV.SEARCH_URL, f"sqlite:///{db}")
    return {"table": table, "bucket": bucket, "db": db}


def change(encounter_id: str, event: str = "MODIFY", sk: str = "ENC") -> dict[str, Any]:
    """The message the pipe (or the local stream pump) sends for a change of an encounter item (or, with
    sk=NOTE, of its note head), through the index route's own filter."""
    (index_route,) = [route for route in ROUTES if isinstance(route.trigger, StreamTrigger)]
    assert isinstance(index_route.trigger, StreamTrigger)
    record = {"eventName": event, "dynamodb": {"Keys": {"pk": {"S": f"ENC#{encounter_id}"}, "sk": {"S": sk}}}}
    message = stream_message(record, index_route.trigger.item_types)
    assert message is not None
    return message.model_dump()


def test_stream_filter_passes_encounter_items_only_and_never_their_content() -> None:
    (index_route,) = [route for route in ROUTES if isinstance(route.trigger, StreamTrigger)]
    assert index_route.name == "index"
    image = {"pk": {"S": "ENC#enc-1"}, "sk": {"S": "ENC"}, "source_key": {"S": "text/patient-name.txt"}}
    record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image}}
    assert stream_message(record, ("ENC",)) == StreamMessage(pk="ENC#enc-1", sk="ENC", eventName="INSERT")
    slots = {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "SLOTS#transcribe"}, "sk": {"S": "SLOTS"}}}}
    assert stream_message(slots, ("ENC",)) is None


def test_documented_encounters_are_indexed_by_transcript_and_note_in_one_batch(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    lines = fareez_lines()
    audio = transcribed_encounter(world, lines)
    korean = text_encounter(world, "text/ko-knee.txt", KOREAN_NOTE)
    document = load_handler("document", note_engine="offline")
    assert document.handler(ready(audio), Context()) == {"batchItemFailures": []}
    assert document.handler(ready(korean), Context()) == {"batchItemFailures": []}

    index = load_handler("index")
    response = index.handler(sqs_event(change(audio), change(korean), change(audio)), Context())
    assert response == {"batchItemFailures": []}

    search = SqliteSearchIndex(world["db"])
    assert search.count() == 2  # the repeated message changed nothing
    phrase = " ".join(lines[5]["text"].split()[:3])
    assert audio in [hit.encounter_id for hit in search.search(phrase)]
    assert [hit.encounter_id for hit in search.search("무릎 통증")] == [korean]
    assert [hit.status for hit in search.search("무릎 통증")] == ["DOCUMENTED"]
    # the note's text is indexed too (its own column): every claim of the audio note
    note = json.loads(boto3.client("s3").get_object(Bucket="artifacts", Key=f"notes/{audio}/note.json")["Body"].read())
    claims = [item["text"] for section in note["sections"] for item in section["items"]]
    assert claims
    with sqlite3.connect(world["db"]) as db:
        (indexed_note,) = db.execute("SELECT note FROM encounters WHERE encounter_id = ?", (audio,)).fetchone()
    assert all(claim in indexed_note for claim in claims)


def test_the_stream_passes_the_note_head_the_workspace_writes() -> None:
    (index_route,) = [route for route in ROUTES if isinstance(route.trigger, StreamTrigger)]
    assert isinstance(index_route.trigger, StreamTrigger)
    assert set(index_route.trigger.item_types) == {"ENC", HEAD_SK}
    for sk in ("VER#000001", "SCORE#m", "SRC"):  # versions, scores, ordering: not indexed
        record = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "ENC#enc-1"}, "sk": {"S": sk}}}}
        assert stream_message(record, index_route.trigger.item_types) is None


def test_search_follows_the_clinicians_saved_and_signed_versions(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    """A save moves the note head; the stream message about the head re-indexes the encounter from its
    current version: a word the edit removed is no longer found, one it added is (the real SQLite index)."""
    encounter_id = transcribed_encounter(world, fareez_lines(count=20))
    assert load_handler("document", note_engine="offline").handler(ready(encounter_id), Context()) == {
        "batchItemFailures": []}
    index = load_handler("index")
    index.handler(sqs_event(change(encounter_id)), Context())
    search = SqliteSearchIndex(world["db"])
    assert search.search("quokka") == []
    workspace = workspace_service(FunctionSettings(
        table_name=world["table"], input_bucket=world["bucket"], artifacts_bucket="artifacts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:t", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        pipeline=load_settings(), search_url=None))
    clinician = Actor("local-alice", "clinician")

    def save(base: int, text: str) -> None:
        sections = json.loads(json.dumps(workspace.encounter(clinician, encounter_id)["note"]["sections"]))
        if base == 0:
            sections[0]["items"].append({"text": text, "lines": [1]})
        else:
            sections[0]["items"][-1]["text"] = text
        workspace.save_note(clinician, encounter_id, base_version=base, note={"sections": sections})
        assert index.handler(sqs_event(change(encounter_id, sk=HEAD_SK)), Context()) == {"batchItemFailures": []}

    save(0, "Owns a pet quokka")
    assert [hit.encounter_id for hit in search.search("quokka")] == [encounter_id]
    save(1, "Owns a pet wombat")  # the edit replaces the word
    assert search.search("quokka") == []
    assert [hit.encounter_id for hit in search.search("wombat")] == [encounter_id]
    workspace.sign(clinician, encounter_id, version=2)
    index.handler(sqs_event(change(encounter_id, sk=HEAD_SK)), Context())
    assert [hit.encounter_id for hit in search.search("wombat")] == [encounter_id]
    assert search.search("quokka") == []
    assert search.count() == 1


def test_a_deleted_record_is_removed_from_the_index(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    korean = text_encounter(world, "text/ko-knee.txt", KOREAN_NOTE)
    index = load_handler("index")
    index.handler(sqs_event(change(korean, "INSERT")), Context())
    assert SqliteSearchIndex(world["db"]).count() == 1
    boto3.client("dynamodb").delete_item(TableName=world["table"], Key={"pk": {"S": f"ENC#{korean}"},
                                                                        "sk": {"S": "ENC"}})
    assert index.handler(sqs_event(change(korean, "REMOVE")), Context()) == {"batchItemFailures": []}
    assert SqliteSearchIndex(world["db"]).count() == 0
    # the same REMOVE again (or a late MODIFY for a record that is gone) leaves it gone
    assert index.handler(sqs_event(change(korean, "MODIFY")), Context()) == {"batchItemFailures": []}
    assert SqliteSearchIndex(world["db"]).count() == 0


def test_messages_naming_no_encounter_are_dropped_not_retried(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    index = load_handler("index")
    event = sqs_event("not json", {"pk": "SRC#x", "sk": "SRC"}, {"unexpected": True})
    assert index.handler(event, Context()) == {"batchItemFailures": []}
    assert SqliteSearchIndex(world["db"]).count() == 0


def test_only_the_encounters_the_index_rejected_are_retried(load_handler, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = text_encounter(world, "text/a.txt", KOREAN_NOTE)
    second = text_encounter(world, "text/b.txt", b"Plan: rest and ice.")
    index = load_handler("index")

    def reject_first(upserts: list[SearchDocument], deletes: list[str]) -> set[str]:
        return {first} & {document.encounter_id for document in upserts}

    monkeypatch.setattr(index.SERVICE.index, "apply", reject_first)
    response = index.handler(sqs_event(change(first), change(second), change(first)), Context())
    # both messages about the rejected encounter come back; the other one is done
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-2"}]}


def test_an_unreadable_record_fails_only_its_own_messages(load_handler, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    good = text_encounter(world, "text/a.txt", b"Plan: rest and ice.")
    index = load_handler("index")
    real_get = EncounterRepository.get

    def flaky_get(self: EncounterRepository, encounter_id: str) -> Any:
        if encounter_id == "enc-throttled":
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real_get(self, encounter_id)

    monkeypatch.setattr(EncounterRepository, "get", flaky_get)
    response = index.handler(sqs_event(change("enc-throttled"), change(good)), Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert [hit.encounter_id for hit in SqliteSearchIndex(world["db"]).search("rest and ice")] == [good]
