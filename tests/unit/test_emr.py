"""The EMR schema, record validation and the identifier detector that keeps Summary de-identified."""

from __future__ import annotations

import re
from typing import Any

import pytest

from medscribe.domain.emr import (
    FIELDS,
    LIST_FIELDS,
    WIRE_KEYS,
    EmrRecord,
    check_record,
    detect_language,
    emr_json_schema,
    find_identifiers,
    record_from_output,
)

EXPECTED_FIELDS = [
    "Anatomy", "Age", "Date", "Symptoms and Signs", "Diagnosis and Conditions", "Tests and Examinations",
    "Treatments and Medications", "Procedures", "Observations and Findings", "Future Plans", "Summary",
]


def valid_output(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "Anatomy": ["오른쪽 무릎"], "Age": "47", "Date": "2026-11-03", "Symptoms and Signs": ["무릎 통증"],
        "Diagnosis and Conditions": ["반월상 연골 파열 의심"], "Tests and Examinations": ["무릎 MRI 촬영"],
        "Treatments and Medications": ["나프록센 500mg 하루 2회"], "Procedures": [],
        "Observations and Findings": ["내측 관절선 압통"], "Future Plans": ["2주 후 재진"],
        "Summary": "47세 환자로 오른쪽 무릎 통증으로 내원함. 반월상 연골 파열 의심으로 MRI 예정.",
    }
    data.update(changes)
    return data


def wire(data: dict[str, Any]) -> dict[str, Any]:
    """A model's answer: display names replaced by the wire keys the schema gives the model."""
    return {WIRE_KEYS.get(name, name): value for name, value in data.items()}


def test_schema_has_exactly_the_demo_fields_all_required_under_wire_keys() -> None:
    schema = emr_json_schema()
    assert list(FIELDS) == EXPECTED_FIELDS
    keys = [WIRE_KEYS[name] for name in EXPECTED_FIELDS]
    assert list(schema["properties"]) == keys
    assert schema["required"] == keys
    assert schema["additionalProperties"] is False
    for name in EXPECTED_FIELDS:
        kind = schema["properties"][WIRE_KEYS[name]]["type"]
        assert kind == ("array" if name in LIST_FIELDS else "string")
        assert schema["properties"][WIRE_KEYS[name]]["description"].startswith(f"{name}. ")
    assert set(EXPECTED_FIELDS) - set(LIST_FIELDS) == {"Age", "Date", "Summary"}


def test_wire_keys_are_what_bedrock_accepts_and_are_the_record_field_names() -> None:
    # Bedrock Converse: tool input schema top-level property keys must match ^[a-zA-Z0-9_.-]{1,64}$
    assert all(re.fullmatch(r"[a-zA-Z0-9_.-]{1,64}", key) for key in emr_json_schema()["properties"])
    assert list(WIRE_KEYS.values()) == list(EmrRecord.model_fields)


def test_a_valid_output_becomes_a_record_without_problems() -> None:
    record, problems = record_from_output(wire(valid_output()))
    assert problems == []
    assert record.to_json() == valid_output()
    assert list(record.to_json()) == EXPECTED_FIELDS


@pytest.mark.parametrize(("changes", "code", "message"), [
    ({"Age": "47세"}, "age", "Age: must be digits only"),
    ({"Age": "forty"}, "age", "Age: must be digits only"),
    ({"Age": "1234"}, "age", "Age: must be digits only"),
    ({"Date": "2026/11/03"}, "date", "Date: must be YYYY-MM-DD"),
    ({"Date": "2026년 11월 3일"}, "date", "Date: must be YYYY-MM-DD"),
    ({"Date": "2026-02-30"}, "date", "Date: not a calendar date"),
    ({"Anatomy": "오른쪽 무릎"}, "schema", "Anatomy: must be a list of strings"),
    ({"Procedures": [1, "x"]}, "schema", "Procedures: items must be strings"),
    ({"Future Plans": ["  "]}, "empty_item", "Future Plans: items must be non-empty strings"),
    ({"Summary": ""}, "summary_empty", "Summary: must not be empty"),
    ({"Summary": ["a list"]}, "schema", "Summary: must be a string"),
    ({"Extra": "x"}, "schema", "1 unexpected field(s)"),
])
def test_invalid_values_are_problems_and_usable_values_are_kept(changes: dict[str, Any], code: str,
                                                                 message: str) -> None:
    record, problems = record_from_output(wire(valid_output(**changes)))
    matching = [p for p in problems if p.message.startswith(message)]
    assert len(matching) == 1
    assert matching[0].code == code
    assert record.symptoms_and_signs == ["무릎 통증"]  # the rest of the record survives


def test_display_names_from_a_model_are_not_taken_for_wire_keys() -> None:
    record, problems = record_from_output(valid_output())
    assert record == EmrRecord.model_validate({})
    assert problems[0].message.startswith(f"{len(FIELDS)} unexpected field(s)")


def test_missing_fields_and_non_objects_are_problems() -> None:
    data = wire(valid_output())
    del data["date"], data["procedures"]
    record, problems = record_from_output(data)
    assert [p.message for p in problems] == ["Date (date): missing", "Procedures (procedures): missing"]
    assert record.date == ""
    assert record.procedures == []
    empty, problems = record_from_output(["not", "an", "object"])
    assert empty == EmrRecord.model_validate({})
    assert [p.code for p in problems] == ["schema"]


