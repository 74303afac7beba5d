"""`medscribe reprocess` over a note a clinician has worked on (services/reprocess.py): refused without
--discard-edits; with it the re-run proceeds, every earlier version stays in the history (the pipeline's
previous note copied to its own object before the re-run overwrites it), the signature is not carried
over to the re-run's note, which is a new unsigned draft, and the re-run is in the audit trail. Through
the service and through the CLI (`--aws`, moto playing the account). Moto for DynamoDB, S3 and
EventBridge; the real document handler re-runs the note. Dialogue text from
tests/fixtures/dialogues/fareez-osce (CC BY 4.0, Fareez et al. 2022)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.audit import Actor
from medscribe.domain.encounter import EncounterStatus
from medscribe.services.reprocess import ClinicianWork, ReprocessService
from medscribe.services.wiring import reprocess_service
from medscribe.services.workspace import Conflict
from medscribe.settings import load_settings
from medscribe_local.cli import main
from tests.handlers.conftest import Context
from tests.handlers.test_document import FAREEZ, read, ready, text_encounter
from tests.handlers.test_malformed_messages import log  # noqa: F401  (fixture)
from tests.handlers.test_workspace_service import service as workspace_at

ALICE = Actor("local-alice", "clinician")
OPERATOR = Actor("local-operator", "admin")
ADDED = "Owns a pet quokka"
SENTINEL = "Zebulon Quackenbush MRN 48213377"


def document(load_handler, encounter_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The document handler (offline engine) on a ready-for-documentation event: the (re-)run's note."""
    return dict(load_handler("document", note_engine="offline").handler(ready(encounter_id), Context()))


