"""Scoring against independent references: jiwer's and HF evaluate's own WER/CER cases, OpenAI
Whisper's normaliser tests (tests/fixtures/wer-reference), and real Transcribe outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medscribe.domain.scoring import (
    EmptyReferenceError,
    Score,
    fixed_words,
    hypothesis_text,
    normalise,
    score,
)
from medscribe.domain.transcript_lines import TranscriptFormatError
from tests import FIXTURES

REFERENCE = FIXTURES / "wer-reference"
TRANSCRIBE = FIXTURES / "transcribe-output"
TRANSCRIBE_SAMPLES = sorted([*TRANSCRIBE.glob("tscribe/**/*.json"), *TRANSCRIBE.glob("aws-docs/strict_json/*.json")])


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((REFERENCE / name).read_text(encoding="utf-8")))


JIWER = load("jiwer_test_cases.json")
HF = load("hf_evaluate_wer_examples.json")["cases"]
WHISPER = load("whisper_normalizer_cases.json")["cases"]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def case_id(case: dict[str, Any], index: int) -> str:
    return f"{index}-{case.get('transform', 'cer')}-{case['reference']!r}->{case['hypothesis']!r}"[:80]


def has_empty_reference(case: dict[str, Any]) -> bool:
    return any(not sentence.strip() for sentence in as_list(case["reference"]))


def pooled(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Corpus-level figures as jiwer (wer_default) and HF evaluate compute them: align each pair,
    then pool the counts; WER = (S+D+I) / reference words, MER = (S+D+I) / (H+S+D+I)."""
    scores = [score(ref, hyp) for ref, hyp in zip(references, hypotheses, strict=True)]
    totals = {key: sum(getattr(s, key) for s in scores) for key in ("hits", "substitutions", "deletions", "insertions")}
    errors = totals["substitutions"] + totals["deletions"] + totals["insertions"]
    return {
        **totals,
        "wer": errors / sum(s.reference_words for s in scores),
        "mer": errors / (errors + totals["hits"]),
    }


def test_reference_data_is_complete() -> None:
    assert len(JIWER["wer_cases"]) == 31
    assert len(JIWER["cer_cases"]) == 15
    assert len(HF) == 3
    assert sum(len(cases) for cases in WHISPER.values()) == 60
    assert len(TRANSCRIBE_SAMPLES) >= 14


# -- WER against jiwer's and HF evaluate's cases ---------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=case_id(case, i))
        for i, case in enumerate(JIWER["wer_cases"])
        if not has_empty_reference(case)
    ],
)
def test_wer_matches_jiwer_cases(case: dict[str, Any]) -> None:
    references, hypotheses = as_list(case["reference"]), as_list(case["hypothesis"])
    if case["transform"] == "wer_contiguous":  # the sentences are joined into one before alignment
        references, hypotheses = [" ".join(references)], [" ".join(hypotheses)]
    figures = pooled(references, hypotheses)
    expected = case["expected"]  # wil/wip are not part of our Score
    assert figures["wer"] == pytest.approx(expected["wer"])
    for figure in ("mer", "hits", "substitutions", "deletions", "insertions"):
        if figure in expected:
            assert figures[figure] == pytest.approx(expected[figure]), figure


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case_id(case, i)) for i, case in enumerate(JIWER["wer_cases"]) if has_empty_reference(case)],
)
def test_empty_reference_is_refused_where_jiwer_returns_insertions(case: dict[str, Any]) -> None:
    """Deliberate deviation: jiwer 4 returns WER = number of inserted words for an empty reference;
    we raise, because a rate over zero reference words is undefined (and usually a wrong input)."""
    with pytest.raises(EmptyReferenceError, match="no words"):
        pooled(as_list(case["reference"]), as_list(case["hypothesis"]))


@pytest.mark.parametrize("case", HF, ids=[f"hf-{c['expected_wer']}" for c in HF])
def test_corpus_wer_matches_hf_evaluate(case: dict[str, Any]) -> None:
    assert pooled(case["references"], case["predictions"])["wer"] == pytest.approx(case["expected_wer"])


# -- CER (Korean path) against jiwer's cases -------------------------------------------------------

# jiwer counts spaces as characters; our Korean CER removes whitespace (spacing varies between
# Korean transcribers), so these cases have a different, hand-derived value on our path.
SPACING_DEVIATIONS: dict[tuple[str, str], tuple[float, str]] = {
    ("This is a test", "This test"): (3 / 11, "thisisatest -> thistest: 3 deletions of 11"),
    ("X", "X X Y Y"): (3.0, "x -> xxyy: 3 insertions of 1"),
    ("X Y X", "X Z"): (2 / 3, "xyx -> xz: 1 substitution + 1 deletion of 3"),
    ("X", "Y Z"): (2.0, "x -> yz: 1 substitution + 1 insertion of 1"),
    ("i|am i good", "i am|i good"): (4 / 8, "i->iam 2 ins; amigood->igood 2 del; 4 of 8 pooled"),
    ("am i good|i", "i good|i am"): (4 / 8, "amigood->igood 2 del; i->iam 2 ins; 4 of 8 pooled"),
}


