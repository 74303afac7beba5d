import json

import pytest

from medscribe_local.cli import main
from tests import FIXTURES

FAREEZ = FIXTURES / "dialogues" / "fareez-osce"
DOCS = FIXTURES / "transcribe-output" / "aws-docs" / "strict_json"


@pytest.mark.parametrize(("template", "recorded"), [("hp", "HISTORY_AND_PHYSICAL"), ("soap", "SOAP"), ("DAP", "DAP")])
def test_note_json_shape_and_citations(template: str, recorded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["note", str(FAREEZ / "CAR0003.txt"), "--template", template, "--json"]) == 0
    note = json.loads(capsys.readouterr().out)
    assert {"template", "engine", "lines", "sections", "problems"} <= set(note)
    assert note["template"] == recorded  # an alias writes its catalogue name
    assert note["engine"] == "offline"
    numbers = {line["n"] for line in note["lines"]}
    assert {line["role"] for line in note["lines"]} == {"clinician", "patient"}
    cited = [n for section in note["sections"] for item in section["items"] for n in item["lines"]]
    assert cited
    assert set(cited) <= numbers


def test_note_from_transcribe_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["note", str(DOCS / "diarization-output-batch.json"), "--json"]) == 0
    assert [line["n"] for line in json.loads(capsys.readouterr().out)["lines"]] == [1, 2]


def test_ask_answers_with_citations_and_declines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", str(FAREEZ / "RES0006.txt"), "how many cigarettes a day?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["found"] is True
    assert 82 in answer["lines"]
    assert main(["ask", str(FAREEZ / "RES0006.txt"), "what is the favourite football team?"]) == 1
    assert "does not contain" in capsys.readouterr().out


def test_openai_engine_without_endpoint_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    """The endpoint is a setting (cdk.json's has none): the error names the settings, on one line."""
    assert main(["note", str(FAREEZ / "CAR0003.txt"), "--engine", "openai"]) == 2
    err = capsys.readouterr().err
    assert "openai_base_url and openai_model" in err
    assert "cdk.json" in err
    assert err.count("\n") == 1