def reprocessor(world: dict[str, Any]) -> ReprocessService:
    return reprocess_service(table_name=world["table"], artifacts_bucket="artifacts",
                             kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k", settings=load_settings())


@pytest.fixture
def signed_edit(load_handler, world: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    """A text dialogue documented by the document handler, edited by a clinician (version 1) and signed."""
    encounter_id = text_encounter(world, "text/visit.txt", (FAREEZ / "GAS0001.txt").read_bytes())
    assert document(load_handler, encounter_id) == {"batchItemFailures": []}
    workspace = workspace_at(world)
    sections = json.loads(json.dumps(workspace.encounter(ALICE, encounter_id)["note"]["sections"]))
    sections[0]["items"].append({"text": ADDED, "lines": [1]})
    workspace.save_note(ALICE, encounter_id, base_version=0, note={"sections": sections})
    workspace.sign(ALICE, encounter_id, version=1)
    return encounter_id


def claims(note: dict[str, Any]) -> list[str]:
    return [item["text"] for section in note["sections"] for item in section["items"]]


def test_clinician_work_is_not_rerun_without_discard_edits(world, signed_edit) -> None:  # type: ignore[no-untyped-def]
    before = EncounterRepository(world["table"]).get(signed_edit)
    with pytest.raises(ClinicianWork, match=r"version 1 is signed.*--discard-edits"):
        reprocessor(world).reprocess(signed_edit, OPERATOR)
    after = EncounterRepository(world["table"]).get(signed_edit)
    assert after == before  # not restarted
    view = workspace_at(world).encounter(ALICE, signed_edit)
    assert (view["version"]["version"], view["signed_version"]) == (1, 1)


def test_an_unsigned_edit_is_clinician_work_too(world, load_handler) -> None:  # type: ignore[no-untyped-def]
    encounter_id = text_encounter(world, "text/visit.txt", (FAREEZ / "GAS0001.txt").read_bytes())
    document(load_handler, encounter_id)
    workspace = workspace_at(world)
    reprocessor(world).reprocess(encounter_id, OPERATOR)  # no clinician work: re-run as before
    document(load_handler, encounter_id)
    sections = workspace.encounter(ALICE, encounter_id)["note"]["sections"]
    workspace.save_note(ALICE, encounter_id, base_version=0, note={"sections": sections[::-1]})
    with pytest.raises(ClinicianWork, match="version 1 was saved by a clinician"):
        reprocessor(world).reprocess(encounter_id, OPERATOR)


def test_discard_edits_reruns_keeps_the_history_and_starts_an_unsigned_draft(  # type: ignore[no-untyped-def]
    world, load_handler, signed_edit,
) -> None:
    pipeline_note = json.loads(read(f"notes/{signed_edit}/note.json"))
    restarted = reprocessor(world).reprocess(signed_edit, OPERATOR, discard_edits=True)
    assert (restarted.status, restarted.run) == (EncounterStatus.RECEIVED, 2)
    workspace = workspace_at(world)
    # while the note is being written again, nobody edits or signs it
    with pytest.raises(Conflict, match="being processed"):
        workspace.sign(ALICE, signed_edit, version=2)
    with pytest.raises(Conflict, match="being processed"):
        workspace.save_note(ALICE, signed_edit, base_version=2, note={"sections": pipeline_note["sections"]})

    assert document(load_handler, signed_edit) == {"batchItemFailures": []}
    view = workspace.encounter(ALICE, signed_edit)
    assert view["record"]["status"] in ("DOCUMENTED", "NEEDS_REVIEW")
    assert view["signed_version"] is None  # the signature did not carry over
    assert view["version"]["version"] == 2
    assert (view["version"]["state"], view["version"]["actor_id"]) == ("DRAFT", "pipeline")
    assert ADDED not in claims(view["note"])  # the re-run's note is current
    # nothing lost: version 0 (the previous pipeline note) in its own object, version 1 still signed by alice
    versions = {v["version"]: v for v in view["versions"]}
    assert sorted(versions) == [0, 1, 2]
    assert versions[0]["note_key"] != f"notes/{signed_edit}/note.json"
    assert json.loads(read(versions[0]["note_key"])) == pipeline_note
    assert (versions[1]["state"], versions[1]["signed_by"]) == ("SIGNED", "local-alice")
    assert ADDED in claims(json.loads(read(versions[1]["note_key"])))
    trail = workspace.audit_for_encounter(ALICE, signed_edit).items
    assert ("reprocess", "local-operator", 2) in [(e["action"], e["actor_id"], e["version"]) for e in trail]
    with pytest.raises(Conflict, match="no signed version"):
        workspace.export(ALICE, signed_edit)
    # the re-run's draft is edited and signed like any other version, and is then clinician work again
    signed = workspace.sign(ALICE, signed_edit, version=2)
    assert signed["state"] == "SIGNED"
    with pytest.raises(ClinicianWork):
        reprocessor(world).reprocess(signed_edit, OPERATOR)


def test_a_rerun_over_a_sentinel_edit_puts_no_phi_in_table_items_or_logs(  # type: ignore[no-untyped-def]
    world, signed_edit, log: io.StringIO,  # noqa: F811
) -> None:
    workspace = workspace_at(world)
    sections = json.loads(json.dumps(workspace.encounter(ALICE, signed_edit)["note"]["sections"]))
    sections[0]["items"].append({"text": f"Patient is {SENTINEL}", "lines": [2]})
    workspace.save_note(ALICE, signed_edit, base_version=1, note={"sections": sections},
                        amend_reason=f"name was {SENTINEL}")
    with pytest.raises(ClinicianWork) as refused:
        reprocessor(world).reprocess(signed_edit, OPERATOR)
    reprocessor(world).reprocess(signed_edit, OPERATOR, discard_edits=True)
    items = json.dumps(boto3.client("dynamodb").scan(TableName=world["table"])["Items"])
    assert "clinician work superseded" in log.getvalue()
    for word in ("Zebulon", "Quackenbush", "48213377", "name was"):
        assert word not in items + str(refused.value) + log.getvalue()


def stack_outputs(table: str) -> None:
    outputs = {"TableName": table, "ArtifactsBucketName": "artifacts",
               "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName=load_settings().prefix, TemplateBody=json.dumps(template))


def test_the_cli_refuses_with_one_line_and_exit_1_then_reruns_with_discard_edits(  # type: ignore[no-untyped-def]
    world, signed_edit, capsys,
) -> None:
    stack_outputs(world["table"])
    assert main(["reprocess", signed_edit, "--aws"]) == 1
    out, err = capsys.readouterr()
    assert err.strip().count("\n") == 0
    assert "clinician work" in err
    assert "--discard-edits" in err
    assert EncounterRepository(world["table"]).get(signed_edit).run is None  # type: ignore[union-attr]

    assert main(["reprocess", signed_edit, "--aws", "--discard-edits"]) == 0
    out, err = capsys.readouterr()
    assert "run 2 started" in out
    assert ADDED not in out + err
    trail = workspace_at(world).audit_for_encounter(ALICE, signed_edit).items
    assert [e["action"] for e in trail if e["action"] == "reprocess"] == ["reprocess"]
