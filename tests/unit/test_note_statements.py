"""The statement engine's rewriting rules (`domain.note_statements`, `domain.offline_visit`): a question and its
answer become one statement citing both lines, dictated examination/results/plan land in their sections, and no
statement carries a word its cited lines do not (only the pronouns and scribe verbs a rewrite may add), each one
supported according to the claim checker, over vendored ACI-BENCH dialogues."""

from __future__ import annotations

import csv
import re
import typing

import pytest

from medscribe.domain.claim_text import normalise
from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.evidence import verify_claim
from medscribe.domain.note_statements import (
    ADDED_WORDS,
    line_statements,
    notation,
    patient_gender,
    question_answer,
    sentences,
    third_person,
    tidy,
)
from medscribe.domain.note_writing import write_note
from medscribe.domain.notes import CLINICIAN, PATIENT, TEMPLATE_NAMES, NoteStatus, load_template
from medscribe.domain.transcript_lines import Line
from medscribe.settings import PipelineSettings
from tests.dialogues import DIALOGUES


def line(n: int, speaker: str, text: str) -> Line:
    return Line(n=n, speaker=speaker, start=0.0, end=0.0, text=text, confidence=None)


def note_for(*turns: str) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    text = "\n".join(turns)
    note = write_note(dialogue_lines(text), template="VISIT")
    assert note.status is NoteStatus.DOCUMENTED, note.problems
    return {s.name: [(c.text, c.lines) for c in s.items] for s in note.sections}


def test_a_yes_no_question_and_its_answer_become_one_statement_citing_both() -> None:
    denied = question_answer(line(4, "doctor", "okay . any fever or chills ?"), line(5, "patient", "no ."), "unknown")
    assert denied is not None
    assert (denied.text, denied.lines) == ("Denies fever or chills.", (4, 5))
    reported = question_answer(line(8, "doctor", "and do you have any chest pain ?"), line(9, "patient", "yeah ."),
                               "male")
    assert reported is not None
    assert (reported.text, reported.lines) == ("Reports chest pain.", (8, 9))
    # a closing run of short questions is one topic; vague fragments ("anything like that") name nothing
    run = question_answer(line(2, "doctor", "and any fatigue ? weight gain ? anything like that you've noticed ?"),
                          line(3, "patient", "no , nothing out of the ordinary ."), "female")
    assert run is not None
    assert (run.text, run.lines) == ("Denies fatigue, weight gain.", (2, 3))
    declared = question_answer(line(6, "doctor", "and you are still on your metformin ?"), line(7, "patient", "yes ."),
                               "male")
    assert declared is not None
    assert declared.text == "He is still on his metformin."
    # a question pointing at something unnamed ("your right knee ?") or giving a number names no topic
    assert question_answer(line(1, "doctor", "your right knee ?"), line(2, "patient", "yeah ."), "male") is None
    assert question_answer(line(1, "doctor", "nine out of 10 ?"), line(2, "patient", "yeah ."), "male") is None
    # an open question, a question that already negates, a long answer: no question-answer statement
    assert question_answer(line(1, "doctor", "how long has it hurt ?"), line(2, "patient", "no ."), "male") is None
    assert question_answer(line(1, "doctor", "you don't smoke ?"), line(2, "patient", "no ."), "male") is None
    assert question_answer(line(1, "doctor", "any fever ?"),
                           line(2, "patient", "no but my left knee has been swelling every night for weeks ."),
                           "male") is None


def test_the_question_and_answer_statement_goes_to_the_review_of_systems() -> None:
    sections = note_for("[doctor] what brings you in today ?", "[patient] my knee has been hurting for two weeks .",
                        "[doctor] okay . any fever or chills ?", "[patient] no .")
    assert ("Denies fever or chills.", (3, 4)) in sections["REVIEW OF SYSTEMS"]


def test_clinician_dictation_of_exam_results_and_plan_lands_in_those_sections() -> None:
    sections = note_for(
        "[doctor] hi , how are you ?",
        "[patient] my right knee has been hurting since i fell playing tennis two weeks ago .",
        "[doctor] okay . let's do a physical exam . on exam of your right knee , there is tenderness to palpation "
        "over the medial joint line and a small effusion .",
        "[patient] okay .",
        "[doctor] in reviewing the results of your x-ray , there is no fracture .",
        "[doctor] let's talk about my assessment and plan . i think you have a medial meniscus tear . i'm going "
        "to order an mri of the right knee and refer you to physical therapy .",
    )
    assert any("tenderness to palpation" in text and lines == (3,) for text, lines in sections["PHYSICAL EXAMINATION"])
    assert any("no fracture" in text for text, _ in sections["RESULTS"])
    plan = " ".join(text for text, _ in sections["ASSESSMENT AND PLAN"])
    assert "medial meniscus tear" in plan
    assert "order an mri of the right knee" in plan.lower()
    assert any("fell playing tennis" in text for text, _ in sections["HISTORY OF PRESENT ILLNESS"])


def test_the_chief_complaint_comes_from_the_clinicians_presents_with() -> None:
    sections = note_for("[doctor] james is a 57-year-old male who presents today with back pain .",
                        "[patient] yeah , it hurts a lot when i bend over .")
    assert sections["CHIEF COMPLAINT"] == [("Back pain.", (1,))]


