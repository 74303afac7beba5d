"""The workspace service (services/workspace.py) against moto, on notes the document handler wrote:
versions with who/when/what, citations re-verified on save, optimistic concurrency, sign-off and
amendments, the audit trail with its role checks, erasure (versions go, the trail stays), and PHI
sentinels in an edited (and exported) note that reach no audit item, version item or log line; the export
hands out the signed version only."""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any

import boto3
import pytest

from medscribe.adapters.encounters import EncounterRepository
from medscribe.services.wiring import workspace_service
from medscribe.services.workspace import (
    Actor,
    BadRequest,
    Conflict,
    Forbidden,
    NoteSigned,
    NotFound,
    StaleVersion,
    WorkspaceService,
)
from medscribe.settings import FunctionSettings, load_settings
from medscribe.workspace.export import signed_markdown
from tests.handlers.conftest import Context
from tests.handlers.test_document import fareez_lines, ready, text_encounter, transcribed_encounter
from tests.handlers.test_document import load_handler as load_handler
from tests.handlers.test_malformed_messages import log as log

__all__ = ["load_handler", "log"]

ALICE = Actor("local-alice", "clinician")
BOB = Actor("local-bob", "clinician")
ADMIN = Actor("3f1c2a9e-1111-2222-3333-444455556666", "admin")
SENTINEL = "Zebulon Quackenbush MRN 48213377"


def service(world: dict[str, Any]) -> WorkspaceService:
    return workspace_service(FunctionSettings(
        table_name=world["table"], input_bucket=world["bucket"], artifacts_bucket="artifacts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:t", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        pipeline=load_settings(), search_url=None))


@pytest.fixture
def documented(load_handler, world: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines(count=20))
    load_handler("document").handler(ready(encounter_id), Context())
    return encounter_id


def edited(view: dict[str, Any], text: str, lines: list[int]) -> dict[str, Any]:
    """The current note with one claim appended to its first section."""
    sections = json.loads(json.dumps(view["note"]["sections"]))
    sections[0]["items"].append({"text": text, "lines": lines})
    return {"sections": sections}


def table_items(world: dict[str, Any]) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=world["table"])["Items"])


