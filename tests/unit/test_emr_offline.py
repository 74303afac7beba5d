"""The offline EMR extractor on every sample note (Korean and English): valid records, verbatim values,
the facts each note states, and a Summary that never carries the names and addresses planted in notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from medscribe.domain.emr import check_record, detect_language, find_identifiers
from medscribe.domain.offline_emr import extract_age, extract_date, extract_record
from medscribe.domain.offline_emr_lexicon import ENGLISH, KOREAN

SAMPLES = Path(__file__).resolve().parents[2] / "sample-data" / "text"
NOTES = sorted(SAMPLES.glob("*.txt"))


def squash(text: str) -> str:
    return " ".join(text.split())


def test_there_are_korean_and_english_sample_notes() -> None:
    languages = [detect_language(path.read_text(encoding="utf-8")) for path in NOTES]
    assert languages.count("ko") >= 4
    assert languages.count("en") >= 4


@pytest.mark.parametrize("path", NOTES, ids=lambda p: p.stem)
def test_every_sample_note_gives_a_valid_record_of_verbatim_phrases(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    record = extract_record(text)
    assert check_record(record) == []
    assert record.age.isdigit()
    assert record.date.count("-") == 2
    data = record.to_json()
    assert data["Symptoms and Signs"]
    assert data["Diagnosis and Conditions"]
    assert data["Future Plans"]
    assert data["Anatomy"]
    flat = squash(text).lower()
    for name in ("Symptoms and Signs", "Diagnosis and Conditions", "Tests and Examinations",
                 "Treatments and Medications", "Procedures", "Observations and Findings", "Future Plans",
                 "Anatomy"):
        for item in data[name]:
            assert squash(item).lower() in flat, (name, item)  # a phrase of the note, never invented
    assert record == extract_record(text)  # deterministic


def record_of(stem: str) -> dict[str, object]:
    return extract_record((SAMPLES / f"{stem}.txt").read_text(encoding="utf-8")).to_json()


def joined(record: dict[str, object], field: str) -> str:
    value = record[field]
    assert isinstance(value, list)
    return " | ".join(value)


def test_english_chest_pain_note() -> None:
    record = record_of("en-chest-pain-followup")
    assert (record["Age"], record["Date"], record["Anatomy"]) == ("58", "2026-10-14", ["chest"])
    assert "exertional chest pain" in joined(record, "Symptoms and Signs")
    assert "stable angina" in joined(record, "Diagnosis and Conditions")
    assert "ECG today" in joined(record, "Tests and Examinations")
    assert "lisinopril 20 mg" in joined(record, "Treatments and Medications")
    assert "BP 148/92" in joined(record, "Observations and Findings")
    assert "No pain at rest" in joined(record, "Observations and Findings")  # a pertinent negative
    assert "No pain at rest" not in joined(record, "Symptoms and Signs")
    assert "return in two weeks" in joined(record, "Future Plans")
    assert "resolves with rest" not in joined(record, "Treatments and Medications")


def test_english_pediatric_note() -> None:
    record = record_of("en-pediatric-fever")
    assert (record["Age"], record["Date"]) == ("4", "2026-09-02")
    assert "right ear" in record["Anatomy"]  # type: ignore[operator]
    assert joined(record, "Diagnosis and Conditions") == "acute otitis media, right ear"
    assert "amoxicillin 90 mg/kg/day" in joined(record, "Treatments and Medications")
    assert "ear recheck in 3 weeks" in joined(record, "Future Plans")


def test_english_laceration_note_has_procedures() -> None:
    record = record_of("en-hand-laceration")
    assert record["Anatomy"] == ["right palm"]
    procedures = joined(record, "Procedures")
    assert "closed with five interrupted nylon sutures" in procedures
    assert "Tetanus-diphtheria vaccination given today" in procedures


def test_korean_diabetes_note() -> None:
    record = record_of("ko-diabetes-followup")
    assert (record["Age"], record["Date"]) == ("62", "2026-10-21")
    assert "양쪽 발바닥" in record["Anatomy"]  # type: ignore[operator]
    assert "당뇨병성 말초신경병증 의심" in joined(record, "Diagnosis and Conditions")
    assert "신경전도검사 의뢰" in joined(record, "Tests and Examinations")
    assert "현재 메트포르민 1000mg 하루 2회 복용 중" in joined(record, "Treatments and Medications")
    assert "3개월 후 당화혈색소 재검" in joined(record, "Future Plans")
    assert "시력 변화는 없음" in joined(record, "Observations and Findings")


def test_korean_knee_note() -> None:
    record = record_of("ko-knee-pain")
    assert (record["Age"], record["Date"], record["Anatomy"]) == ("47", "2026-11-03", ["오른쪽 무릎"])
    assert "오른쪽 무릎 내측 반월상 연골 파열 의심" in joined(record, "Diagnosis and Conditions")
    assert "무릎 MRI 촬영" in joined(record, "Tests and Examinations")
    assert "X-선: 골절 없음, 경미한 관절 간격 감소" in joined(record, "Observations and Findings")
    assert "냉찜질과 활동 조절" in joined(record, "Treatments and Medications")
    assert "2주 후 재진" in joined(record, "Future Plans")


def test_korean_child_note_splits_where_the_sentence_turns() -> None:
    record = record_of("ko-child-gastroenteritis")
    assert (record["Age"], record["Date"]) == ("6", "2026-12-02")
    assert "복통이 있으나" in joined(record, "Symptoms and Signs")
    assert "혈변은 없음" in joined(record, "Observations and Findings")
    assert "정맥 수액 투여 및 온단세트론 주사 후 구토 멈춤" in joined(record, "Procedures")


PLANTED = {
    "en-ankle-sprain": ("Halvorsen", "Birchwood", "555-014-2297", "40917735"),
    "ko-shoulder-pain": ("한지우", "마포구", "월드컵로", "010-2745-3381", "850412-2345678"),
}


@pytest.mark.parametrize("stem", sorted(PLANTED))
def test_planted_names_and_addresses_stay_out_of_the_summary(stem: str) -> None:
    text = (SAMPLES / f"{stem}.txt").read_text(encoding="utf-8")
    assert {"a personal name", "a street address", "a phone number"} <= set(find_identifiers(text))
    record = extract_record(text)
    assert all(planted in text for planted in PLANTED[stem])
    assert not any(planted in record.summary for planted in PLANTED[stem])
    assert find_identifiers(record.summary) == []
    assert check_record(record) == []


def test_a_name_inside_a_clinical_sentence_does_not_reach_the_summary() -> None:
    text = ("Date of visit: 2026-05-02\nMr. Okonkwo, 71-year-old, of 9 Harbour Road reports chest pain and "
            "shortness of breath since Tuesday; phone 020-7946-0321.\nAssessment: angina.\n"
            "Plan: ECG and troponin today; follow up in 1 week.")
    record = extract_record(text)
    assert "Mr. Okonkwo" in " ".join(record.symptoms_and_signs)  # list values quote the note
    assert record.age == "71"
    assert "chest pain" in record.summary
    assert "Okonkwo" not in record.summary
    assert "Harbour" not in record.summary
    assert "7946" not in record.summary
    assert check_record(record) == []
    ko = ("진료일: 2026-05-02\n김민준 님(58세), 부산 해운대구 우동 45-6 거주, 두통과 어지럼으로 내원.\n"
          "평가: 편두통.\n계획: 2주 후 재진.")
    record = extract_record(ko)
    assert record.age == "58"
    assert "두통" in record.summary
    assert "김민준" not in record.summary
    assert "해운대구" not in record.summary
    assert check_record(record) == []


@pytest.mark.parametrize(("text", "age"), [
    ("a 58-year-old male", "58"), ("53 -year-old female", "53"), ("45 y/o man", "45"), ("aged 70", "70"),
    ("an 18-month-old boy", "1"), ("no age given, BP 120/80", ""),
])
def test_english_ages(text: str, age: str) -> None:
    assert extract_age(text, ENGLISH) == age


@pytest.mark.parametrize(("text", "age"), [
    ("62세 여자 환자", "62"), ("만 4세 여아", "4"), ("55세의 남성", "55"), ("18개월 남아", "1"), ("나이 미상", ""),
])
def test_korean_ages(text: str, age: str) -> None:
    assert extract_age(text, KOREAN) == age


@pytest.mark.parametrize(("text", "date"), [
    ("Seen 2026-01-02.\nDate of visit: 2026-10-14", "2026-10-14"),
    ("Visit 2026-09-02. 4-year-old girl", "2026-09-02"),
    ("follow-up on 2026/3/7", "2026-03-07"),
    ("Date: 2026-02-30 (typo)", ""),
])
def test_english_dates(text: str, date: str) -> None:
    assert extract_date(text, ENGLISH) == date


@pytest.mark.parametrize(("text", "date"), [
    ("진료일: 2026-10-21", "2026-10-21"), ("진료일: 2026년 9월 15일", "2026-09-15"), ("2026.11.03 내원", "2026-11-03"),
])
def test_korean_dates(text: str, date: str) -> None:
    assert extract_date(text, KOREAN) == date


def test_a_note_with_nothing_recognisable_gets_a_well_formed_record_that_needs_review() -> None:
    record = extract_record("Spoke on the telephone; nothing further.")
    assert record.summary
    assert [p.code for p in check_record(record)] == ["no_clinical_content"]
    assert record.age == ""
    assert record.date == ""


@pytest.mark.parametrize(("text", "date"), [
    ("DOB: 1961-03-02\nDate of visit: 2026-10-14\nCough for three days.", "2026-10-14"),
    ("Date of birth: 1961-03-02. Seen 2026-10-14 for cough.", "2026-10-14"),
    ("Patient born on 1961/3/2, seen 2026-10-14 for cough.", "2026-10-14"),
    ("Birth date: 1961-03-02\nVisit 2026-10-14", "2026-10-14"),
    ("D.O.B. 1961.03.02 -- visit 2026-10-14", "2026-10-14"),
    ("DOB: 1961-03-02. Cough for three days.", ""),
    ("Date of birth is 1961-03-02.", ""),
])
def test_an_english_date_of_birth_is_never_the_visit_date(text: str, date: str) -> None:
    assert extract_date(text, ENGLISH) == date


@pytest.mark.parametrize(("text", "date"), [
    ("생년월일: 1961.03.02\n진료일: 2026-10-21\n기침 3일.", "2026-10-21"),
    ("1961년 3월 2일생 남자, 2026년 10월 21일 내원.", "2026-10-21"),
    ("출생일자: 1961-03-02\n2026.11.03 내원", "2026-11-03"),
    ("DOB 1961-03-02, 2026.11.03 내원", "2026-11-03"),
    ("생년월일은 1961년 3월 2일, 기침 3일.", ""),
    ("출생: 1961-03-02", ""),
    ("2026.10.21 생검 시행", "2026-10-21"),  # 생검 (biopsy) is not a birth
])
def test_a_korean_date_of_birth_is_never_the_visit_date(text: str, date: str) -> None:
    assert extract_date(text, KOREAN) == date


def test_a_whole_note_takes_the_visit_date_not_the_date_of_birth() -> None:
    english = "58-year-old man, DOB 1968-04-12.\nDate of visit: 2026-10-14\nChest pain on exertion."
    korean = "생년월일: 1968-04-12\n진료일: 2026-10-21\n58세 남자 환자로 흉통을 호소함."
    assert extract_record(english).date == "2026-10-14"
    assert extract_record(korean).date == "2026-10-21"
    assert extract_record("DOB 1968-04-12. Chest pain on exertion.").date == ""
    assert extract_record("생년월일: 1968-04-12\n흉통을 호소함.").date == ""
