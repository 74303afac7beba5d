"""The offline note engine over every shared dialogue: exact citations, verbatim claims, sensible
sections, recorded roles, determinism; and offline retrieval for `ask`."""

from __future__ import annotations

import pytest

from medscribe.domain.dialogue import dialogue_lines
from medscribe.domain.evidence import verify_claim
from medscribe.domain.note_writing import write_note
from medscribe.domain.notes import CATALOGUE, CLINICIAN, PATIENT, NoteStatus, load_template
from medscribe.domain.offline_notes import OfflineNoteEngine, retrieve
from medscribe.domain.transcript_lines import Line
from tests.dialogues import DIALOGUES, shared_dialogues

DIALOGUE_CASES = shared_dialogues()
# sections every consultation has content for (all of them open with a complaint and end with a plan)
MUST_HAVE = {
    "HISTORY_AND_PHYSICAL": ("Chief complaint", "History of present illness", "Plan"),
    "SOAP": ("Subjective", "Plan"), "PHYSICAL_SOAP": ("Subjective", "Plan"), "BEHAVIORAL_SOAP": ("Subjective", "Plan"),
    "GIRPP": ("Goal", "Intervention", "Plan"), "BIRP": ("Behavior", "Intervention", "Plan"),
    "SIRP": ("Situation", "Intervention", "Plan"), "DAP": ("Data", "Plan"),
    "VISIT": ("HISTORY OF PRESENT ILLNESS",),
}


def test_every_catalogue_template_is_checked() -> None:
    assert set(MUST_HAVE) == set(CATALOGUE)


@pytest.mark.parametrize("template", CATALOGUE)
@pytest.mark.parametrize(("name", "text"), DIALOGUE_CASES, ids=[name for name, _ in DIALOGUE_CASES])
def test_every_dialogue_gets_a_note_with_exact_citations(name: str, text: str, template: str) -> None:
    lines = dialogue_lines(text)
    note = write_note(lines, template=template)
    by_number = {line.n: line for line in lines}
    assert note.engine == "offline"
    assert note.status is NoteStatus.DOCUMENTED
    assert note.problems == ()
    assert [s.name for s in note.sections] == list(load_template(template).section_names)
    claims = list(note.claims())
    assert len(claims) >= 5
    for _, claim in claims:
        assert claim.lines, "every claim cites lines"
        assert all(n in by_number for n in claim.lines)
        assert list(claim.lines) == list(range(claim.lines[0], claim.lines[-1] + 1)), "consecutive lines"
        if load_template(template).offline == "statements":  # rewritten (tests/unit/test_note_statements.py)
            assert verify_claim(claim.text, [by_number[n].text for n in claim.lines]).ok
        else:
            assert claim.text == " ".join(by_number[n].text for n in claim.lines), "verbatim transcript text"
    filled = {s.name for s in note.sections if s.items}
    assert set(MUST_HAVE[template]) <= filled
    # what the offline engine could not fill is named in the note, in template order
    assert note.unfilled == tuple(s.name for s in note.sections if not s.items)
    assert note.template == template
    assert {line.role for line in note.lines} == {CLINICIAN, PATIENT}
    assert [(x.n, x.text) for x in note.lines] == [(x.n, x.text) for x in lines]


def test_sections_get_what_they_should_on_a_known_dialogue() -> None:
    lines = dialogue_lines((DIALOGUES / "fareez-osce" / "CAR0003.txt").read_text(encoding="utf-8"))
    sections = {s.name: s for s in write_note(lines, template="hp").sections}  # the alias: HISTORY_AND_PHYSICAL
    chief = sections["Chief complaint"].items
    assert len(chief) == 1
    assert "breathless" in chief[0].text
    texts = {name: " ".join(c.text for c in s.items) for name, s in sections.items()}
    assert "About two months ago." in texts["History of present illness"]  # onset, with its question
    assert "any weight loss? No." in texts["Review of systems"]  # a pertinent negative
    assert "aspirin, ramipril and simvastatin" in texts["Past medical history"]
    assert "smoke" in texts["Past social history"]  # HealthScribe's own section, no longer in the history
    assert sections["Physical examination"].items == ()  # a history-taking interview: nothing invented


def test_clinician_questions_are_context_not_claims() -> None:
    lines = [Line(1, "clinician", 0, 0, "Do you have any chest pain?", None),
             Line(2, "patient", 0, 0, "No.", None),
             Line(3, "clinician", 0, 0, "Any cough or fever at all recently?", None)]
    note = write_note(lines, template="hp")
    assert [(name, c.lines) for name, c in note.claims()] == [("Review of systems", (1, 2))]


def test_deterministic() -> None:
    lines = dialogue_lines((DIALOGUES / "primock57" / "derived_dialogues" / "day1_consultation01.txt")
                           .read_text(encoding="utf-8"))
    engine = OfflineNoteEngine()
    template = load_template("hp")
    assert engine.draft(template, lines, {"clinician": CLINICIAN, "patient": PATIENT}) == \
        engine.draft(template, list(lines), {"clinician": CLINICIAN, "patient": PATIENT})
    assert write_note(lines).to_json() == write_note(lines).to_json()


def test_retrieve_finds_supporting_lines_and_finds_nothing_for_absent_topics() -> None:
    lines = dialogue_lines((DIALOGUES / "fareez-osce" / "CAR0003.txt").read_text(encoding="utf-8"))
    hits = retrieve(lines, "What medications does the patient take?")
    assert hits
    assert any("aspirin" in lines[hit.n - 1].text or "medications" in lines[hit.n - 1].text for hit in hits)
    assert retrieve(lines, "Which football team does she support?") == []
    assert retrieve(lines, "the and of?") == []
    assert retrieve([], "cough") == []
