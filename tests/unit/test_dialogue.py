"""Plain-text dialogue parser: the prefix styles of the shared dialogues, PriMock57's timestamped
lines, ACI-BENCH's one-line dialogues, and the real files' irregularities."""

from __future__ import annotations

import pytest

from medscribe.domain.dialogue import (
    CLINICIAN,
    GUEST,
    PATIENT,
    Turn,
    dialogue_lines,
    looks_like_dialogue,
    parse_dialogue,
)
from tests.dialogues import DIALOGUES, shared_dialogues


@pytest.mark.parametrize("text", [
    "D: How are you?\nP: Not great.",
    "Doctor: How are you?\nPatient: Not great.",
    "[doctor] How are you?\n[patient] Not great.",
    "Clinician: How are you?\r\nP: Not great.",
    "dr: How are you?\n\n\npatient:Not great.",
])
def test_prefix_styles(text: str) -> None:
    assert parse_dialogue(text) == [Turn(CLINICIAN, "How are you?"), Turn(PATIENT, "Not great.")]


def test_unprefixed_lines_continue_the_turn_and_leading_text_is_ignored() -> None:
    text = "Interview 12 (simulated)\nD: When did it start?\nP: Two days ago,\r\nmaybe three.\rD: OK."
    assert parse_dialogue(text) == [Turn(CLINICIAN, "When did it start?"), Turn(PATIENT, "Two days ago, maybe three."),
                                    Turn(CLINICIAN, "OK.")]


def test_a_bare_letter_is_a_prefix_only_when_the_speaker_changes() -> None:
    assert parse_dialogue("D: Any fever?\nP No.\nP: Well\nP was fine before.") == [
        Turn(CLINICIAN, "Any fever?"), Turn(PATIENT, "No."), Turn(PATIENT, "Well P was fine before."),
    ]


def test_primock_timestamps_are_kept_and_markup_removed() -> None:
    text = ("[    2.53-   12.50] DOCTOR: Hello? <UNSURE>Hello how</UNSURE> um.\n"
            "[    3.91-    4.91] PATIENT: Hello, how are you?\n"
            "[   39.37-   40.15] DOCTOR: <UNIN/>\n"
            "[   43.70-   48.02] DOCTOR: And how many times a day?\n")
    assert parse_dialogue(text) == [
        Turn(CLINICIAN, "Hello? Hello how um.", 2.53, 12.5),
        Turn(PATIENT, "Hello, how are you?", 3.91, 4.91),
        Turn(CLINICIAN, "And how many times a day?", 43.7, 48.02),  # the unintelligible-only turn is dropped
    ]


def test_bracket_tags_inside_a_line_start_new_turns() -> None:
    text = "[doctor] hello how are you [patient] good thanks [patient_guest] she is not [doctor] okay"
    assert parse_dialogue(text) == [Turn(CLINICIAN, "hello how are you"), Turn(PATIENT, "good thanks"),
                                    Turn(GUEST, "she is not"), Turn(CLINICIAN, "okay")]
    assert looks_like_dialogue(text)


def test_dialogue_lines_are_numbered_transcript_lines() -> None:
    lines = dialogue_lines("[ 1.00- 2.50] DOCTOR: Hi.\n[ 2.60- 3.00] PATIENT: Hello.\nD: Untimed.")
    assert [(line.n, line.speaker, line.start, line.end, line.text) for line in lines] == [
        (1, CLINICIAN, 1.0, 2.5, "Hi."), (2, PATIENT, 2.6, 3.0, "Hello."), (3, CLINICIAN, 0.0, 0.0, "Untimed."),
    ]


def test_looks_like_dialogue() -> None:
    assert looks_like_dialogue("D: a\nP: b")
    assert not looks_like_dialogue("Patient seen today for cough.\nPlan: rest.")


def test_fareez_irregularities() -> None:
    gas = parse_dialogue((DIALOGUES / "fareez-osce" / "GAS0001.txt").read_text(encoding="utf-8"))
    assert any(turn.text.endswith("calculate it like to the day.") for turn in gas)  # continued on a new line
    msk = parse_dialogue((DIALOGUES / "fareez-osce" / "MSK0006.txt").read_text(encoding="utf-8"))
    assert Turn(PATIENT, "No.") in msk  # "P No." (missing colon)
    speakers = [turn.speaker for turn in msk]
    assert set(speakers) == {CLINICIAN, PATIENT}


def test_every_shared_dialogue_parses() -> None:
    dialogues = shared_dialogues()
    assert len(dialogues) == 20
    for name, text in dialogues:
        turns = parse_dialogue(text)
        assert looks_like_dialogue(text), name
        assert len(turns) >= 7, name
        assert {turn.speaker for turn in turns} == {CLINICIAN, PATIENT}, name
        assert all(turn.text and "<UN" not in turn.text for turn in turns), name
