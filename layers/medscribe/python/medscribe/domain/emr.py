"""The EMR record a text note (Korean or English) is structured into, and its validation. Pure.

The fields are those of the Korean EMR-structuring demo (a Bedrock prompt over Korean clinical
notes): Anatomy, Age, Date, Symptoms and Signs, Diagnosis and Conditions, Tests and Examinations,
Treatments and Medications, Procedures, Observations and Findings, Future Plans, Summary. Field
names stay English whatever the note's language; values are in the note's language.

Two spellings of each field: the display name above is how the record is stored and shown; the
wire key (`WIRE_KEYS`, e.g. `symptoms_and_signs`) is what a model sees and answers with, because
Bedrock Converse rejects a tool whose top-level schema property keys fall outside
`^[a-zA-Z0-9_.-]{1,64}$` (no spaces). `emr_json_schema` and `record_from_output` speak wire keys;
`EmrRecord.to_json` gives display names. The demo
kept every value a string; here the eight enumerating fields are lists of strings (one finding
per item), Age/Date/Summary stay strings.

Validation (`check_record`, `record_from_output`) turns anything a model returns into an
`EmrRecord` plus a list of `Problem`s (the documentation stage's problem type), never raising: Age
digits only (or empty), Date a real calendar date as YYYY-MM-DD (or empty), list fields lists of
non-empty strings, at least one clinical finding (`CLINICAL_FIELDS`: a note with none -- empty,
invisible characters, prose about anything but a visit -- is `no_clinical_content`, for a person to
look at, never documented), Summary non-empty and free of names, addresses and identifiers
(`find_identifiers`). Problems name the field and the kind of fault, never the offending text, so
they are safe to show and to log.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from medscribe.domain.notes import Problem

ANATOMY = "Anatomy"
AGE = "Age"
DATE = "Date"
SYMPTOMS = "Symptoms and Signs"
DIAGNOSES = "Diagnosis and Conditions"
TESTS = "Tests and Examinations"
TREATMENTS = "Treatments and Medications"
PROCEDURES = "Procedures"
OBSERVATIONS = "Observations and Findings"
PLANS = "Future Plans"
SUMMARY = "Summary"

FIELDS: tuple[str, ...] = (
    ANATOMY, AGE, DATE, SYMPTOMS, DIAGNOSES, TESTS, TREATMENTS, PROCEDURES, OBSERVATIONS, PLANS, SUMMARY,
)
LIST_FIELDS: tuple[str, ...] = (ANATOMY, SYMPTOMS, DIAGNOSES, TESTS, TREATMENTS, PROCEDURES, OBSERVATIONS, PLANS)
# a record with none of these holds nothing clinical (Anatomy, Age and Date alone describe no visit)
CLINICAL_FIELDS: tuple[str, ...] = (SYMPTOMS, DIAGNOSES, TESTS, TREATMENTS, PROCEDURES, OBSERVATIONS, PLANS)
NO_CLINICAL_CONTENT = "no_clinical_content"

FIELD_DESCRIPTIONS: dict[str, str] = {
    ANATOMY: "Body parts where the patient has the problem (e.g. right knee). Infer from the note if needed.",
    AGE: "The patient's age in years, digits only (e.g. 58); empty if the note does not say.",
    DATE: "The date of the visit as YYYY-MM-DD, never a date of birth; empty if the note gives no visit date.",
    SYMPTOMS: "Symptoms the patient reports and signs the clinician observes, one per item.",
    DIAGNOSES: "Diagnosed or suspected conditions and relevant past conditions, one per item.",
    TESTS: "Tests and examinations done or ordered, one per item.",
    TREATMENTS: "Medications (with dose and frequency when given) and other treatments, one per item.",
    PROCEDURES: "Medical procedures or interventions performed or planned, one per item.",
    OBSERVATIONS: "Examination findings, test results and other documented findings, one per item.",
    PLANS: "What is planned next: follow-up, referrals, scheduled tests and treatments, one per item.",
    SUMMARY: "One or two sentences summarising the visit, with no names, addresses, phone numbers, "
             "email addresses or identifiers of any kind.",
}

# display name -> the key a model sees (Bedrock's tool schema property-key pattern; no spaces)
WIRE_KEYS: dict[str, str] = {name: name.lower().replace(" ", "_") for name in FIELDS}
FIELD_OF_WIRE_KEY: dict[str, str] = {wire: name for name, wire in WIRE_KEYS.items()}

_AGE = re.compile(r"\d{1,3}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def emr_json_schema() -> dict[str, Any]:
    """JSON schema of the record as a model answers it (tool use / response format): wire keys, each
    described with its display name."""
    properties: dict[str, Any] = {}
    for name in FIELDS:
        description = f"{name}. {FIELD_DESCRIPTIONS[name]}"
        if name in LIST_FIELDS:
            properties[WIRE_KEYS[name]] = {"type": "array", "items": {"type": "string"}, "description": description}
        else:
            properties[WIRE_KEYS[name]] = {"type": "string", "description": description}
    properties[WIRE_KEYS[AGE]]["pattern"] = r"^[0-9]{0,3}$"
    properties[WIRE_KEYS[DATE]]["pattern"] = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$"
    return {"type": "object", "properties": properties, "required": [WIRE_KEYS[name] for name in FIELDS],
            "additionalProperties": False}


class EmrRecord(BaseModel):
    """One structured note. Construct through `record_from_output` (or the offline extractor)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)

    anatomy: list[str] = Field(default_factory=list, alias="Anatomy")
    age: str = Field("", alias="Age")
    date: str = Field("", alias="Date")
    symptoms_and_signs: list[str] = Field(default_factory=list, alias="Symptoms and Signs")
    diagnosis_and_conditions: list[str] = Field(default_factory=list, alias="Diagnosis and Conditions")
    tests_and_examinations: list[str] = Field(default_factory=list, alias="Tests and Examinations")
    treatments_and_medications: list[str] = Field(default_factory=list, alias="Treatments and Medications")
    procedures: list[str] = Field(default_factory=list, alias="Procedures")
    observations_and_findings: list[str] = Field(default_factory=list, alias="Observations and Findings")
    future_plans: list[str] = Field(default_factory=list, alias="Future Plans")
    summary: str = Field("", alias="Summary")

    def to_json(self) -> dict[str, Any]:
        """The record keyed by the schema's field names, in schema order."""
        dumped = self.model_dump(by_alias=True)
        return {name: dumped[name] for name in FIELDS}

    def to_wire(self) -> dict[str, Any]:
        """The record as a model answers it (`emr_json_schema`): wire keys, in schema order."""
        return {WIRE_KEYS[name]: value for name, value in self.to_json().items()}


