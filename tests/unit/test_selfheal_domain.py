"""Pairing, model names, leaderboard, promotion and the score report (medscribe.domain.selfheal)."""

from __future__ import annotations

import csv
import io
import math

import pytest

from medscribe.domain.selfheal import (
    BASELINE,
    REPORT_COLUMNS,
    ScoreRow,
    audio_key_prefix,
    candidate_name,
    decide,
    ground_truth_key,
    leaderboard,
    model_name,
    report_csv,
    report_message,
)

SENTINEL = "Zebediah-Quokkaworth"  # a name planted in the uploader's key: must stay out of the email


def row(encounter: str, model: str, rate: float) -> ScoreRow:
    return ScoreRow(encounter_id=encounter, model=model, metric="wer", error_rate=rate, wer=rate, mer=rate,
                    substitutions=3, deletions=2, insertions=1, hits=40, reference_words=45,
                    timestamp="2026-11-21T10:00:00.000Z")


@pytest.mark.parametrize(("audio", "truth"), [
    ("audio/clinic-a/visit 7.mp3", "ground-truth/clinic-a/visit 7.txt"),
    ("audio/x.wav", "ground-truth/x.txt"),
    ("audio/a.b/c", "ground-truth/a.b/c.txt"),  # a dot in a folder is not an extension
    ("audio/2026.11.21-visit.m4a", "ground-truth/2026.11.21-visit.txt"),
])
def test_ground_truth_pairs_by_relative_path(audio: str, truth: str) -> None:
    assert ground_truth_key(audio) == truth
    prefix = audio_key_prefix(truth)
    assert prefix is not None
    if "." in audio.rsplit("/", 1)[-1]:
        assert audio.startswith(prefix)


def test_keys_outside_the_prefixes_do_not_pair() -> None:
    assert ground_truth_key("text/x.txt") is None
    assert audio_key_prefix("ground-truth/x.csv") is None
    assert audio_key_prefix("audio/x.txt") is None


def test_model_names() -> None:
    assert model_name(None, None) == BASELINE
    assert model_name("v", None) == "v"
    assert model_name("v", "lm") == "lm"
    a = candidate_name("medscribe-dev", "en-US", ["sputum", "phlegm"])
    assert a == candidate_name("medscribe-dev", "en-US", ["phlegm", "sputum"])  # same phrases, same model
    assert a != candidate_name("medscribe-dev", "en-US", ["sputum"])
    assert a.startswith("medscribe-dev-sh-")


def test_leaderboard_ranks_models_on_the_same_files() -> None:
    rows = [row("e1", BASELINE, 0.2), row("e2", BASELINE, 0.3), row("e1", "cand", 0.1), row("e2", "cand", 0.2),
            row("e1", "partial", 0.0)]
    standings = leaderboard(rows, {"cand": "CANDIDATE"}, files=["e1", "e2"])
    assert [(s.model, s.files, round(s.mean_error_rate, 3), s.status) for s in standings] == [
        ("cand", 2, 0.15, "CANDIDATE"), (BASELINE, 2, 0.25, "")]  # "partial" has only one of the files
    assert [s.model for s in leaderboard(rows)] == ["partial", "cand", BASELINE]


def test_promotion_needs_the_margin_on_shared_files() -> None:
    incumbent = [row("e1", BASELINE, 0.20), row("e2", BASELINE, 0.30)]
    assert decide([row("e1", "c", 0.10), row("e2", "c", 0.20)], incumbent, 0.05).promote
    close = decide([row("e1", "c", 0.19), row("e2", "c", 0.30)], incumbent, 0.01)
    assert not close.promote
    assert close.candidate == pytest.approx(0.245)
    assert close.incumbent == pytest.approx(0.25)
    nothing = decide([row("e9", "c", 0.0)], incumbent, 0.01)
    assert not nothing.promote
    assert math.isnan(nothing.candidate)


def test_csv_report_starts_with_the_scoring_seed_columns() -> None:
    text = report_csv([row("e1", BASELINE, 0.25), row("e2", "cand", 1.5)])
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(REPORT_COLUMNS[:4]) == ["Filename", "Accuracy", "Index", "Timestamp"]
    assert [r["Index"] for r in records] == ["1", "2"]
    assert records[0]["Accuracy"] == "0.7500"
    assert records[1]["Accuracy"] == "0.0000"  # accuracy is never negative, even with WER > 1
    # a report mixes many patients: Filename is the encounter id, never the uploader's key (issue 14)
    assert [r["Filename"] for r in records] == ["e1", "e2"]
    assert "filename" not in ScoreRow.__dataclass_fields__
    assert "audio/" not in text


def test_email_carries_ids_models_and_numbers_only() -> None:
    rows = [row("enc-1", BASELINE, 0.25), row("enc-1", "cand", 0.125)]
    subject, body = report_message("run", rows, leaderboard(rows), "reports/scores/x.csv", note="kept baseline")
    assert SENTINEL not in subject + body
    assert "audio/" not in body
    assert "enc-1  baseline  WER 25.00%" in body
    assert "1. cand  12.50% over 1 file(s)" in body
    assert "reports/scores/x.csv" in body
    assert subject.startswith("medscribe scores: 2 file(s)")
