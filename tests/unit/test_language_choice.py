"""The language an upload asks for (domain.language_choice): tag, then key, then the setting; what is
rejected; and which uploads a Medical deployment sends to standard Transcribe."""

from __future__ import annotations

import pytest

from medscribe.domain.language_choice import (
    LANGUAGE_TAG,
    LanguageChoice,
    LanguageChoiceError,
    LanguageSource,
    choose_language,
    language_in_key,
    medical_job,
)


@pytest.mark.parametrize(("key", "language"), [
    ("audio/ko-KR/visit.mp3", "ko-KR"),
    ("audio/ko-kr/clinic-a/visit.mp3", "ko-KR"),  # any letter case, recorded as Transcribe writes it
    ("text/en-US/note.txt", "en-US"),
    ("audio/identify/visit.mp3", "identify"),
    ("audio/clinic-a/language=ko-KR/visit.mp3", "ko-KR"),  # a language= segment anywhere
    ("audio/template=SOAP/language=identify/visit.mp3", "identify"),
    ("audio/en-US/language=ko-KR/visit.mp3", "ko-KR"),  # the explicit segment wins over the first folder
    ("audio/language=en-US/language=ko-KR/visit.mp3", "ko-KR"),  # the innermost segment wins
])
def test_the_key_names_the_language(key: str, language: str) -> None:
    assert language_in_key(key) == language
    assert choose_language(key, {}) == LanguageChoice(language, LanguageSource.KEY)


@pytest.mark.parametrize("key", [
    "audio/visit.mp3",
    "audio/clinic-a/visit.mp3",  # a plain folder
    "audio/dr-km/visit.mp3",  # shaped like a locale only in lower case: a folder
    "audio/clinic-a/ko-KR/visit.mp3",  # a language folder counts only directly below the kind prefix
    "audio/ko-KR.mp3",  # the file name is never read
    "audio/language=ko-KR.mp3",
])
def test_a_key_that_names_no_language_leaves_the_choice_to_the_setting(key: str) -> None:
    assert language_in_key(key) is None
    assert choose_language(key, {"other": "x"}) == LanguageChoice(None, LanguageSource.SETTING)


def test_the_tag_names_the_language_and_wins_over_the_key() -> None:
    assert choose_language("audio/ko-KR/visit.mp3", {LANGUAGE_TAG: "en-US"}) == LanguageChoice(
        "en-US", LanguageSource.TAG)
    assert choose_language("audio/visit.mp3", {LANGUAGE_TAG: " KO-kr "}) == LanguageChoice("ko-KR", LanguageSource.TAG)
    # the tag decides even when the key names a language the pipeline does not transcribe
    assert choose_language("audio/fr-FR/visit.mp3", {LANGUAGE_TAG: "identify"}).language == "identify"


@pytest.mark.parametrize(("key", "tags", "where"), [
    ("audio/fr-FR/visit.mp3", {}, "first folder"),  # shaped like a Transcribe locale, not supported
    ("text/ja-JP/note.txt", {}, "first folder"),
    ("audio/language=fr-FR/visit.mp3", {}, "language= folder"),
    ("audio/language=Korean-patient-Kim/visit.mp3", {}, "language= folder"),
    ("audio/ko-KR/visit.mp3", {LANGUAGE_TAG: "Korean"}, "medscribe-language tag"),
    ("audio/visit.mp3", {LANGUAGE_TAG: ""}, "medscribe-language tag"),
])
def test_an_unsupported_language_is_rejected_without_repeating_it(key: str, tags: dict[str, str],
                                                                  where: str) -> None:
    with pytest.raises(LanguageChoiceError) as raised:
        choose_language(key, tags)
    message = str(raised.value)
    assert where in message
    assert "en-US, ko-KR or identify" in message
    assert not any(word in message for word in ("fr-FR", "ja-JP", "Kim", "Korean"))


@pytest.mark.parametrize(("language", "medical", "expected"), [
    ("en-US", True, True),
    ("ko-KR", True, False),  # Transcribe Medical is US English only: standard Transcribe
    ("identify", True, False),  # Medical has no language identification: standard Transcribe
    ("en-US", False, False),
    ("ko-KR", False, False),
])
def test_only_en_us_uploads_of_a_medical_deployment_get_medical_jobs(language: str, medical: bool,
                                                                     expected: bool) -> None:
    assert medical_job(language, medical) is expected
