"""The note template an upload chooses: its `medscribe-template` tag, else a `template=<NAME>` folder
segment of its key, else the deployment's setting."""

from __future__ import annotations

import pytest

from medscribe.domain.template_choice import (
    TEMPLATE_TAG,
    TemplateChoice,
    TemplateChoiceError,
    TemplateSource,
    choose_template,
    template_in_key,
)


@pytest.mark.parametrize(("key", "expected"), [
    ("audio/clinic-a/template=SOAP/visit.wav", "SOAP"),
    ("audio/template=GIRPP/language=ko-KR/visit.wav", "GIRPP"),  # beside other key=value segments
    ("audio/language=en-US/template=DAP/visit.wav", "DAP"),
    ("audio/template=SOAP/ward/template=BIRP/visit.wav", "BIRP"),  # the innermost segment wins
    ("audio/Template = soap/visit.wav", "soap"),
    ("audio/SOAP/visit.wav", None),  # a plain folder name selects nothing
    ("audio/clinic/template=SOAP.wav", None),  # the file name is never read
    ("template=SOAP/audio/visit.wav", None),  # nor the kind prefix
    ("audio/visit.wav", None),
])
def test_template_in_key(key: str, expected: str | None) -> None:
    assert template_in_key(key) == expected


def test_the_tag_wins_over_the_key_and_both_over_the_setting() -> None:
    key = "audio/clinic/template=SOAP/visit.wav"
    assert choose_template(key, {TEMPLATE_TAG: "DAP"}) == TemplateChoice("DAP", TemplateSource.TAG)
    assert choose_template(key, {"other": "x"}) == TemplateChoice("SOAP", TemplateSource.KEY)
    assert choose_template("audio/visit.wav", {}) == TemplateChoice(None, TemplateSource.SETTING)


def test_aliases_and_letter_case_record_the_catalogue_name_and_custom_names_stay() -> None:
    assert choose_template("audio/template=hp/a.wav", {}).name == "HISTORY_AND_PHYSICAL"
    assert choose_template("text/template=girpp/a.txt", {}).name == "GIRPP"
    assert choose_template("audio/a.wav", {TEMPLATE_TAG: " physical_soap "}).name == "PHYSICAL_SOAP"
    assert choose_template("audio/template=cardio-followup/a.wav", {}).name == "cardio-followup"


@pytest.mark.parametrize(("key", "tags"), [
    ("audio/template=/a.wav", {}),
    ("audio/template=../x/a.wav", {}),
    ("audio/a.wav", {TEMPLATE_TAG: "John Smith"}),
    ("audio/a.wav", {TEMPLATE_TAG: "x" * 65}),
])
def test_names_no_template_can_have_are_refused_without_repeating_them(key: str, tags: dict[str, str]) -> None:
    with pytest.raises(TemplateChoiceError) as caught:
        choose_template(key, tags)
    assert "Smith" not in str(caught.value)
    assert "xxxx" not in str(caught.value)
