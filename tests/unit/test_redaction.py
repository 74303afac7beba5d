"""Offline de-identification rules: every category in both languages, and what stays."""

from __future__ import annotations

import pytest

from medscribe.domain.redaction import find_phi, redact, redact_lines
from medscribe.domain.transcript_lines import Line


@pytest.mark.parametrize(("text", "expected"), [
    ("[doctor] hi , brian . how are you ?", "[doctor] hi , [NAME] . how are you ?"),
    ("hello , mr . ward . nice to meet you .", "hello , mr . [NAME] . nice to meet you ."),
    ("today i'm seeing christina cooper . her date of birth is 07/01/1954 .",
     "today i'm seeing [NAME] . her date of birth is [DATE] ."),
    ("my name is oluwaseun .", "my name is [NAME] ."),
    ("the patient is a 93-year-old man .", "the patient is a [AGE]-year-old man ."),
    ("she lives at 12 oak street apt 4 , call (617) 555-0142 .", "she lives at [ADDRESS] , call [PHONE] ."),
    ("MRN 00482913 , ssn 123-45-6789 , e-mail r.alvarez@example.org",
     "MRN [ID] , ssn [ID] , e-mail [EMAIL]"),
    ("follow up on the 15th of november , seen january 4 2021 .", "follow up on [DATE] , seen [DATE] ."),
    ("김민수 님, 생년월일이 1950년 3월 5일 맞으세요?", "[NAME] 님, 생년월일이 [DATE] 맞으세요?"),
    ("주민등록번호 500305-1234567, 연락처 010-1234-5678", "주민등록번호 [RRN], 연락처 [PHONE]"),
    ("주소는 서울특별시 강남구 테헤란로 152입니다.", "주소는 [ADDRESS]입니다."),
    ("어머니가 올해 93세세요. 딸 윤아가 같이 왔어요.", "어머니가 올해 [AGE]세요. 딸 [NAME]가 같이 왔어요."),
])
def test_each_category_is_replaced_by_its_label(text: str, expected: str) -> None:
    assert redact(text)[0] == expected


@pytest.mark.parametrize("text", [
    "i'm fine , thanks . will do .",
    "he is 64 years old and works in construction .",  # ages up to 89 are not identifiers
    "the pain started in 2019 .",  # a year alone is not
    "take 10 mg twice a day for 30 days .",
    "chest x-ray may show some changes .",
    "선생님, 어머님이 많이 좋아지셨어요.",  # 선생님 and 어머님 are not names
    "저는 64세이고 당뇨가 있어요.",
    "i walked 30 miles on a road trip .",
])
def test_ordinary_clinical_speech_is_left_alone(text: str) -> None:
    assert find_phi(text) == []


def test_spans_are_offsets_into_the_original_and_overlaps_merge() -> None:
    text = "Dr. Patel saw her on 4/2/24."
    replaced, spans = redact(text)
    assert [text[s.begin:s.end] for s in spans] == ["Patel", "4/2/24"]
    assert replaced == "Dr. [NAME] saw her on [DATE]."


def test_spans_another_engine_found_are_redacted_too() -> None:
    from medscribe.domain.redaction import PhiSpan

    replaced, _ = redact("seen by the team at Riverside", extra=[PhiSpan("ADDRESS", 20, 29)])
    assert replaced == "seen by the team at [ADDRESS]"


def test_lines_keep_their_numbers_speakers_and_times_and_counts_hold_no_text() -> None:
    lines = [Line(1, "spk_0", 0.0, 1.5, "hi , logan .", 0.9), Line(2, "spk_1", 1.5, 3.0, "hi .", None)]
    redacted, counts = redact_lines(lines)
    assert [(x.n, x.speaker, x.start, x.end, x.confidence) for x in redacted] == [
        (1, "spk_0", 0.0, 1.5, 0.9), (2, "spk_1", 1.5, 3.0, None)]
    assert redacted[0].text == "hi , [NAME] ."
    assert counts == {"NAME": 1}


def test_a_note_document_is_redacted_in_its_free_text_and_keeps_its_structure() -> None:
    from medscribe.domain.redaction import redact_document

    note = {"template": "hp", "status": "DOCUMENTED", "engine": "offline",
            "lines": [{"n": 1, "speaker": "spk_0", "role": "clinician", "text": "hi , logan . dob 3/4/1950 ."}],
            "sections": [{"name": "History", "items": [{"text": "Logan reports pain since 3/1/2021.", "lines": [1]}]}],
            "problems": []}
    redacted, counts = redact_document(note)
    assert redacted == {
        "template": "hp", "status": "DOCUMENTED", "engine": "offline",
        "lines": [{"n": 1, "speaker": "spk_0", "role": "clinician", "text": "hi , [NAME] . dob [DATE] ."}],
        "sections": [{"name": "History", "items": [{"text": "[NAME] reports pain since [DATE].", "lines": [1]}]}],
        "problems": []}
    assert counts == {"NAME": 2, "DATE": 2}
    assert note["lines"][0]["text"].startswith("hi , logan")  # type: ignore[index]  # the input is not changed