def test_view_returns_the_pipeline_note_as_version_0_with_timed_lines_and_is_audited(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    assert view["version"]["version"] == 0
    assert view["version"]["state"] == "DRAFT"
    assert view["note"]["sections"]
    assert view["signed_version"] is None
    assert [v["version"] for v in view["versions"]] == [0]
    assert view["lines"][0]["n"] == 1
    assert view["lines"][0]["start"] is not None
    assert view["lines"][0]["role"]
    assert view["record"]["encounter_id"] == documented
    trail = workspace.audit_for_encounter(ALICE, documented).items
    assert [(e["action"], e["actor_id"], e["version"]) for e in trail] == [("view", "local-alice", 0)]
    with pytest.raises(NotFound):
        workspace.encounter(ALICE, "enc-" + "0" * 32)
    with pytest.raises(NotFound):
        workspace.encounter(ALICE, "audio/zebulon.wav")


def test_a_save_is_a_new_draft_with_who_what_and_reverified_citations(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    saved = workspace.save_note(ALICE, documented, base_version=0,
                                note=edited(view, "Takes warfarin 500 mg daily", [1]))
    assert saved["version"] == 1
    assert saved["state"] == "DRAFT"
    assert saved["base_version"] == 0
    assert saved["actor_id"] == "local-alice"
    assert saved["role"] == "clinician"
    first = view["note"]["sections"][0]
    added = len(first["items"]) + 1
    assert {"change": "added", "section": first["name"], "item": added} in saved["changes"]
    flagged = [p for p in saved["problems"] if (p.get("section"), p.get("item")) == (first["name"], added)]
    assert flagged
    assert saved["problem_count"] == len(saved["problems"])
    after = workspace.encounter(BOB, documented)
    assert after["version"]["version"] == 1
    assert after["note"]["version"] == 1
    assert after["note"]["sections"][0]["items"][-1]["text"] == "Takes warfarin 500 mg daily"
    assert [v["version"] for v in after["versions"]] == [0, 1]
    with pytest.raises(BadRequest):
        workspace.save_note(ALICE, documented, base_version=1, note={"sections": [{"name": "Nope", "items": []}]})


def test_two_saves_on_the_same_base_cannot_both_win(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    workspace.save_note(ALICE, documented, base_version=0, note=edited(view, "Chest pain", [1]))
    with pytest.raises(StaleVersion) as stale:
        workspace.save_note(BOB, documented, base_version=0, note=edited(view, "Cough", [1]))
    assert stale.value.current == 1


def test_the_lost_race_of_a_conditional_write_is_a_stale_version(world, documented, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Both read base 0; the second's transaction fails on the head's condition, not on the early check."""
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    other = service(world)
    real_head = other.store.head
    heads = iter([real_head(documented)])  # the head as both read it, before either saved
    monkeypatch.setattr(other.store, "head", lambda encounter_id: next(heads, None) or real_head(encounter_id))
    workspace.save_note(ALICE, documented, base_version=0, note=edited(view, "Chest pain", [1]))
    with pytest.raises(StaleVersion) as stale:
        other.save_note(BOB, documented, base_version=0, note=edited(view, "Cough", [1]))
    assert stale.value.current == 1
    assert [v["version"] for v in workspace.encounter(ALICE, documented)["versions"]] == [0, 1]


def note_objects(encounter_id: str) -> list[dict[str, Any]]:
    """Every object version (and delete marker) under the encounter's version prefix."""
    listed = boto3.client("s3").list_object_versions(Bucket="artifacts", Prefix=f"notes/{encounter_id}/versions/")
    return [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]


def test_two_concurrent_saves_one_409_and_the_loser_leaves_no_object(world, documented) -> None:  # type: ignore[no-untyped-def]
    """Both pass the early check on base 0 and write their objects before either transaction runs; the
    transactions then run one at a time (as DynamoDB serializes them): one wins, the other is a 409 whose
    object version is deleted, not hidden behind a delete marker (the bucket is versioned)."""
    boto3.client("s3").put_bucket_versioning(Bucket="artifacts", VersioningConfiguration={"Status": "Enabled"})
    view = service(world).encounter(ALICE, documented)
    both_written = threading.Barrier(2, timeout=10)
    one_at_a_time = threading.Lock()
    outcomes: dict[str, Any] = {}

    def save(actor: Actor, text: str) -> None:
        workspace = service(world)
        put, add = workspace.artifacts.put_json_version, workspace.store.add_version

        def put_then_wait(key: str, value: Any) -> str | None:
            written = put(key, value)
            both_written.wait()
            return written

        def serialized(*args: Any, **kwargs: Any) -> bool:
            with one_at_a_time:
                return add(*args, **kwargs)

        workspace.artifacts.put_json_version = put_then_wait  # type: ignore[method-assign]
        workspace.store.add_version = serialized  # type: ignore[method-assign]
        try:
            outcomes[actor.actor_id] = workspace.save_note(actor, documented, base_version=0,
                                                           note=edited(view, text, [1]))
        except StaleVersion as exc:
            outcomes[actor.actor_id] = exc

    threads = [threading.Thread(target=save, args=(ALICE, "Chest pain")),
               threading.Thread(target=save, args=(BOB, "Cough"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    lost = [outcome for outcome in outcomes.values() if isinstance(outcome, StaleVersion)]
    won = [outcome for outcome in outcomes.values() if isinstance(outcome, dict)]
    assert len(lost) == 1, outcomes
    assert len(won) == 1, outcomes
    assert lost[0].current == 1
    (remaining,) = note_objects(documented)
    assert remaining["Key"] == won[0]["note_key"]
    assert remaining.get("IsLatest") is True  # a version, not a delete marker
    assert [v["version"] for v in service(world).encounter(ALICE, documented)["versions"]] == [0, 1]


def test_sign_then_amend_then_sign_again_and_exports_use_the_signed_version(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    assert workspace.signed_note(documented) is None
    signed = workspace.sign(ALICE, documented, version=0)
    assert signed["state"] == "SIGNED"
    assert signed["signed_by"] == "local-alice"
    with pytest.raises(NoteSigned):
        workspace.sign(BOB, documented, version=0)
    with pytest.raises(NoteSigned):
        workspace.save_note(BOB, documented, base_version=0, note=edited(view, "Cough", [1]))
    amended = workspace.save_note(BOB, documented, base_version=0, note=edited(view, "Cough", [1]),
                                  amend_reason="added the cough")
    assert amended["version"] == 1
    assert amended["state"] == "DRAFT"
    assert amended["amended"] is True
    assert amended["note"]["amend_reason"] == "added the cough"
    export = workspace.signed_note(documented)
    assert export is not None
    assert export["version"]["version"] == 0
    with pytest.raises(StaleVersion):
        workspace.sign(ALICE, documented, version=0)
    workspace.sign(ALICE, documented, version=1)
    export = workspace.signed_note(documented)
    assert export is not None
    assert export["version"]["version"] == 1
    assert export["note"]["sections"][0]["items"][-1]["text"] == "Cough"
    states = {v["version"]: v["state"] for v in workspace.encounter(ALICE, documented)["versions"]}
    assert states == {0: "SIGNED", 1: "SIGNED"}
    actions = [e["action"] for e in workspace.audit_for_encounter(ALICE, documented).items]
    assert actions.count("sign") == 2
    assert "amend" in actions


def test_an_emr_record_is_signed_but_not_edited(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = text_encounter(world, "text/n.txt", b"Chief complaint: knee pain for a week.")
    load_handler("document").handler(ready(encounter_id), Context())
    workspace = service(world)
    view = workspace.encounter(ALICE, encounter_id)
    assert view["note"] is None
    assert view["emr"] is not None
    with pytest.raises(Conflict):
        workspace.save_note(ALICE, encounter_id, base_version=0, note={"sections": []})
    assert workspace.sign(ALICE, encounter_id, version=0)["state"] == "SIGNED"
    export = workspace.signed_note(encounter_id)
    assert export is not None
    assert export["note"] == view["emr"]


def test_admin_routes_refuse_clinicians_and_the_trail_is_queryable_per_actor_and_as_csv(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    workspace.encounter(ALICE, documented)
    workspace.record(BOB, "play", documented, 0)
    workspace.record(BOB, "upload", None)
    for call in (lambda: workspace.audit(ALICE), lambda: workspace.audit_csv(ALICE),
                 lambda: workspace.erase(ALICE, documented)):
        with pytest.raises(Forbidden):
            call()
    with pytest.raises(BadRequest):
        workspace.record(BOB, "read chest pain", documented)
    assert [e["action"] for e in workspace.audit(ADMIN, actor_id="local-bob").items] == ["upload", "play"]
    everyone = workspace.audit(ADMIN).items
    assert {e["actor_id"] for e in everyone} == {"local-alice", "local-bob"}
    rows = list(csv.DictReader(io.StringIO(workspace.audit_csv(ADMIN, since="2000-01-01"))))
    assert {row["action"] for row in rows} == {"view", "play", "upload"}
    with pytest.raises(BadRequest):
        workspace.audit(ADMIN, cursor="not-a-cursor")


def test_erasure_deletes_the_versions_keeps_the_trail_and_is_audited(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    workspace.save_note(ALICE, documented, base_version=0, note=edited(view, "Chest pain", [1]))
    report = workspace.erase(ADMIN, documented)
    assert report["erased"] == [documented]
    assert EncounterRepository(world["table"]).get(documented) is None
    assert not [i for i in table_items(world) if i["pk"]["S"] == f"ENC#{documented}"]
    left = boto3.client("s3").list_object_versions(Bucket="artifacts", Prefix=f"notes/{documented}/")
    assert not left.get("Versions")
    actions = [e["action"] for e in workspace.audit_for_encounter(ADMIN, documented).items]
    assert actions[0] == "erase"
    assert "edit" in actions
    assert "view" in actions
    with pytest.raises(NotFound):
        workspace.encounter(ADMIN, documented)


def test_an_encounter_in_flight_is_not_erased(world) -> None:  # type: ignore[no-untyped-def]
    in_flight = transcribed_encounter(world, fareez_lines(count=3))  # TRANSCRIBED: documentation is next
    with pytest.raises(Conflict):
        service(world).erase(ADMIN, in_flight)
    assert EncounterRepository(world["table"]).get(in_flight) is not None


def test_phi_sentinels_in_an_edited_note_reach_no_audit_item_version_item_or_log(  # type: ignore[no-untyped-def]
        world, documented, log: io.StringIO) -> None:
    workspace = service(world)
    view = workspace.encounter(ALICE, documented)
    saved = workspace.save_note(ALICE, documented, base_version=0, note=edited(view, f"Patient is {SENTINEL}", [1]))
    workspace.sign(ALICE, documented, version=1)
    workspace.save_note(BOB, documented, base_version=1, note=edited(view, f"Seen by {SENTINEL}", [2]),
                        amend_reason=f"name was {SENTINEL}")
    exported = workspace.export(BOB, documented)  # the signed version 1, sentinel and all: audited as an export
    assert SENTINEL in json.dumps(saved["note"])  # the text itself is kept, in the artifacts bucket
    assert SENTINEL in signed_markdown(exported)
    items = json.dumps(table_items(world))  # before the erasure: version, head and audit items
    workspace.erase(ADMIN, documented)
    items += json.dumps(table_items(world)) + workspace.audit_csv(ADMIN)
    assert "note version saved" in log.getvalue()
    assert "signed note exported" in log.getvalue()
    assert "encounter erased" in log.getvalue()
    for word in ("Zebulon", "Quackenbush", "48213377", "name was"):
        assert word not in items
        assert word not in log.getvalue()


def test_export_hands_out_the_signed_version_only_and_is_audited_with_it(world, documented) -> None:  # type: ignore[no-untyped-def]
    workspace = service(world)
    with pytest.raises(Conflict, match="no signed version"):
        workspace.export(ALICE, documented)
    view = workspace.encounter(ALICE, documented)
    workspace.save_note(ALICE, documented, base_version=0, note=edited(view, "Signed claim", [1]))
    workspace.sign(BOB, documented, version=1)
    workspace.save_note(ALICE, documented, base_version=1, note=edited(view, "A later draft", [2]),
                        amend_reason="one more")
    exported = workspace.export(ALICE, documented)
    assert exported["encounter_id"] == documented
    assert exported["version"]["version"] == 1
    assert exported["version"]["state"] == "SIGNED"
    assert exported["version"]["signed_by"] == BOB.actor_id
    assert "Signed claim" in json.dumps(exported["note"])
    assert "A later draft" not in json.dumps(exported["note"])
    markdown = signed_markdown(exported)
    assert "- Version: 1" in markdown
    assert f"- Signed by: {BOB.actor_id} (clinician)" in markdown
    assert "- Signed claim *(line 1)*" in markdown
    exports = [e for e in workspace.audit_for_encounter(ALICE, documented).items if e["action"] == "export"]
    assert [(e["actor_id"], e["version"]) for e in exports] == [(ALICE.actor_id, 1)]
    with pytest.raises(NotFound):
        workspace.export(ALICE, "enc-" + "0" * 32)


def test_the_view_carries_the_coded_entities_and_which_claims_they_sit_beside(  # type: ignore[no-untyped-def]
        load_handler, world, documented, monkeypatch) -> None:
    from medscribe.domain import offline_entities
    from medscribe.domain.clinical_entities import Code, Entity, EntitySet, Span
    from tests.handlers.test_entities import ready as entities_ready

    before = service(world).encounter(ALICE, documented)
    assert (before["entities"], before["claim_entities"]) == (None, [])  # the entities stage has not run
    first = before["note"]["sections"][0]
    cited = first["items"][0]["lines"][0]
    uncited = max(line["n"] for line in before["lines"]) + 1  # a line no claim cites

    def extract(encounter_id: str, lines: Any, language: str) -> EntitySet:
        return EntitySet(encounter_id=encounter_id, engine="offline", language=language, entities=(
            Entity(id="e1", category="MEDICAL_CONDITION", type="DX_NAME", text="chest pain",
                   spans=(Span(cited, 0, 1),), codes=(Code("ICD-10-CM", "R07.9", "Chest pain, unspecified"),)),
            Entity(id="e2", category="ANATOMY", type="SYSTEM_ORGAN_SITE", text="arm", spans=(Span(uncited, 0, 1),))))

    monkeypatch.setattr(offline_entities, "extract", extract)
    load_handler("entities", entity_engine="offline").handler(entities_ready(documented), Context())
    view = service(world).encounter(ALICE, documented)
    assert [e["id"] for e in view["entities"]["entities"]] == ["e1", "e2"]
    assert {"section": first["name"], "item": 1, "entities": ["e1"]} in view["claim_entities"]
    assert all("e2" not in claim["entities"] for claim in view["claim_entities"])
    assert all(cited in next(s for s in view["note"]["sections"] if s["name"] == c["section"])["items"][c["item"] - 1]
               ["lines"] for c in view["claim_entities"])  # every listed claim cites the entity's line
