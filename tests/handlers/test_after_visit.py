"""The after-visit summary through the document handler (moto for S3/DynamoDB; Bedrock through botocore's
Stubber with real Converse response shapes): written beside the note as notes/<id>/summary.json in the
encounter's language, by a second forced-tool Converse request with Bedrock; a summary that cannot be
written never fails the note; shown on the review page, returned by GET /api/encounters/{id} and shown on
the workspace's encounter page. The recorded Converse requests go through the contract tier's rules."""

from __future__ import annotations

import json
from typing import Any

from botocore.stub import ANY, Stubber
from starlette.testclient import TestClient

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.after_visit import SUMMARY_TOOL
from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.note_writing import NOTE_TOOL
from medscribe.services.workspace import Actor
from medscribe.settings import load_settings
from medscribe.workspace.app import create_app
from medscribe.workspace.auth import LocalAuth
from tests.adapters.test_bedrock import converse_response, tool_use
from tests.handlers.conftest import Context
from tests.handlers.test_document import ROOT, fareez_lines, read, ready, text_encounter, transcribed_encounter
from tests.handlers.test_document import load_handler as load_handler
from tests.handlers.test_workspace_service import service

__all__ = ["load_handler"]

SECTIONS = ["Chief complaint", "History of present illness", "Review of systems", "Past medical history",
            "Assessment", "Plan", "Physical examination"]


def note_answer() -> dict[str, Any]:
    return {"sections": [{"name": name, "items": [{"text": "Breathless for two months.", "lines": [2, 4]}]
                          if name == "Chief complaint" else []} for name in SECTIONS]}


def expected(model_id: str) -> dict[str, Any]:
    return {"modelId": model_id, "system": ANY, "messages": ANY, "inferenceConfig": ANY, "toolConfig": ANY}


def summary_of(encounter_id: str) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(read(f"notes/{encounter_id}/summary.json"))
    return stored


def test_bedrock_writes_the_summary_with_a_second_forced_tool_request(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines(count=6))
    handler = load_handler("document", note_engine="bedrock")
    settings = load_settings()
    requests: list[dict[str, Any]] = []
    client = aws_clients.client("bedrock-runtime")
    client.meta.events.register("provide-client-params.bedrock-runtime.Converse",
                                lambda params, **_: requests.append(params))
    stub = Stubber(client)
    stub.add_response("converse", converse_response([tool_use(note_answer())], "tool_use"),
                      expected(settings.bedrock_model_id))
    stub.add_response("converse", converse_response([tool_use({"sections": [
        {"name": "why_you_came", "sentences": [
            {"text": "You have been breathless for two months.", "lines": [2, 4]},
            {"text": "You have chest pain on the left side.", "lines": [2]}]}]}, name=SUMMARY_TOOL)], "tool_use"),
        expected(settings.bedrock_model_id))  # the fast tier: the model the stack grants the function
    with stub:
        handler.handler(ready(encounter_id), Context())
    stub.assert_no_pending_responses()
    assert [r["toolConfig"]["toolChoice"] for r in requests] == [{"tool": {"name": NOTE_TOOL}},
                                                                 {"tool": {"name": SUMMARY_TOOL}}]
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.DOCUMENTED  # the summary's problems are the summary's
    summary = summary_of(encounter_id)
    assert summary["engine"] == f"bedrock:{settings.bedrock_model_id}"
    assert summary["status"] == "NEEDS_REVIEW"
    [why] = [s for s in summary["sections"] if s["name"] == "why_you_came"]
    assert [(s["verified"], s["lines"]) for s in why["sentences"]] == [(True, [2, 4]), (False, [2])]
    page = read(encounter.review_key or "").decode()
    assert "You have been breathless for two months." in page
    assert 'class="claim claim-flagged" data-verdict="unsupported"><span class="claim-text">You have chest pain' in page
    assert "it gives a side (left/right) its cited lines do not" in page  # the checker's reason, in words


def test_a_summary_bedrock_refuses_never_fails_the_note(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    encounter_id = transcribed_encounter(world, fareez_lines(count=6))
    handler = load_handler("document", note_engine="bedrock")
    settings = load_settings()
    stub = Stubber(aws_clients.client("bedrock-runtime"))
    stub.add_response("converse", converse_response([tool_use(note_answer())], "tool_use"),
                      expected(settings.bedrock_model_id))
    stub.add_client_error("converse", "ValidationException", "Input is too long", 400)
    with stub:
        assert handler.handler(ready(encounter_id), Context()) == {"batchItemFailures": []}
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    assert encounter is not None
    assert encounter.status is EncounterStatus.DOCUMENTED
    assert json.loads(read(encounter.note_key or ""))["sections"][0]["items"]
    summary = summary_of(encounter_id)
    assert summary["status"] == "NEEDS_REVIEW"
    assert [p["code"] for p in summary["problems"]] == ["summary_failed"]
    assert "Summary needs review" in read(encounter.review_key or "").decode()


def test_a_korean_text_note_gets_a_korean_summary_on_its_review_page_and_in_the_workspace(load_handler, world) -> None:  # type: ignore[no-untyped-def]
    body = (ROOT / "sample-data" / "text" / "ko-diabetes-followup.txt").read_bytes()
    encounter_id = text_encounter(world, "text/ko-diabetes-followup.txt", body)
    load_handler("document").handler(ready(encounter_id), Context())
    summary = summary_of(encounter_id)
    assert (summary["language"], summary["status"], summary["engine"]) == ("ko", "DOCUMENTED", "offline")
    assert summary["sections"][2]["title"] == "복용하실 약"
    assert any("메트포르민 1000mg" in s["text"] for s in summary["sections"][2]["sentences"])
    encounter = EncounterRepository(world["table"]).get(encounter_id)
    page = read(encounter.review_key or "").decode()  # type: ignore[union-attr]
    assert '<section class="panel summary" aria-label="After-visit summary" lang="ko">' in page
    assert 'id="L7"' in page
    assert 'href="#L7"' in page

    auth = LocalAuth(Actor("local-tester", "clinician"), session_seconds=3600)
    client = TestClient(create_app(lambda: service(world), auth), base_url="http://testserver", follow_redirects=False)
    assert client.get(f"/login?token={auth.login_token}").status_code == 303
    assert client.get(f"/api/encounters/{encounter_id}").json()["summary"] == summary
    html = client.get(f"/encounters/{encounter_id}").text
    assert "진료 요약" in html
    assert "메트포르민 1000mg" in html
    assert 'id="L7"' in html  # a text note has no transcript panel: the summary lists the lines it cites
