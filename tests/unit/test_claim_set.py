"""The claim checker's labelled set (tests/fixtures/claims/labelled.jsonl) is well formed and cites real
lines, and bench/claims.py computes its figures right (on a stand-in checker: the real checker's
quality is what the bench measures, not what a test asserts)."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from medscribe.domain.dialogue import dialogue_lines
from tests import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
LABELLED = FIXTURES / "claims" / "labelled.jsonl"
DIALOGUES = FIXTURES / "dialogues"
LABELS = {"supported", "unsupported", "contradicted"}
KINDS = {
    "verbatim", "paraphrase", "abbreviation", "number_words", "negation", "medication", "dose", "frequency",
    "number", "unit", "duration", "laterality", "site", "allergy", "attribution", "finding", "plan",
    "extra_fact", "unrelated_line", "injection",
}
SPEAKERS = {"clinician": "D", "patient": "P", "guest": "G"}
_SOURCE = re.compile(r"^(?P<path>[^#:]+)(?::(?P<row>[A-Z0-9]+))?#(?P<first>\d+)(?:-(?P<last>\d+))?$")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_PRIMOCK_MARKUP = re.compile(r"</?UNSURE>|<UNIN\s*/>")  # transcription markup, not words: dropped


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_claims", ROOT / "bench" / "claims.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def _items() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _source_lines(source: str) -> tuple[str, list[str]]:
    """(raw text of the cited file or CSV cell, the lines as the set numbers them)."""
    match = _SOURCE.match(source)
    assert match, f"source {source!r} is not <dataset>/<file>[:<row>]#<first>[-<last>]"
    path, row = match.group("path"), match.group("row")
    if path.startswith("sample-data/"):
        raw = (ROOT / path).read_text(encoding="utf-8")
        return raw, raw.splitlines()
    file = DIALOGUES / path
    if row is None:
        raw = file.read_text(encoding="utf-8")
    else:
        with file.open(newline="", encoding="utf-8") as handle:
            cells = [r["dialogue"] for r in csv.DictReader(handle) if r["id"] == row]
        assert len(cells) == 1, f"{source}: no single row {row}"
        raw = cells[0]
    return raw, [f"{SPEAKERS[line.speaker]}: {line.text}" for line in dialogue_lines(raw)]


def test_every_line_is_valid_json_with_the_fields_and_vocabulary() -> None:
    for number, raw in enumerate(LABELLED.read_text(encoding="utf-8").splitlines(), start=1):
        item = json.loads(raw)
        assert set(item) == {"id", "source", "lines", "claim", "label", "kind"}, number
        assert all(isinstance(item[key], str) and item[key].strip()
                   for key in ("id", "source", "claim", "label", "kind")), number
        assert isinstance(item["lines"], list), number
        assert 1 <= len(item["lines"]) <= 3, number
        assert all(isinstance(line, str) and line.strip() for line in item["lines"]), number
        assert item["label"] in LABELS, (number, item["label"])
        assert item["kind"] in KINDS, (number, item["kind"])


def test_ids_are_unique_and_the_set_is_big_enough() -> None:
    items = _items()
    ids = Counter(item["id"] for item in items)
    assert [i for i, n in ids.items() if n > 1] == []
    assert len(items) >= 150
    pairs = Counter((item["source"], item["claim"]) for item in items)
    assert [p for p, n in pairs.items() if n > 1] == []


def test_label_proportions_stay_in_range() -> None:
    labels = Counter(item["label"] for item in _items())
    total = sum(labels.values())
    assert 0.35 <= labels["supported"] / total <= 0.55, labels
    assert 0.20 <= labels["contradicted"] / total <= 0.35, labels
    assert 0.20 <= labels["unsupported"] / total <= 0.40, labels


def test_at_least_fifteen_korean_items_with_korean_lines_and_every_label() -> None:
    korean = [item for item in _items() if _HANGUL.search(item["claim"])]
    assert len(korean) >= 15
    assert all(any(_HANGUL.search(line) for line in item["lines"]) for item in korean)
    assert {item["label"] for item in korean} == LABELS


@pytest.mark.parametrize("item", _items(), ids=lambda item: str(item["id"]))
def test_cited_lines_are_copied_from_the_source_at_the_cited_numbers(item: dict[str, Any]) -> None:
    source, lines = item["source"], item["lines"]
    raw, numbered = _source_lines(source)
    match = _SOURCE.match(source)
    assert match
    first = int(match.group("first"))
    last = int(match.group("last") or first)
    assert last - first + 1 == len(lines), "the range must cover exactly the cited lines"
    assert lines == numbered[first - 1:last]
    squashed = _squash(_PRIMOCK_MARKUP.sub(" ", raw) if source.startswith("primock57/") else raw)
    for line in lines:  # the text itself, not only the parser's rendering of it, is in the file
        text = line if source.startswith("sample-data/") else line.split(": ", 1)[1]
        assert _squash(text) in squashed, line


# --- bench/claims.py on a stand-in checker --------------------------------------------------------

@dataclass(frozen=True)
class _Verdict:
    status: str
    reasons: tuple[str, ...] = ()


# label, what the stand-in answers: TP 3 (one contradicted answered "unsupported"), FP 1, FN 2, TN 2
_WORKED = [
    ("s1", "supported", "supported"),
    ("s2", "supported", "unsupported"),
    ("s3", "supported", "supported"),
    ("u1", "unsupported", "unsupported"),
    ("u2", "unsupported", "supported"),
    ("c1", "contradicted", "unsupported"),
    ("c2", "contradicted", "contradicted"),
    ("c3", "contradicted", "supported"),
]


def _worked_items() -> list[Any]:
    return [bench.Item(id=id_, source="x#1", lines=("P: line",), claim=f"claim {id_}", label=label,
                       kind="negation" if id_ in ("c1", "c2", "c3") else "paraphrase")
            for id_, label, _ in _WORKED]


def _stand_in(claim: str, lines: Sequence[str]) -> _Verdict | str:
    answer = {f"claim {id_}": status for id_, _, status in _WORKED}[claim]
    return answer if claim.endswith("1") else _Verdict(answer, ("stand-in",))  # both return shapes


def test_metrics_match_the_hand_worked_example() -> None:
    m = bench.metrics(bench.run(_stand_in, _worked_items()))
    assert (m.true_pos, m.false_pos, m.false_neg, m.true_neg) == (3, 1, 2, 2)
    assert m.precision == pytest.approx(3 / 4)
    assert m.recall == pytest.approx(3 / 5)
    assert m.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert m.recall_contradicted == pytest.approx(2 / 3)
    assert m.recall_unsupported == pytest.approx(1 / 2)
    assert m.confusion == {
        ("supported", "supported"): 2, ("supported", "unsupported"): 1, ("supported", "contradicted"): 0,
        ("unsupported", "supported"): 1, ("unsupported", "unsupported"): 1, ("unsupported", "contradicted"): 0,
        ("contradicted", "supported"): 1, ("contradicted", "unsupported"): 1, ("contradicted", "contradicted"): 1,
    }
    assert bench.hit_rates(bench.run(_stand_in, _worked_items())) == {
        ("supported", "paraphrase"): (3, 2), ("unsupported", "paraphrase"): (2, 1),
        ("contradicted", "negation"): (3, 2),
    }


def test_flagging_nothing_has_no_precision_and_zero_recall() -> None:
    m = bench.metrics(bench.run(bench.citation_exists, _worked_items()))
    assert (m.true_pos, m.false_pos, m.precision, m.recall, m.f1) == (0, 0, None, 0.0, None)


def test_a_status_outside_the_vocabulary_is_an_error() -> None:
    with pytest.raises(ValueError, match="not one of"):
        bench.run(lambda claim, lines: "maybe", _worked_items())


def test_content_overlap_flags_below_half_of_the_content_words() -> None:
    lines = ["P: I take aspirin every morning."]
    assert bench.content_overlap("Takes aspirin.", lines) == "supported"  # 1 of 2: half is enough
    assert bench.content_overlap("Takes aspirin daily.", lines) == "unsupported"  # 1 of 3
    assert bench.content_overlap("아스피린 복용", ["P: 아스피린 복용 중"]) == "supported"


def test_main_prints_figures_and_error_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    labelled = tmp_path / "set.jsonl"
    labelled.write_text("".join(
        json.dumps({"id": item.id, "source": item.source, "lines": list(item.lines), "claim": item.claim,
                    "label": item.label, "kind": item.kind}) + "\n" for item in _worked_items()),
        encoding="utf-8")
    monkeypatch.setattr(bench, "medscribe_checker", lambda: _stand_in)
    bench.main(["--set", str(labelled)])
    out = capsys.readouterr().out
    assert "8 labelled claims" in out
    assert "| verify_claim | 4 | 75.0% | 60.0% | 66.7% | 66.7% | 50.0% |" in out
    assert "| citation-exists | 0 | n/a | 0.0% | n/a | 0.0% | 0.0% |" in out
    assert "false positives (supported, flagged): 1\n  s2\n" in out
    assert "false negatives (contradicted/unsupported, passed): 2\n  u2 c3\n" in out
    bench.main(["--set", str(labelled), "--verbose"])
    verbose = capsys.readouterr().out
    assert "c3 [contradicted/negation -> supported] claim c3" in verbose
    assert "reasons: stand-in" in verbose


def test_the_bench_loads_the_whole_set(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench, "medscribe_checker", lambda: bench.content_overlap)
    bench.main([])
    out = capsys.readouterr().out
    assert f"{len(_items())} labelled claims (labelled.jsonl)" in out
    assert "| verify_claim |" in out
    assert "verify_claim false negatives" in out
