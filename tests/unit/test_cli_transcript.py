import json
from pathlib import Path

import pytest

from medscribe_local.cli import main
from tests import FIXTURES

DATA = FIXTURES / "transcribe-output"


def test_lines_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transcript", str(DATA / "aws-docs/strict_json/diarization-output-batch.json")]) == 0
    assert capsys.readouterr().out == "1\tspk_0\tI've been on hold for an hour.\n2\tspk_1\tSorry about that.\n"


def test_jsonl_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(DATA / "aws-docs/strict_json/channel-id-output-batch.json")
    main(["transcript", path, "--format", "jsonl"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["n"], r["speaker"], r["start"], r["end"]) for r in rows] == [
        (1, "ch_0", 4.86, 6.87), (2, "ch_1", 8.5, 9.25),
    ]
    main(["transcript", path, "--format", "csv"])
    assert capsys.readouterr().out.splitlines()[0] == "n,speaker,start,end,text,confidence"


def test_not_a_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["transcript", str(bad)]) == 1
    assert "results.items is missing" in capsys.readouterr().err
