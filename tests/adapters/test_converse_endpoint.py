"""The Bedrock adapter and the CLI against the strict local Converse endpoint: Bedrock's request rules
enforced on the server side, botocore's real serialisation and parsing (Converse JSON and
ConverseStream's binary event stream), the offline engines' answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medscribe.adapters import aws_clients
from medscribe.adapters.llm.bedrock import BedrockModel
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.emr import FIELDS
from medscribe.domain.emr_structuring import structure_note
from medscribe.domain.errors import PermanentError
from medscribe.domain.note_writing import answer_question, write_note
from medscribe.domain.notes import NoteStatus
from medscribe_local.converse_endpoint import ConverseEndpoint
from tests import FIXTURES
from tests.dialogues import shared_dialogues

ROOT = Path(__file__).resolve().parents[2]
KO_NOTE = ROOT / "sample-data" / "text" / "ko-knee-pain.txt"
DIALOGUE = FIXTURES / "dialogues" / "fareez-osce" / "CAR0003.txt"
MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with ConverseEndpoint() as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", running.url)
        aws_clients.reset()
        yield running
    aws_clients.reset()


def cli(endpoint: ConverseEndpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": endpoint.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-m", "medscribe_local", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_cli_emr_on_a_korean_note_through_bedrock_meets_the_rules(endpoint: ConverseEndpoint) -> None:
    result = cli(endpoint, "emr", str(KO_NOTE), "--engine", "bedrock", "--json")
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert stored["status"] == "DOCUMENTED"
    assert stored["engine"] == f"bedrock:{MODEL}"
    assert list(stored["record"]) == list(FIELDS)  # the stored record keeps the display names
    assert stored["record"]["Age"] == "47"
    assert endpoint.rejected == []
    (request,) = endpoint.requests
    assert request["toolConfig"]["toolChoice"] == {"tool": {"name": "record_emr"}}


def test_cli_note_on_a_dialogue_through_bedrock_meets_the_rules(endpoint: ConverseEndpoint) -> None:
    result = cli(endpoint, "note", str(DIALOGUE), "--engine", "bedrock", "--json")
    assert result.returncode == 0, result.stderr
    note = json.loads(result.stdout)
    assert note["engine"] == f"bedrock:{MODEL}"
    assert note["sections"]
    assert endpoint.requests
    assert endpoint.rejected == []


def test_cli_emr_reports_an_unreadable_file_as_an_error(endpoint: ConverseEndpoint) -> None:
    result = cli(endpoint, "emr", str(FIXTURES / "none.txt"), "--engine", "bedrock")
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_a_rejected_request_is_a_permanent_error(endpoint: ConverseEndpoint) -> None:
    model = BedrockModel(MODEL)
    with pytest.raises(PermanentError, match="ValidationException"):
        model.generate_json(system="rules", prompt="data", schema={"type": "object", "properties": {
            "Symptoms and Signs": {"type": "string"}}}, tool_name="record_emr")
    assert any("Property keys should match pattern" in problem for problem in endpoint.rejected[0])


def test_converse_stream_answers_decode_to_the_same_record(endpoint: ConverseEndpoint) -> None:
    text = KO_NOTE.read_text(encoding="utf-8")
    plain = structure_note(text, "ko", BedrockModel(MODEL))
    streamed = structure_note(text, "ko", BedrockModel(MODEL, stream_above_tokens=0))
    assert streamed.record == plain.record
    assert streamed.status is NoteStatus.DOCUMENTED
    assert {request["modelId"] for request in endpoint.requests} == {MODEL}


def test_notes_and_answers_for_english_dialogues_pass_and_cite_real_lines(endpoint: ConverseEndpoint) -> None:
    model = BedrockModel(MODEL)
    for _name, text in shared_dialogues()[::20]:
        lines = dialogue_lines(text)
        note = write_note(lines, template="soap", engine=model)
        cited = {n for section in note.sections for claim in section.items for n in claim.lines}
        assert cited <= {line.n for line in lines}
        answer = answer_question(lines, "When did it start?", model)
        assert set(answer.lines) <= {line.n for line in lines}
    assert endpoint.rejected == []


def test_the_endpoint_answers_unknown_paths_like_a_service(endpoint: ConverseEndpoint) -> None:
    status, headers, body = endpoint.handle("/model/x/invoke", b"{}")
    assert status == 404
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert json.loads(body)["message"]


def test_the_claim_judge_request_meets_the_rules_and_gets_a_verdict_per_claim(endpoint: ConverseEndpoint) -> None:
    from medscribe.domain.claim_judge import judge_note
    from medscribe.domain.notes import Claim, Note, NoteLine, Section

    lines = (NoteLine(1, "spk_0", "clinician", "Any allergies to medicines?"),
             NoteLine(2, "spk_1", "patient", "Yes, I'm allergic to penicillin."))
    note = Note("hp", "offline", lines, (Section("Past medical history", (
        Claim("Allergic to penicillin", (2,)), Claim("No known drug allergies", (1, 2)))),))
    problems = judge_note(note, BedrockModel(MODEL))
    assert [(p.code, p.item) for p in problems] == [("judge_contradicted", 2)]