@pytest.mark.parametrize(("spoken", "clean"), [
    ("uh , i f- felt the pop , and , um , i had to sit down", "i felt the pop, and, i had to sit down"),
    ("i do n't think your , your knee is broken", "i don't think your knee is broken"),
    ("hey , dragon , show me the x-ray . this is a normal x-ray", "this is a normal x-ray"),
    ("we've heard in the past-", "we've heard in the past"),
])
def test_tidy_removes_hesitations_stutters_repeats_and_device_commands(spoken: str, clean: str) -> None:
    assert tidy(spoken) == clean


def test_sentences_drop_openers_and_split_long_unpunctuated_speech() -> None:
    assert sentences("okay . so , the knee is swollen . alright") == ["the knee is swollen."]
    run_on = ("your blood pressure is fine and your heart rate is nice and slow in the sixties today " * 2
              + "okay on your lung exam your lungs are clear to auscultation bilaterally")
    assert len(sentences(run_on)) == 2


def test_person_and_notation_rewrites() -> None:
    assert third_person("i hurt my back and i'm sore", "male", second_person=False) == "he hurt his back and he is sore"
    assert third_person("i'd like to refer you because you have pain in your knee", "female",
                        second_person=True) == "i'd like to refer her because she has pain in her knee"
    assert third_person("my knee", "unknown", second_person=False) == "their knee"
    assert notation("about five pounds, twenty five milligrams for two weeks") == "about 5 pounds, 25 mg for 2 weeks"
    assert notation("no one came") == "no one came"


def test_the_pronoun_is_the_one_the_transcript_gives() -> None:
    roles = {"doctor": CLINICIAN, "patient": PATIENT}
    assert patient_gender([line(1, "doctor", "she is a 40-year-old female .")], roles) == "female"
    assert patient_gender([line(1, "doctor", "hello mr. smith .")], roles) == "male"
    assert patient_gender([line(1, "doctor", "hi . how are you ?"), line(2, "patient", "my wife , she is fine")],
                          roles) == "unknown"


def test_a_patient_line_becomes_third_person_statements_without_its_questions() -> None:
    found = line_statements(line(3, "patient", "i took some tylenol . did that help ? it did n't help ."),
                            PATIENT, "male")
    assert [(s.text, s.lines) for s in found] == [("He took some tylenol.", (3,)), ("It did not help.", (3,))]


def _aci_dialogues() -> list[tuple[str, str]]:
    found = []
    for path in sorted((DIALOGUES / "aci-bench").glob("valid_*.subset.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            found += [(f"{path.stem}/{row['id']}", row["dialogue"]) for row in csv.DictReader(handle)]
    with (DIALOGUES / "aci-bench" / "train.csv").open(newline="", encoding="utf-8") as handle:
        found += [(f"train/{row['encounter_id']}", row["dialogue"]) for row in list(csv.DictReader(handle))[:4]]
    return found


ACI_CASES = _aci_dialogues()
_TOKEN = re.compile(r"[a-z0-9]+|%")
def _written_out(text: str) -> str:
    """Contractions as words, as a note writes them ("doesn't" -> "does not", "it's" -> "it is")."""
    text = re.sub(r"\bwon't\b", "will not", re.sub(r"\bca(?:n)?n't\b", "can not", text.lower()))
    return re.sub(r"'s\b", " is", re.sub(r"n't\b", " not", text))


_SPACING = re.compile(r"\s+(n't|'(?:s|re|ve|ll|d|m))\b")  # the tokenizer's "do n't" is the word "don't"


@pytest.mark.parametrize(("name", "text"), ACI_CASES, ids=[name for name, _ in ACI_CASES])
def test_no_statement_says_a_word_its_cited_lines_do_not_and_each_is_verified(name: str, text: str) -> None:
    lines = dialogue_lines(text)
    note = write_note(lines, template="VISIT")
    by_number = {x.n: x.text for x in lines}
    assert note.status is NoteStatus.DOCUMENTED
    assert note.problems == ()
    assert [s.name for s in note.sections] == list(load_template("VISIT").section_names)
    assert sum(len(s.items) for s in note.sections) >= 10
    for _, claim in note.claims():
        cited = [by_number[n] for n in claim.lines]
        spoken = _SPACING.sub(r"\1", " ".join(cited)).replace("gon na", "gonna").replace("wan na", "wanna")
        allowed = set(_TOKEN.findall(normalise(spoken))) | set(_TOKEN.findall(normalise(_written_out(spoken))))
        allowed |= ADDED_WORDS
        extra = [w for w in _TOKEN.findall(normalise(claim.text)) if w not in allowed]
        assert extra == [], (claim.text, extra)
        assert verify_claim(claim.text, cited).ok, claim.text


def test_every_catalogue_template_and_alias_can_be_the_deployment_setting() -> None:
    assert set(typing.get_args(PipelineSettings.model_fields["note_template"].annotation)) == set(TEMPLATE_NAMES)
    assert PipelineSettings(note_template="VISIT").note_template == "VISIT"
