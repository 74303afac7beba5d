"""A model's note prompt follows the consultation's language (domain.note_writing.NOTE_LANGUAGE_RULES):
Korean items for a Korean transcript, section names as given; also with a prompt override written
before the rule existed; no rule when the language is unknown."""

from __future__ import annotations

import pytest

from medscribe.domain.note_writing import NOTE_LANGUAGE_RULES, write_note
from medscribe.domain.notes import NoteStatus
from tests.unit.test_notes_service import CONSULT, GOOD, ScriptedModel, structured


@pytest.mark.parametrize(("language", "rule"), [
    ("ko-KR", NOTE_LANGUAGE_RULES["ko"]),
    ("ko", NOTE_LANGUAGE_RULES["ko"]),
    ("en-US", NOTE_LANGUAGE_RULES["en"]),
])
def test_the_note_prompt_names_the_consultation_s_language(language: str, rule: str) -> None:
    model = ScriptedModel(structured(GOOD))
    note = write_note(CONSULT, engine=model, language=language)
    assert note.status is NoteStatus.DOCUMENTED
    [call] = model.calls
    assert rule in call["prompt"]
    assert call["prompt"].index(rule) < call["prompt"].index("What brings you in today?")  # before the data


def test_an_override_without_the_placeholder_still_gets_the_rule() -> None:
    model = ScriptedModel(structured(GOOD))
    write_note(CONSULT, engine=model, language="ko-KR",
               prompt_overrides={"note_user": "Custom. Sections:\n$sections\n$transcript"})
    assert model.calls[0]["prompt"].endswith(NOTE_LANGUAGE_RULES["ko"])


@pytest.mark.parametrize("language", [None, "identify", "fr-FR"])
def test_no_rule_for_an_unknown_language(language: str | None) -> None:
    model = ScriptedModel(structured(GOOD))
    write_note(CONSULT, engine=model, language=language)
    assert not any(rule in model.calls[0]["prompt"] for rule in NOTE_LANGUAGE_RULES.values())
