"""Note versions (domain.note_versions): an edit is parsed against the note's sections with the
pipeline's parser, compared claim by claim (indices only) and verified with the pipeline's checks."""

from __future__ import annotations

import json

import pytest

from medscribe.domain.note_versions import (
    MAX_CLAIMS,
    Change,
    ChangeKind,
    InvalidEdit,
    check_amend_reason,
    diff,
    parse_edit,
    verify,
)
from medscribe.domain.notes import Claim, Section

NAMES = ["Chief complaint", "Plan"]
LINES = {1: "I have had chest pain for three days.", 2: "Take aspirin 81 mg once a day."}


def note(*sections: tuple[str, list[tuple[str, list[int]]]]) -> dict[str, object]:
    return {"sections": [{"name": name, "items": [{"text": t, "lines": n} for t, n in items]}
                         for name, items in sections]}


def test_an_edit_keeps_template_order_and_refuses_unknown_sections_without_echoing_text() -> None:
    sections = parse_edit(note(("Plan", [("Aspirin 81 mg daily", [2])]), ("Chief complaint", [])), NAMES)
    assert [s.name for s in sections] == NAMES
    with pytest.raises(InvalidEdit) as refused:
        parse_edit(note(("Secret Zebulon", [("x", [1])])), NAMES)
    assert "Zebulon" not in str(refused.value)
    with pytest.raises(InvalidEdit):
        parse_edit(note(("Plan", [("  ", [2])])), NAMES)  # an empty claim: remove it instead
    with pytest.raises(InvalidEdit):
        parse_edit({"sections": "nope"}, NAMES)
    with pytest.raises(InvalidEdit):
        parse_edit(note(("Plan", [("a", [1])] * (MAX_CLAIMS + 1))), NAMES)


def test_claims_are_verified_with_the_pipelines_checks_and_point_at_their_claim() -> None:
    sections = parse_edit(note(
        ("Chief complaint", [("Chest pain for three days", [1]), ("Headache", [])]),
        ("Plan", [("Aspirin 325 mg once a day", [2]), ("Aspirin 81 mg once a day", [9])]),
    ), NAMES)
    problems = {(p.code, p.section, p.item) for p in verify(sections, LINES)}
    assert problems == {("uncited_claim", "Chief complaint", 2), ("contradicted_claim", "Plan", 1),
                        ("line_not_found", "Plan", 2)}
    messages = json.dumps([p.to_dict() for p in verify(sections, LINES)])
    assert "Aspirin" not in messages and "chest" not in messages.lower()


def test_the_diff_names_sections_and_item_numbers_only() -> None:
    base = [Section("Chief complaint", (Claim("Chest pain", (1,)), Claim("Cough", (1,)))),
            Section("Plan", (Claim("Aspirin", (2,)),))]
    new = [Section("Chief complaint", (Claim("Chest pain for three days", (1,)), Claim("Cough", (1, 2)),
                                       Claim("Fever", (1,)))),
           Section("Plan", ())]
    changes = diff(base, new)
    assert set(changes) == {Change(ChangeKind.EDITED, "Chief complaint", 1),
                            Change(ChangeKind.RECITED, "Chief complaint", 2),
                            Change(ChangeKind.ADDED, "Chief complaint", 3),
                            Change(ChangeKind.REMOVED, "Plan", 1)}
    assert diff(base, base) == []
    assert all(set(c.to_dict()) == {"change", "section", "item"} for c in changes)
    assert Change.from_dict(changes[0].to_dict()) == changes[0]


def test_an_inserted_claim_is_one_addition_not_a_cascade_of_edits() -> None:
    base = [Section("Plan", (Claim("A one", (1,)), Claim("B two", (1,)), Claim("C three", (1,))))]
    new = [Section("Plan", (Claim("New", (2,)), Claim("A one", (1,)), Claim("B two", (1,)), Claim("C three", (1,))))]
    assert diff(base, new) == [Change(ChangeKind.ADDED, "Plan", 1)]


def test_amend_reasons_are_stripped_and_bounded() -> None:
    assert check_amend_reason("  wrong dose ") == "wrong dose"
    assert check_amend_reason("  ") is None
    assert check_amend_reason(None) is None
    with pytest.raises(InvalidEdit):
        check_amend_reason("x" * 1001)