def pooled_cer(references: list[str], hypotheses: list[str]) -> float:
    scores = [score(ref, hyp, language="ko") for ref, hyp in zip(references, hypotheses, strict=True)]
    lengths = [len(normalise(ref, "ko").replace(" ", "")) for ref in references]
    return sum(s.error_rate * n for s, n in zip(scores, lengths, strict=True)) / sum(lengths)


def cer_params() -> list[Any]:
    params = []
    for i, case in enumerate(JIWER["cer_cases"]):
        if has_empty_reference(case):
            continue
        key = ("|".join(as_list(case["reference"])), "|".join(as_list(case["hypothesis"])))
        expected, why = SPACING_DEVIATIONS.get(key, (case["expected_cer"], "same as jiwer"))
        params.append(pytest.param(case, expected, why, id=case_id(case, i)))
    return params


@pytest.mark.parametrize(("case", "expected", "why"), cer_params())
def test_cer_matches_jiwer_cases_except_spacing(case: dict[str, Any], expected: float, why: str) -> None:
    cer = pooled_cer(as_list(case["reference"]), as_list(case["hypothesis"]))
    assert cer == pytest.approx(expected), why


def test_every_spacing_deviation_is_a_real_case() -> None:
    keys = {("|".join(as_list(c["reference"])), "|".join(as_list(c["hypothesis"]))) for c in JIWER["cer_cases"]}
    assert set(SPACING_DEVIATIONS) <= keys


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=case_id(case, i)) for i, case in enumerate(JIWER["cer_cases"]) if has_empty_reference(case)],
)
def test_empty_korean_reference_is_refused(case: dict[str, Any]) -> None:
    with pytest.raises(EmptyReferenceError):
        score(case["reference"], case["hypothesis"], language="ko")


def test_korean_cer_ignores_spacing_and_punctuation_but_not_characters() -> None:
    reference = "환자는 두통과 발열을 호소합니다."
    assert score(reference, "환자는 두통과 발열을 호소 합니다", language="ko").cer == 0.0
    misheard = score(reference, "환자는 두퉁과 발열을 호소합니다", language="ko-KR")
    assert misheard.cer == pytest.approx(1 / 14)  # 환자는두통과발열을호소합니다: 14 characters
    assert misheard.metric == "cer"
    assert misheard.error_rate == misheard.cer
    assert misheard.wer == pytest.approx(1 / 4)
    assert misheard.missed_words == ("두통과",)
    assert {"wer", "cer", "missed_words"} <= misheard.to_json().keys()


def test_korean_normaliser_folds_width_case_and_symbols() -> None:
    assert normalise("\uff23\uff34 검사, MRI 검사!", "ko") == "ct 검사 mri 검사"


# -- the English normaliser ------------------------------------------------------------------------


def whisper_params() -> list[Any]:
    return [
        pytest.param(case["input"], case["expected"], id=f"{group.split()[0]}-{case['input']}")
        for group, cases in WHISPER.items()
        for case in cases
    ]


@pytest.mark.parametrize(("text", "expected"), whisper_params())
def test_whisper_normaliser_cases(text: str, expected: str) -> None:
    # Number and spelling cases hold for Whisper's EnglishTextNormalizer too (it runs both).
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("I\u2019m sure it\u2019s fine", "i am sure it is fine", id="typographic-apostrophe"),
        pytest.param("I cannot sleep", "i can not sleep", id="cannot-as-can't"),
        pytest.param("It hurts...", "it hurts", id="ellipsis-leaves-no-dot"),
        pytest.param("A 5 mm lesion", "a 5 mm lesion", id="mm-after-number-is-a-unit"),
        pytest.param("It costs $ 20, 5 % off", "it costs $20 5% off", id="currency-percent-attached"),
        pytest.param("the cause of the rash", "the cause of the rash", id="cause-stays-a-noun"),
        pytest.param("Hm, umm, uhm, uhh, erm, the ER", "the er", id="extra-fillers-not-er"),
    ],
)
def test_wrapper_fixes_over_whisper_normalizer(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Um, the umbrella... uh, hummus. Hmm!", "the umbrella hummus"),
        ("Mm-hmm. Mhm. Drum, summary, uhuru, mmmbop", "drum summary uhuru mmmbop"),
        ("UM, UH", ""),
    ],
)
def test_fillers_are_removed_as_whole_words_only(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("Um, the patient, uh, has a rash.", "The patient has a rash"),
        ("I can't breathe", "I cannot breathe"),
        ("Don't stop the metformin.", "do not stop the Metformin"),
        ("She's been taking 5 mg.", "she has been taking five mg"),
        ("Take two tablets twice a day", "take 2 tablets twice a day"),
        ("It\u2019s 98.6 degrees", "it's ninety eight point six degrees"),
        ("Saturation is 95%.", "saturation is ninety five percent"),
        ("The colour is normal", "the color is normal"),
    ],
)
def test_both_sides_normalise_the_same_way(reference: str, hypothesis: str) -> None:
    assert score(reference, hypothesis).wer == 0.0
    assert score(hypothesis, reference).wer == 0.0


