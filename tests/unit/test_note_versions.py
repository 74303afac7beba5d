"""Note versions (domain.note_versions): an edit is parsed against the note's sections with the
pipeline's parser, compared claim by claim (indices only) and verified with the pipeline's checks."""

from __future__ import annotations

import json

import pytest

from medscribe.domain.note_versions import (
    MAX_CLAIMS,
    PIPELINE_ACTOR,
    Change,
    ChangeKind,
    InvalidEdit,
    NoteVersion,
    VersionState,
    check_amend_reason,
    clinician_work,
    diff,
    parse_edit,
    pipeline_stub,
    pipeline_version,
    superseding,
    verify,
    version_key,
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
    assert "Aspirin" not in messages
    assert "chest" not in messages.lower()


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


PIPELINE_NOTE = "notes/enc-1/note.json"


def saved(number: int, state: VersionState = VersionState.DRAFT) -> NoteVersion:
    return NoteVersion(encounter_id="enc-1", version=number, state=state, actor_id="local-alice", role="clinician",
                       created_at="2026-12-04T10:00:00.000Z", base_version=number - 1,
                       note_key=version_key("enc-1", number, "e" * 16))


def test_clinician_work_is_a_saved_version_past_the_pipelines_note_or_a_signature() -> None:
    stub = pipeline_stub("enc-1", PIPELINE_NOTE, "2026-12-04T09:00:00.000Z", 2)
    assert (stub.version, stub.actor_id, stub.note_key, stub.problem_count) == (0, PIPELINE_ACTOR, PIPELINE_NOTE, 2)
    assert clinician_work([stub], 0, None, PIPELINE_NOTE) is None
    assert clinician_work([stub], 0, 0, PIPELINE_NOTE) == "version 0 is signed"
    assert clinician_work([stub, saved(1)], 1, None, PIPELINE_NOTE) == "version 1 was saved by a clinician"
    assert clinician_work([stub, saved(1, VersionState.SIGNED)], 1, 1, PIPELINE_NOTE) == "version 1 is signed"


def test_superseding_moves_the_pipelines_note_to_its_copy_and_adds_an_unsigned_pipeline_draft() -> None:
    stub = pipeline_stub("enc-1", PIPELINE_NOTE, "2026-12-04T09:00:00.000Z", 0)
    versions = [stub, saved(1, VersionState.SIGNED)]
    records = superseding(versions, 1, PIPELINE_NOTE, archive_key="notes/enc-1/versions/0-x.json",
                          at="2026-12-04T11:00:00.000Z")
    assert records.archived == NoteVersion(**{**stub.__dict__, "note_key": "notes/enc-1/versions/0-x.json"})
    draft = records.draft
    assert (draft.version, draft.state, draft.actor_id, draft.base_version) == (2, VersionState.DRAFT, "pipeline", None)
    assert (draft.note_key, draft.signed_by, draft.created_at) == (PIPELINE_NOTE, None, "2026-12-04T11:00:00.000Z")
    # after it, the re-run's draft is the pipeline's note: no clinician work until someone saves or signs
    after = [records.archived, versions[1], draft]
    assert pipeline_version(after, PIPELINE_NOTE) == 2
    assert clinician_work(after, 2, None, PIPELINE_NOTE) is None
    edited = [*after, saved(3)]
    assert clinician_work(edited, 3, None, PIPELINE_NOTE) == "version 3 was saved by a clinician"
    # a second re-run over that edit copies the draft (version 2), whose object the re-run overwrites
    again = superseding(edited, 3, PIPELINE_NOTE, archive_key="notes/enc-1/versions/2-y.json", at="t")
    assert (again.archived.version, again.draft.version) == (2, 4)
