"""Claim verification (issue 14, item 1): each check, English and Korean, with what must not be flagged.
The measured precision/recall over 438 labelled claims is bench/claims.py's job; these pin behaviours."""

from __future__ import annotations

import pytest

from medscribe.domain.evidence import CONTRADICTED, REASONS, SUPPORTED, UNSUPPORTED, check_claims, verify_claim
from medscribe.domain.notes import Claim, Section

ALLERGY = ["D: Any allergies to medicines?", "P: Yes, I'm allergic to penicillin, I get hives."]
KNEE = ["P: My right knee has been sore for three weeks, right now it's worse on the stairs."]
METFORMIN = ["P: I take metformin, 500 milligrams two times a day."]
FEVER = ["D: Any fever or chills?", "P: No, nothing like that."]


@pytest.mark.parametrize(("claim", "lines", "status", "reason"), [
    ("No known drug allergies.", ALLERGY, CONTRADICTED, "allergy"),
    ("NKDA", ALLERGY, CONTRADICTED, "allergy"),
    ("Allergic to penicillin (hives).", ALLERGY, SUPPORTED, None),
    ("Prescribe oxycodone 80 mg every 4 hours.", KNEE, UNSUPPORTED, "medication"),
    ("Left knee pain for three weeks.", KNEE, CONTRADICTED, "laterality_differs"),
    ("R knee pain x 3 weeks.", KNEE, SUPPORTED, None),
    ("Right knee pain for 2 weeks.", KNEE, CONTRADICTED, "quantity_differs"),
    ("Takes metformin 500 mg BID.", METFORMIN, SUPPORTED, None),
    ("Takes metformin 1000 mg twice daily.", METFORMIN, CONTRADICTED, "quantity_differs"),
    ("Takes metformin 500 mg once daily.", METFORMIN, CONTRADICTED, "frequency_differs"),
    ("Takes Glucophage 500 mg twice a day.", METFORMIN, SUPPORTED, None),
    ("Denies fever or chills.", FEVER, SUPPORTED, None),
    ("Any fever or chills? No, nothing like that.", FEVER, SUPPORTED, None),
    ("Reports fevers.", FEVER, CONTRADICTED, "polarity"),
    ("Short of breath walking up stairs.", ["P: I get really breathless when I walk up stairs."], SUPPORTED, None),
    ("Mother had a heart attack at 60.", ["P: My dad died of a heart attack when he was 60."], CONTRADICTED,
     "relative_differs"),
    ("Chest pain radiating to the jaw.", ["P: I've had chest pain for two days."], UNSUPPORTED, "content"),
    ("Denies shortness of breath.", ["P: I haven't noticed any shortness of breath."], SUPPORTED, None),
    ("Reports shortness of breath.", ["P: I haven't noticed any shortness of breath."], CONTRADICTED, "polarity"),
    ("두통은 없습니다.", ["D: 두통 있으세요?", "P: 아니요."], SUPPORTED, None),
    ("두통이 있습니다.", ["D: 두통 있으세요?", "P: 아니요."], CONTRADICTED, "polarity"),
    ("왼쪽 무릎 통증 3주.", ["P: 오른쪽 무릎이 3주 동안 아팠어요."], CONTRADICTED, "laterality_differs"),
    ("반발통 없음, 복부 압통 있음.", ["신체 검진: 복부 압통 경도, 반발통 없음."], SUPPORTED, None),
    ("메트포르민 500 mg 1일 2회.", ["P: 메트포르민 500 mg을 하루 두 번 먹어요."], SUPPORTED, None),
])
def test_verdicts(claim: str, lines: list[str], status: str, reason: str | None) -> None:
    verdict = verify_claim(claim, [line.split(": ", 1)[-1] for line in lines])
    assert verdict.status == status, verdict
    if reason:
        assert reason in verdict.reasons


def test_offline_claims_are_verbatim_lines_and_always_supported() -> None:
    """The offline engine's claims are line text (or a question with its short answer): never flagged."""
    from medscribe.domain.dialogue import dialogue_lines
    from medscribe.domain.note_writing import write_note
    from tests.dialogues import shared_dialogues

    for name, text in shared_dialogues()[:8]:
        note = write_note(dialogue_lines(text))
        assert not [p for p in note.problems if p.code.endswith("_claim")], name


def test_problems_name_the_claim_and_the_checks_but_carry_no_text() -> None:
    texts = {1: "Any allergies?", 2: "Yes, penicillin gives me hives."}
    sections = [Section("Past medical history", (Claim("Allergic to penicillin", (1, 2)),
                                                  Claim("No known drug allergies", (1, 2))))]
    problems = check_claims(sections, texts)
    assert [(p.code, p.section, p.item) for p in problems] == [("contradicted_claim", "Past medical history", 2)]
    assert REASONS["allergy"] in problems[0].message
    assert "penicillin" not in problems[0].message
    assert "No known" not in problems[0].message