def test_a_different_number_is_still_an_error() -> None:
    result = score("take two tablets", "take 3 tablets")
    assert result.wer == pytest.approx(1 / 3)
    assert result.missed_words == ("2",)


# -- missed and fixed words ------------------------------------------------------------------------


def test_missed_words_follow_the_alignment() -> None:
    # jiwer's test_alignment case: REF this is a ***** test of skill / HYP this was a messy test
    result = score("this is a test of skill", "this was a messy test")
    assert (result.substitutions, result.deletions, result.insertions, result.hits) == (1, 2, 1, 3)
    assert result.missed_words == ("is", "of", "skill")


def test_missed_words_are_counted_per_occurrence() -> None:
    deleted = score("No chest pain, no fever, no cough.", "chest pain fever cough")
    assert deleted.missed_words == ("no", "no", "no")
    substituted = score("Take aspirin daily and aspirin at night", "take asprin daily and asprin at night")
    assert substituted.missed_words == ("aspirin", "aspirin")
    assert substituted.substitutions == 2
    assert score("no fever", "no fever at all").missed_words == ()


def test_fixed_words_are_aligned_by_reference_position() -> None:
    reference = "Metformin in the morning and metformin at night"
    baseline = "met forming in the morning and metformin at night"
    candidate = "metformin in the morning and met forming at night"
    assert fixed_words(reference, baseline, candidate) == ["metformin"]  # the 1st occurrence only
    assert fixed_words(reference, candidate, baseline) == ["metformin"]  # the 2nd, the other way round
    assert fixed_words(reference, baseline, baseline) == []


def test_fixed_words_counts_each_occurrence() -> None:
    reference = "lisinopril and lisinopril"
    assert fixed_words(reference, "listen april and lisa no pill", "lisinopril and lisinopril") == [
        "lisinopril",
        "lisinopril",
    ]


def test_fixed_words_in_korean() -> None:
    assert fixed_words("두통과 발열", "두퉁과 발열", "두통과 발열", "ko") == ["두통과"]


# -- the result and its edges ----------------------------------------------------------------------


def test_score_json() -> None:
    result = score("The patient has a rash on the arm.", "the patient has rash on the arm")
    assert isinstance(result, Score)
    document = result.to_json()
    assert document == {
        "language": "en",
        "metric": "wer",
        "wer": pytest.approx(1 / 8),
        "mer": pytest.approx(1 / 8),
        "substitutions": 0,
        "deletions": 1,
        "insertions": 0,
        "hits": 7,
        "reference_words": 8,
        "missed_words": ["a"],
    }
    json.dumps(document)


@pytest.mark.parametrize("reference", ["", "   ", "Um... uh. Hmm?", "[inaudible]"])
def test_empty_reference_raises_a_clear_error(reference: str) -> None:
    with pytest.raises(EmptyReferenceError, match="reference has no words"):
        score(reference, "hello")
    with pytest.raises(EmptyReferenceError):
        fixed_words(reference, "hello", "hello")


def test_empty_hypothesis_misses_everything() -> None:
    result = score("chest pain", "")
    assert (result.wer, result.deletions, result.missed_words) == (1.0, 2, ("chest", "pain"))


def test_language_codes() -> None:
    assert score("hello", "hello", language="en-US").language == "en"
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        score("bonjour", "bonjour", language="fr")


# -- hypothesis input: plain text or Amazon Transcribe output --------------------------------------


@pytest.mark.parametrize("path", TRANSCRIBE_SAMPLES, ids=lambda p: p.name)
def test_transcribe_output_gives_its_transcript(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    transcript = document["results"]["transcripts"][0]["transcript"]
    assert transcript
    assert hypothesis_text(path.read_bytes()) == transcript
    assert hypothesis_text(path.read_text(encoding="utf-8")) == transcript
    assert hypothesis_text(document) == transcript
    assert score(transcript, hypothesis_text(path.read_bytes())).wer == 0.0


def test_transcribe_output_without_transcripts_is_empty() -> None:
    document = {"jobName": "job", "results": {"transcripts": [], "items": []}, "status": "COMPLETED"}
    assert hypothesis_text(document) == ""
    assert hypothesis_text(json.dumps(document).encode()) == ""
    assert score("chest pain", hypothesis_text(document)).wer == 1.0


def test_plain_text_is_passed_through() -> None:
    assert hypothesis_text("The patient has a rash.\n") == "The patient has a rash.\n"
    assert hypothesis_text("\ufeffThe patient has a rash.".encode()) == "The patient has a rash."
    assert hypothesis_text("{not json} said the patient") == "{not json} said the patient"


@pytest.mark.parametrize("document", [{"results": {}}, {"text": "hello"}, {"results": {"transcripts": "x"}}])
def test_other_json_objects_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(TranscriptFormatError, match=r"results\.transcripts"):
        hypothesis_text(json.dumps(document))