def test_a_numeric_age_and_empty_age_and_date_are_accepted() -> None:
    record, problems = record_from_output(wire(valid_output(Age=58, Date="")))
    assert problems == []
    assert record.age == "58"
    assert record_from_output(wire(valid_output(Age="")))[1] == []


def test_a_list_field_given_as_a_string_is_kept_as_one_item() -> None:
    record, _ = record_from_output(wire(valid_output(Anatomy="knee")))
    assert record.anatomy == ["knee"]


@pytest.mark.parametrize(("summary", "kinds"), [
    ("Mr. Halvorsen was seen for an ankle sprain.", ["a personal name"]),
    ("Seen with Dr Whitfield for chest pain.", ["a personal name"]),
    ("Patient: Jonas reports cough.", ["a personal name"]),
    ("한지우 님은 왼쪽 어깨 통증으로 내원함.", ["a personal name"]),
    ("김철수씨, 무릎 통증.", ["a personal name"]),
    ("박서준 환자는 당뇨병 추적 관찰 중.", ["a personal name"]),
    ("성명: 이하늘, 발열.", ["a personal name"]),
    ("Lives at 17 Birchwood Lane with his wife.", ["a street address"]),
    ("서울시 마포구 거주, 어깨 통증.", ["a street address"]),
    ("월드컵로 45에 거주하는 환자.", ["a street address"]),
    ("부산 해운대구 우동 45-6 거주.", ["a street address"]),
    ("Call back on 555-014-2297.", ["a phone number"]),
    ("연락처 010-2745-3381.", ["a phone number"]),
    ("Reach her at j.doe@example.org.", ["an email address"]),
    ("MRN 40917735, chest pain.", ["an identifier (a run of 6 or more digits)"]),
    ("주민등록번호 850412-2345678 환자.", ["a resident registration number"]),
])
def test_identifiers_in_a_summary_are_found(summary: str, kinds: list[str]) -> None:
    assert find_identifiers(summary) == kinds
    _record, problems = record_from_output(wire(valid_output(Summary=summary)))
    assert [p.message for p in problems] == [f"Summary: contains {kind}" for kind in kinds]
    assert all(p.code == "summary_identifiers" for p in problems)
    telling = [w for w in summary.split()
               if len(w) >= 3 and (w[0].isupper() or any(c.isdigit() or c >= "가" for c in w))]
    assert not any(word in p.message for p in problems for word in telling)  # problems never echo the text


@pytest.mark.parametrize("summary", [
    "58-year-old patient seen for chest pain; BP 148/92, HR 78, troponin negative on 2026-10-14.",
    "Plan: aspirin 81 mg daily, atorvastatin 40 mg, stress test next week, follow up in 2 weeks.",
    "4-year-old with fever 39.2 C for two days; amoxicillin 90 mg/kg/day for 10 days.",
    "62세 여자 환자로 제2형 당뇨병 추적 관찰. 공복 혈당 140-160 mg/dL, 당화혈색소 7.8%.",
    "47세 남자 환자, 오른쪽 무릎 통증. 나프록센 500mg 하루 2회 7일간, 운동 30분, 2주 후 재진.",
    "고혈압 환자로 암로디핀 5mg 복용 중. 이번 환자는 보호자와 내원. 경구 500mg 투여.",
    "Patient seen in clinic. Metformin 1000 mg twice daily; HbA1c 7.8%.",
])
def test_clinical_text_is_not_mistaken_for_identifiers(summary: str) -> None:
    assert find_identifiers(summary) == []


@pytest.mark.parametrize("kept", [{}, {"Anatomy": ["knee"], "Age": "47", "Date": "2026-11-03"},
                                  {"Symptoms and Signs": [" "]}])
def test_a_record_without_clinical_content_is_a_problem(kept: dict[str, Any]) -> None:
    empty = {name: [] for name in LIST_FIELDS} | {"Age": "", "Date": ""}
    record, problems = record_from_output(wire(valid_output(**(empty | kept))))
    found = [p for p in problems if p.code == "no_clinical_content"]
    assert [p.message for p in found] == [
        "the note has no clinical content (no symptoms, diagnoses, tests, treatments, procedures, observations "
        "or plans): a person must review it"]
    assert check_record(record) == [p for p in problems if p.code != "schema"]


def test_the_date_field_is_described_as_the_visit_date_never_a_date_of_birth() -> None:
    described = emr_json_schema()["properties"]["date"]["description"]
    assert "visit" in described
    assert "never a date of birth" in described


def test_check_record_validates_a_constructed_record() -> None:
    record = EmrRecord.model_validate(valid_output(Summary="Mr. Smith, 12 Oak Street."))
    assert [p.message for p in check_record(record)] == [
        "Summary: contains a personal name", "Summary: contains a street address"]


@pytest.mark.parametrize(("text", "language"), [
    ("58-year-old male with chest pain.", "en"),
    ("62세 여자 환자로 제2형 당뇨병 정기 추적 관찰을 위해 내원함.", "ko"),
    ("무릎 MRI 촬영, X-ray, HbA1c 7.8%, 2주 후 재진.", "ko"),
    ("", "en"),
])
def test_language_is_told_by_the_share_of_hangul(text: str, language: str) -> None:
    assert detect_language(text) == language
