"""bench/aci_notes.py scores notes as ACI-BENCH does (HF evaluate's rouge = rouge_score without stemming, mean of
per-note F1): checked on small examples against rouge_score itself and against counts worked out by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from rouge_score import rouge_scorer

from medscribe.domain.notes import Claim, Note, Section

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aci_notes", BENCH / "aci_notes.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["aci_notes"] = module
    spec.loader.exec_module(module)
    return module


aci_notes = _bench()
PAIRS = [
    ("CHIEF COMPLAINT\nBack pain.\n\nPLAN\nStart meloxicam 15 mg.", "CHIEF COMPLAINT\n\nBack pain.\n\nASSESSMENT AND "
     "PLAN\n\nAcute lumbar strain.\nInitiate meloxicam 15 mg once daily."),
    ("the cat sat on the mat", "the cat ran"),
]


def test_the_mean_of_per_note_f1_matches_rouge_score() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    expected = {kind: 100 * sum(scorer.score(ref, pred)[kind].fmeasure for pred, ref in PAIRS) / len(PAIRS)
                for kind in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
    assert aci_notes.rouge_means(PAIRS) == pytest.approx(expected)


def test_rouge_by_hand() -> None:
    # "the cat sat on the mat" vs "the cat ran": 2 unigrams shared, P = 2/6, R = 2/3, F = 4/9; bigram "the cat":
    # P = 1/5, R = 1/2, F = 2/7
    scores = aci_notes.rouge_means([PAIRS[1]])
    assert scores["rouge1"] == pytest.approx(100 * 4 / 9)
    assert scores["rouge2"] == pytest.approx(100 * 2 / 7)
    # tokens are lower-cased alphanumerics: a copy differing only in case and punctuation scores 100
    assert aci_notes.rouge_means([("Back pain.", "back pain")])["rougeLsum"] == pytest.approx(100)


def test_the_scored_note_text_is_its_filled_sections_with_headings() -> None:
    note = Note("VISIT", "offline", (), (Section("CHIEF COMPLAINT", (Claim("Back pain.", (1,)),)), Section("RESULTS"),
                                         Section("PLAN", (Claim("Rest.", (2,)), Claim("Ice.", (3,))))))
    assert aci_notes.note_text(note) == "CHIEF COMPLAINT\nBack pain.\n\nPLAN\nRest.\nIce."
