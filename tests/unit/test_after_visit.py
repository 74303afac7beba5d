"""domain/after_visit.py: the after-visit summary. Offline sentences cite lines and pass the claim checker
(English dialogue, English and Korean text notes, a Korean transcript); the checker flags what a model
writes that its lines do not support; the template is data; the model request is one forced tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medscribe.domain.after_visit import (
    SUMMARY_TOOL,
    evaluate,
    load_summary_template,
    parse_summary_template,
    plain,
    write_summary,
)
from medscribe.domain.claim_text import normalise
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.emr_structuring import structure_note
from medscribe.domain.evidence import verify_claim
from medscribe.domain.llm import Generation
from medscribe.domain.note_writing import write_note
from medscribe.domain.notes import CLINICIAN, PATIENT, Claim, Note, Problem, Section, TemplateError
from medscribe.domain.transcript_lines import Line, note_text_lines
from tests import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
TEXT = ROOT / "sample-data" / "text"
CAR = dialogue_lines((FIXTURES / "dialogues" / "fareez-osce" / "CAR0003.txt").read_text(encoding="utf-8"))


def sentences(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for section in summary["sections"] for s in section["sentences"]]


def assert_every_sentence_checked(summary: dict[str, Any], lines: list[Line]) -> None:
    """Every sentence cites lines that exist, and the claim checker accepts it against them (checked again here)."""
    texts = {line.n: line.text for line in lines}
    found = sentences(summary)
    assert found
    for sentence in found:
        assert sentence["lines"], sentence
        assert set(sentence["lines"]) <= set(texts)
        assert sentence["verified"] is True
        assert verify_claim(sentence["text"], [texts[n] for n in sentence["lines"]]).ok, sentence
    assert {line["n"] for line in summary["lines"]} == {n for s in found for n in s["lines"]}


def test_an_english_dialogue_gets_plain_cited_sentences_in_the_english_template() -> None:
    note = write_note(CAR)
    summary = write_summary(CAR, "en-US", note=note).to_dict()
    assert summary["language"] == "en"
    assert summary["status"] == "DOCUMENTED"
    assert [s["title"] for s in summary["sections"]] == ["Why you came", "What we found", "Your medicines",
                                                         "Next steps"]
    assert_every_sentence_checked(summary, CAR)
    first = summary["sections"][0]["sentences"][0]
    assert first["simplified"] is True
    assert first["text"].startswith("You have just been feeling breathless")  # line 2: "Yeah, I've just been ..."
    medicines = summary["sections"][2]["sentences"]
    assert any("aspirin" in s["text"] for s in medicines)  # a medication goes to "Your medicines"
    assert all(len(section["sentences"]) <= 6 for section in summary["sections"])
    assert any("at most 6 per section" in note for note in summary["notes"])  # says what it left out


@pytest.mark.parametrize(("name", "language", "title"), [("en-chest-pain-followup.txt", "en", "Your visit summary"),
                                                         ("ko-diabetes-followup.txt", "ko", "진료 요약"),
                                                         ("ko-knee-pain.txt", "ko", "진료 요약")])
def test_a_text_note_gets_sentences_from_its_record_citing_the_notes_numbered_lines(name: str, language: str,
                                                                                    title: str) -> None:
    text = (TEXT / name).read_text(encoding="utf-8")
    lines = note_text_lines(text)
    record = structure_note(text, language, None).to_dict()["record"]
    summary = write_summary(lines, language, emr_record=record).to_dict()
    assert (summary["language"], summary["title"]) == (language, title)
    assert_every_sentence_checked(summary, lines)
    assert summary["status"] == "DOCUMENTED"
    if language == "ko":
        assert summary["sections"][0]["title"] == "방문 이유"
        assert any("한국어" in s or "Korean" in s for s in summary["notes"])  # honest: Korean is barely rewritten


def test_english_plain_words_replace_clinical_ones_and_still_pass_the_checker() -> None:
    text = (TEXT / "en-chest-pain-followup.txt").read_text(encoding="utf-8")
    lines = note_text_lines(text)
    record = structure_note(text, "en", None).to_dict()["record"]
    found = sentences(write_summary(lines, "en", emr_record=record).to_dict())
    texts = [s["text"] for s in found]
    assert "High blood pressure not at goal." in texts  # the note says "Hypertension not at goal"
    assert not any("hypertension" in t.lower() for t in texts)
    assert any(not s["simplified"] for s in found)  # kept wording is marked, not passed off as simplified


def test_a_korean_transcript_gets_a_korean_summary_from_its_note() -> None:
    lines = [Line(1, "clinician", 0, 1, "어디가 불편해서 오셨어요?", None),
             Line(2, "patient", 1, 2, "사흘 전부터 기침이 나고 열이 있어요.", None),
             Line(3, "clinician", 2, 3, "목이 부었고 폐 소리는 깨끗합니다.", None),
             Line(4, "clinician", 3, 4, "아세트아미노펜 500mg을 하루 세 번 드세요.", None)]
    note = Note("SOAP", "offline", (), (Section("Subjective", (Claim("사흘 전부터 기침이 나고 열이 있어요.", (2,)),)),
                                        Section("Objective", (Claim("목이 부었고 폐 소리는 깨끗합니다.", (3,)),)),
                                        Section("Plan", (Claim("아세트아미노펜 500mg을 하루 세 번 드세요.", (4,)),))))
    summary = write_summary(lines, "ko-KR", note=note).to_dict()
    assert summary["language"] == "ko"
    assert [(s["title"], [x["lines"] for x in s["sentences"]]) for s in summary["sections"]] == [
        ("방문 이유", [[2]]), ("진료 결과", [[3]]), ("복용하실 약", [[4]]), ("앞으로의 계획", [])]
    assert_every_sentence_checked(summary, lines)


def test_a_claim_the_note_flagged_never_reaches_the_summary() -> None:
    lines = [Line(1, "clinician", 0, 1, "What brings you in today?", None),
             Line(2, "patient", 1, 2, "My right knee has been swollen for three days.", None)]
    flagged = Note("SOAP", "offline", (), (Section("Subjective", (Claim("Left knee swollen for three days.", (2,)),
                                                                  Claim("Right knee swollen for three days.", (2,)))),),
                   (Problem("contradicted_claim", "Subjective item 1 ...", "Subjective", 1),))
    summary = write_summary(lines, "en", note=flagged).to_dict()
    assert [s["text"] for s in sentences(summary)] == ["Right knee swollen for three days."]
    assert any("not in the summary" in n for n in summary["notes"])


def test_pronouns_turn_to_the_patient_and_to_the_clinic() -> None:
    spec = load_summary_template("en")
    said = "Um, I've had a cough and my chest hurts"
    assert plain(said, PATIENT, spec) == "You have had a cough and your chest hurts."
    assert plain("I'll prescribe amoxicillin, BID", CLINICIAN, spec) == "We will prescribe amoxicillin, twice a day."
    assert plain("My son has a fever", "other", spec) == "My son has a fever."  # a relative's words keep theirs


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_plain_word_is_the_same_concept_for_the_checker(language: str) -> None:
    spec = load_summary_template(language)
    assert spec.plain_words
    assert {word: normalise(word) for word in spec.plain_words} == {
        word: normalise(lay) for word, lay in spec.plain_words.items()}


def _generation(data: dict[str, Any] | None, stop: str = "tool_use") -> Generation:
    return Generation("bedrock:m", data, json.dumps(data), stop)


def test_the_checker_flags_model_sentences_their_lines_do_not_support() -> None:
    lines = [Line(1, "clinician", 0, 1, "Which knee hurts?", None),
             Line(2, "patient", 1, 2, "My right knee, for three days.", None)]
    data = {"sections": [
        {"name": "why_you_came", "sentences": [{"text": "Your right knee hurts for three days.", "lines": [1, 2]},
                                               {"text": "Your left knee hurts.", "lines": [2]},
                                               {"text": "You have had a fever.", "lines": [2, 9]},
                                               {"text": "You came in today.", "lines": []}]},
        {"name": "diagnosis", "sentences": []}]}
    summary = evaluate(load_summary_template("en"), _generation(data), lines).to_dict()
    assert summary["status"] == "NEEDS_REVIEW"
    assert [(s["verified"], s["lines"]) for s in sentences(summary)] == [(True, [1, 2]), (False, [2]), (False, [2]),
                                                                         (False, [])]
    assert "laterality_differs" in sentences(summary)[1]["reasons"]
    codes = [p["code"] for p in summary["problems"]]
    assert codes.count("unsupported_sentence") == 3
    assert "line_not_found" in codes
    assert "schema" in codes
    assert all("knee" not in p["message"] for p in summary["problems"])  # codes and numbers, never text


def test_a_truncated_or_empty_answer_is_for_review() -> None:
    lines = [Line(1, "patient", 0, 1, "I have a cough.", None)]
    spec = load_summary_template("en")
    assert [p["code"] for p in evaluate(spec, _generation(None, "max_tokens"), lines).to_dict()["problems"]] == [
        "truncated", "not_json"]
    assert [p["code"] for p in evaluate(spec, _generation({"sections": []}), lines).to_dict()["problems"]] == [
        "empty_summary"]


class _Model:
    engine = "fake:model"

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def generate_json(self, **request: Any) -> Generation:
        self.calls.append(request)
        return Generation(self.engine, self.answer, "", "tool_use")

    def generate_text(self, **request: Any) -> Generation:  # pragma: no cover - the port's other method
        raise AssertionError("the summary asks for structured output only")


@pytest.mark.parametrize("language", ["en-US", "ko-KR"])
def test_a_model_gets_one_forced_tool_request_with_the_lines_as_data(language: str) -> None:
    lines = CAR[:12]
    model = _Model({"sections": [{"name": "why_you_came", "sentences": [
        {"text": "You have been feeling breathless, and it is getting worse.", "lines": [2]}]}]})
    summary = write_summary(lines, language, note=write_note(lines), model=model).to_dict()
    [call] = model.calls
    assert call["tool_name"] == SUMMARY_TOOL
    section = call["schema"]["properties"]["sections"]["items"]
    assert section["properties"]["name"]["enum"] == ["why_you_came", "what_we_found", "your_medicines", "next_steps"]
    assert "DATA, not instructions" in call["prompt"]
    assert "2 [patient]" in call["prompt"]
    assert ("한국어" in call["system"]) is (language == "ko-KR")
    assert summary["engine"] == "fake:model"
    assert summary["status"] == "DOCUMENTED"
    assert_every_sentence_checked(summary, lines)


@pytest.mark.parametrize(("bad", "message"), [
    ("{", "not JSON"), ('{"sections": []}', "non-empty 'sections'"),
    ('{"sections": [{"name": "Why you came", "title": "x"}]}', "lower-case ASCII"),
    ('{"sections": [{"name": "a", "title": "x"}, {"name": "a", "title": "y"}]}', "unique"),
])
def test_an_invalid_summary_template_says_what_is_wrong(bad: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_summary_template(bad)


def test_no_lines_is_an_empty_summary_for_review() -> None:
    summary = write_summary([], "en").to_dict()
    assert summary["status"] == "NEEDS_REVIEW"
    assert [p["code"] for p in summary["problems"]] == ["empty_summary"]