# --- identifiers -------------------------------------------------------------------------------

_HONORIFIC_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+[A-Z][A-Za-z'\-]+")
_LABELLED_NAME = re.compile(
    r"\b(?:[Pp]atient [Nn]ame|[Nn]ame|Patient)\s*:\s*[A-Z][A-Za-z'\-]+|(?:성명|이름|환자명)\s*:?\s*[가-힣]{2,4}"
)
# Common Korean surnames (two-syllable ones first so they win), then one or two given syllables.
_KO_SURNAMES = (
    "남궁|황보|제갈|선우|독고|"
    "김|이|박|최|정|강|조|윤|장|임|한|오|서|신|권|황|안|송|류|유|전|홍|고|문|양|손|배|백|허|남|심|노|"
    "하|곽|성|차|주|우|구|민|진|나|지|엄|채|원|천|방|공|현|함|변|염|여|추|도|석|선|설|마|길|연|위|표|"
    "명|기|반|왕|금|옥|육|인|맹|제|모|탁|국|어|은|편|용|예|경|봉|사|부|복|태|목|형|계|피|감|빈|온|호|범"
)
_KO_NAME = re.compile(rf"(?<![가-힣])(?P<name>(?:{_KO_SURNAMES})[가-힣]{{1,2}})\s?(?:님|씨|환자|환아)")
# Words that look like surname + syllables but are common nouns before 님/씨/환자.
_KO_NOT_NAMES = frozenset({
    "여자", "남자", "여성", "남성", "여아", "남아", "고령", "고혈압", "고위험", "소아", "성인",
    "노인", "신생아", "영아", "유아", "임산부", "임신", "신환", "신규", "재진", "초진", "외래",
    "입원", "응급", "중증", "경증", "기저", "기존", "전원", "내과", "외과", "보호자", "주치의",
    "선생", "원장", "교수", "간호사", "해당", "동일", "상기", "본원", "이번", "모든", "전체",
    "정상", "양성", "음성", "만성", "급성", "수술", "유방암", "위암", "폐암", "간암", "대장암",
    "치매", "우울", "천식", "비만", "심부전", "투석", "이식", "장애", "무증상", "확진", "의심",
    "경과", "관찰", "추적", "구역", "구토", "발열", "어머", "사모", "고객", "기사", "환자",
    "당뇨", "당뇨병",
})
_EN_ADDRESS = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][A-Za-z'\-]+\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Crescent|"
    r"Close|Highway|Hwy|Parkway|Square|Sq)\b"
)
_KO_ADDRESS_NUMBERED = re.compile(
    r"[가-힣]{1,10}(?:시|구|군|동|읍|면|로|길)\s?\d{1,5}(?:-\d{1,5})?(?![\d.])(?:번지|호)?"
    r"(?!\s?(?:회|분|주|일|개월|달|년|시간|세|mg|g|kg|cm|mm|mL|ml|%|번|차|명|알|정|캡슐|도|초|층|단계|/))"
)
_KO_ADDRESS_REGION = re.compile(
    r"(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|충청북|충청남|전북|전남|전라북|전라남|경북|경남|"
    r"경상북|경상남|제주)(?:특별시|광역시|특별자치시|특별자치도|시|도)?\s[가-힣]{1,5}(?:구|군|시)(?![가-힣])"
)
_PHONE = re.compile(r"(?<![\d-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]\d{4}(?![\d-])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_RRN = re.compile(r"(?<!\d)\d{6}\s?-\s?[1-8]\d{6}(?!\d)")
_LONG_DIGITS = re.compile(r"(?<!\d)\d{6,}(?!\d)")


def _korean_names(text: str) -> bool:
    return any(match.group("name") not in _KO_NOT_NAMES for match in _KO_NAME.finditer(text))


def find_identifiers(text: str) -> list[str]:
    """Kinds of personal information found in `text` (names, addresses, contacts, identifiers)."""
    found: list[str] = []
    if _HONORIFIC_NAME.search(text) or _LABELLED_NAME.search(text) or _korean_names(text):
        found.append("a personal name")
    if _EN_ADDRESS.search(text) or _KO_ADDRESS_NUMBERED.search(text) or _KO_ADDRESS_REGION.search(text):
        found.append("a street address")
    if _EMAIL.search(text):
        found.append("an email address")
    without_rrn = _RRN.sub(" ", text)
    if without_rrn != text:
        found.append("a resident registration number")
    if _PHONE.search(without_rrn):
        found.append("a phone number")
    if _LONG_DIGITS.search(_PHONE.sub(" ", without_rrn)):
        found.append("an identifier (a run of 6 or more digits)")
    return found


# --- validation --------------------------------------------------------------------------------

def check_record(record: EmrRecord) -> list[Problem]:
    """Problems with a well-typed record's values."""
    problems: list[Problem] = []
    if record.age and not _AGE.fullmatch(record.age):
        problems.append(Problem("age", f"{AGE}: must be digits only (years), or empty"))
    if record.date:
        problems.extend(_date_problems(record.date))
    data = record.to_json()
    problems.extend(Problem("empty_item", f"{name}: items must be non-empty strings")
                    for name in LIST_FIELDS if any(not item.strip() for item in data[name]))
    if not any(item.strip() for name in CLINICAL_FIELDS for item in data[name]):
        problems.append(Problem(NO_CLINICAL_CONTENT, "the note has no clinical content (no symptoms, diagnoses, "
                                "tests, treatments, procedures, observations or plans): a person must review it"))
    if not record.summary.strip():
        problems.append(Problem("summary_empty", f"{SUMMARY}: must not be empty"))
    problems.extend(Problem("summary_identifiers", f"{SUMMARY}: contains {kind}")
                    for kind in find_identifiers(record.summary))
    return problems


def _date_problems(value: str) -> list[Problem]:
    if not _DATE.fullmatch(value):
        return [Problem("date", f"{DATE}: must be YYYY-MM-DD, or empty")]
    try:
        date.fromisoformat(value)
    except ValueError:
        return [Problem("date", f"{DATE}: not a calendar date")]
    return []


def record_from_output(data: object) -> tuple[EmrRecord, list[Problem]]:
    """A record from whatever a model returned (wire keys), keeping every usable value, plus all
    problems. Problems name fields by display name and wire key, never by value."""
    if not isinstance(data, dict):
        return EmrRecord.model_validate({}), [Problem("schema", "the output must be a JSON object with the EMR fields")]
    unexpected = sum(1 for key in data if key not in FIELD_OF_WIRE_KEY)
    problems = [Problem("schema", f"{unexpected} unexpected field(s): use only the schema's keys")] \
        if unexpected else []
    values: dict[str, Any] = {}
    for name in FIELDS:
        if WIRE_KEYS[name] not in data:
            problems.append(Problem("schema", f"{name} ({WIRE_KEYS[name]}): missing"))
            continue
        value = data[WIRE_KEYS[name]]
        if name in LIST_FIELDS:
            values[name], fault = _as_list(value)
        else:
            values[name], fault = _as_text(name, value)
        if fault:
            problems.append(Problem("schema", f"{name}: {fault}"))
    record = EmrRecord.model_validate(values)
    return record, problems + check_record(record)


def _as_list(value: object) -> tuple[list[str], str | None]:
    if isinstance(value, list):
        items = [item if isinstance(item, str) else str(item) for item in value if item is not None]
        return items, None if all(isinstance(item, str) for item in value) else "items must be strings"
    if isinstance(value, str):
        return ([value] if value.strip() else []), "must be a list of strings"
    return [], "must be a list of strings"


def _as_text(name: str, value: object) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    if name == AGE and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value), None  # a bare number is an unambiguous age in years
    if value is None:
        return "", "must be a string"
    return str(value), "must be a string"


# --- language ----------------------------------------------------------------------------------

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str:
    """'ko' when at least 30 % of the letters are Hangul (Korean notes mix in Latin terms), else 'en'."""
    hangul = len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    return "ko" if hangul and hangul >= 0.3 * (hangul + latin) else "en"
