"""Offline EMR structuring: a deterministic, rule-based extractor for Korean and English notes. Pure.

Method (no model; the same note always gives the same record):
1. Language: Korean when at least 30 % of the letters are Hangul (`emr.detect_language`), else
   English; each language has its own lexicons, headings and patterns below.
2. Age: "58-year-old", "53 -year-old" (ASR spacing), "45 y/o", "aged 70", "18-month-old" (whole
   years), "62세", "18개월 남아". Date: a labelled date first ("진료일: 2026-10-21", "Date of visit: ...",
   "Visit 2026-09-02"), else the first date in the note; ISO, dotted, slashed and "2026년 9월 15일"
   forms, normalised to YYYY-MM-DD and kept only when it is a calendar date. A date of birth is
   never the visit date ("DOB", "date of birth", "born on", "생년월일", "출생일", "1961년 3월 2일생", in
   either language): with only a date of birth, Date stays empty.
3. The note is read line by line. A line starting with a short label and a colon ("Exam:", "Plan:",
   "평가:", "X-선:") opens a context: history (the default), examination, results (a label naming a
   test, or "Labs:"/"검사:"), assessment, plan, treatment, procedure, or metadata (the date line,
   skipped). A list-like context carries on to the next line only when the line did not end a
   sentence ("...next week;" continues the plan); anything else starts over as history.
4. Lines are split into sentences, and sentences into clauses: at ';' always, where a Korean sentence
   turns ("복통이 있으나 | 혈변은 없음"), and at ',' in examination, assessment, plan and treatment
   lines, where a one-word piece -- or, in an assessment, a piece naming no diagnosis; in a plan, a
   short piece naming nothing a plan is made of -- stays with its neighbour ("Denies syncope,
   palpitations, orthopnea", "stable angina, likely", "return if redness, swelling, fever").
5. Each clause is routed by its context and by lexicon matches (symptoms and signs, negation,
   diagnoses, allergies, tests, medications by name, by drug-name suffix (-pril, -statin, -formin,
   -cillin, ..., -포르민, -디핀) or by dose, other treatments, procedures, plan cues, results):
   - history: a plan cue makes it a plan (and, if it names them, a test, medication or procedure);
     a negated clause ("No rash", "외상 병력 없음") is a pertinent negative, kept as an observation;
     an allergy is a condition; otherwise it goes to every field whose lexicon it matches (only
     medications count as treatments here: "resolves with rest" is not a treatment);
   - examination: an observation, and a symptom/sign or test when it names one (signs not negated);
   - results: an observation; the label ("ECG today", "X-선") or the clause naming a test is the test;
   - assessment: a diagnosis; plan: a future plan, and a treatment/test/procedure by lexicon;
     treatment: a treatment (and a plan with a plan cue); procedure: a procedure.
   So every list value is a clause or sentence of the note, verbatim (trailing full stop removed).
6. Anatomy: body-part terms (with laterality: "right ear", "오른쪽 무릎") found in the symptoms and
   diagnoses, else in the observations; a bare term already present with a side is dropped.
7. Summary: one or two sentences assembled only from controlled vocabulary -- the age, lexicon
   terms for the complaint (anatomy + symptom, "chest pain", "무릎 통증"), diagnoses (not allergies)
   and planned medications/tests/procedures and follow-up -- never from free text, so names and
   addresses in the note cannot reach it. It is then checked like a model's (`find_identifiers`); a
   sentence that fails is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum

from medscribe.domain.emr import (
    ANATOMY,
    DIAGNOSES,
    LIST_FIELDS,
    OBSERVATIONS,
    PLANS,
    PROCEDURES,
    SYMPTOMS,
    TESTS,
    TREATMENTS,
    EmrRecord,
    detect_language,
    find_identifiers,
)

ENGINE = "offline"  # the engine name every offline output carries (as the offline note engine)


class Context(Enum):
    HISTORY = "history"
    EXAM = "exam"
    RESULTS = "results"
    ASSESSMENT = "assessment"
    PLAN = "plan"
    TREATMENT = "treatment"
    PROCEDURE = "procedure"
    META = "meta"


def _terms(*alternatives: str) -> str:
    """An alternation, longest first so the longest term wins."""
    return "|".join(sorted(alternatives, key=len, reverse=True))


def _en(*alternatives: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{_terms(*alternatives)})\b", re.IGNORECASE)


_KO_PARTICLE = r"(?:이|가|은|는|을|를|에|의|와|과|도|로|으로|에서|부터|까지|쪽|부위|부)?(?![가-힣])"


def _ko(*alternatives: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{_terms(*alternatives)})", re.IGNORECASE)


@dataclass(frozen=True)
class Lexicon:
    symptom: re.Pattern[str]
    negated: re.Pattern[str]
    diagnosis: re.Pattern[str]
    test: re.Pattern[str]
    medication: re.Pattern[str]
    treatment: re.Pattern[str]
    procedure: re.Pattern[str]
    allergy: re.Pattern[str]
    plan: re.Pattern[str]  # cues that make a history clause a plan
    result: re.Pattern[str]  # results and measurements
    anatomy: re.Pattern[str]  # group "side" (optional laterality) and group "part"
    complaint: re.Pattern[str]  # optional anatomy term + symptom term, for the summary
    headings: tuple[tuple[re.Pattern[str], Context], ...]
    clause_break: re.Pattern[str] | None  # where a sentence turns ("복통이 있으나 | 혈변은 없음")
    age: tuple[re.Pattern[str], ...]  # group "years" or group "months"
    date_label: re.Pattern[str]


_DATE = r"(?P<y>(?:19|20)\d{2})\s*(?:[-./]|년)\s*(?P<m>\d{1,2})\s*(?:[-./]|월)\s*(?P<d>\d{1,2})(?!\d)"

_EN_ANATOMY = (
    "head", "face", "eyes?", "ears?", "nose", "throat", "neck", "chest", "breasts?", "heart", "lungs?", "abdomen",
    "stomach", "belly", "lower back", "back", "spine", "shoulders?", "arms?", "elbows?", "wrists?", "hands?",
    "fingers?", "hips?", "legs?", "thighs?", "knees?", "ankles?", "foot", "feet", "toes?", "skin", "pelvis", "groin",
    "bladder", "kidneys?", "liver", "tympanic membrane", "jaw", "mouth", "tongue", "calf", "heels?", "soles?",
    "forearm", "forehead", "scalp", "palms?",
)
_EN_SYMPTOMS = (
    "pain", "painful", "aches?", "aching", "sore", "soreness", "fevers?", "febrile", "cough(?:ing)?",
    "shortness of breath", "short of breath", "dyspno?ea", "breathless(?:ness)?", "wheez\\w*", "nausea",
    "vomiting", "vomit", "diarrho?ea", "constipation", "fatigue", "tired(?:ness)?", "letharg\\w*", "weakness",
    "dizz\\w*", "lightheaded(?:ness)?", "headaches?", "rash(?:es)?", "itch\\w*", "swelling", "swollen",
    "numbness", "tingling", "palpitations?", "syncope", "chills", "sweats", "sweating", "bleeding",
    "ear pulling", "poor sleep", "insomnia", "loss of appetite", "poor appetite", "eating less", "weight loss",
    "cramp\\w*", "stiffness", "locking", "catching", "giving way", "limp(?:ing)?", "bruis\\w*", "tender(?:ness)?",
    "erythema(?:tous)?", "bulging", "red(?:ness)?", "o?edema", "effusion", "crackles", "murmurs?", "jaundice",
    "confusion", "sore throat", "runny nose", "congestion", "heartburn", "burning", "twist(?:ed|ing)?",
    "injur(?:y|ed)",
)
_EN_DIAGNOSES = (
    "angina", "hypertension", "diabetes", "otitis media", "otitis", "gastroenteritis", "asthma", "COPD",
    "pneumonia", "bronchitis", "infection", "fractures?", "sprain", "strain", "tear", "meniscal tear",
    "osteoarthritis", "arthritis", "migraines?", "neuropathy", "hyperlipid(?:a)?emia", "dyslipid(?:a)?emia",
    "cancer", "carcinoma", "depression", "anxiety", "heart failure", "atrial fibrillation",
    "myocardial infarction", "stroke", "UTI", "urinary tract infection", "cellulitis", "laceration",
    "dermatitis", "eczema", "reflux", "GERD", "obesity", "hypothyroidism", "hyperthyroidism", "an(?:a)?emia",
    "kidney disease", "CKD", "pharyngitis", "tonsillitis", "sinusitis", "COVID(?:-19)?", "influenza",
    "allerg\\w*", "appendicitis", "gout", "concussion", "dehydration", "exacerbation",
)
_EN_TESTS = (
    "ECG", "EKG", "electrocardiogram", "troponin", "x-?rays?", "radiographs?", "MRI", "CT(?: scan)?",
    "ultrasound", "echo(?:cardiogram)?", "(?:treadmill )?stress test", "blood tests?", "bloods", "CBC", "FBC",
    "HbA1c", "A1c", "urinalysis", "urine (?:test|dip)", "cultures?", "swabs?", "lipid panel", "lipids",
    "glucose", "creatinine", "eGFR", "TSH", "spirometry", "peak flow", "nerve conduction(?: study)?", "PCR",
    "strep test", "otoscopy", "Holter", "pulse oximetry", "pregnancy test", "D-dimer", "CRP", "ESR", "imaging",
    "scan", "labs", "tests?", "McMurray(?:'s)?", "Lachman(?:'s)?", "Ottawa(?: ankle)? rules",
)
_EN_MEDICATION_NAMES = (
    "aspirin", "paracetamol", "acetaminophen", "ibuprofen", "naproxen", "insulin", "nitroglycerin", "GTN",
    "salbutamol", "albuterol", "inhalers?", "antibiotics?", "warfarin", "prednisone", "prednisolone",
    "amoxicillin", "metformin", "lisinopril", "diarolyte", "loperamide", "ondansetron", "antihistamines?",
    "steroids?", "injection", "tablets?", "capsules?", "medications?",
)
_EN_DRUG_SUFFIX = (
    "[a-z]{2,}(?:pril|sartan|statin|formin|cillin|olol|dipine|prazole|mycin|cycline|floxacin|gliflozin|gliptin|"
    "glutide|profen|semide|thiazide|parin|xaban|gatran|triptan|tidine|lukast|solone|azepam|zolam|oxetine|"
    "codone|amol|coxib|caine|setron)"
)
_EN_DOSE = r"\d+(?:\.\d+)?\s?(?:mg|mcg|µg|g|units?|IU|mL|ml|puffs?)(?!\s?/\s?(?:d[lL]|L)\b)"
_EN_TREATMENTS = (
    "(?<!at )(?<!with )rest", "fluids", "ice", "physiotherapy", "physical therapy", "conservative management", "diet",
    "exercise program", "compression", "elevation", "brace", "crutches", "oxygen", "nebuli[sz]ers?",
    "counsel(?:l)?ing", "lifestyle", "activity modification",
)
_EN_PROCEDURES = (
    "biopsy", "injection", "sutures?", "sutured", "stitches", "incision", "drainage", "catheteri[sz]ation",
    "angiography", "angiogram", "angioplasty", "stent", "surgery", "arthroscopy", "endoscopy", "colonoscopy",
    "excision", "aspiration", "vaccination", "immuni[sz]ation", "cast", "reduction", "intubation", "PCI",
    "ablation", "debridement", "irrigated", "irrigation", "repaired", "repair", "tympanostomy", "splint(?:ed)?",
    "nebuli[sz]er treatment",
)
_EN_PLAN_CUES = (
    "follow[- ]up (?:in|within|with|after|if|appointment|visit)", "follow up", "return(?: earlier)? (?:in|to|if)",
    "come back", "re-?check", "review (?:in|after)", "refer(?:ral|red)?", "schedul\\w*",
    "next (?:week|month|visit)",
    "in (?:\\d+|one|two|three|four|five|six|seven|ten|a few)(?: to \\d+)? (?:days?|weeks?|months?)",
    "appointment", "will", "plan(?:ned)? to", "go to the emergency(?: department)?", "safety[- ]net\\w*",
)
_EN_RESULTS = (
    r"\b(?:BP|HR|RR|SpO2|O2 sat\w*|temp(?:erature)?|pulse|weight|BMI)\b\s*:?\s*\d",
    r"\d+(?:\.\d+)?\s?(?:mmHg|°C|C|%|mg/dL|mmol/L|bpm|kg)\b", r"\b\d{2,3}/\d{2,3}\b",
    r"\b(?:negative|positive|normal|abnormal|elevated|unremarkable|clear)\b",
)
_EN_HEADINGS: tuple[tuple[str, Context], ...] = (
    (r"(?:physical )?exam(?:ination)?|on examination|o/e|vitals?|vital signs", Context.EXAM),
    (r"assessment(?: and plan)?|impression|imp|diagnos[ie]s|dx|a/p", Context.ASSESSMENT),
    (r"plan|recommendations?|disposition|follow[- ]?up", Context.PLAN),
    (r"treatment|medications?|meds|rx|prescriptions?|dh|current medications", Context.TREATMENT),
    (r"labs?|results?|investigations?|imaging", Context.RESULTS),
    (r"procedures?|operations?|interventions?", Context.PROCEDURE),
    (r"date(?: of visit)?|visit(?: date)?|seen on", Context.META),
)

_KO_ANATOMY = (
    "머리", "얼굴", "눈", "귀", "코", "목", "인후", "가슴", "흉부", "유방", "심장", "폐", "복부", "허리", "척추",
    "어깨", "팔", "팔꿈치", "손목", "손", "손가락", "엉덩이", "고관절", "다리", "허벅지", "무릎", "발목", "발바닥",
    "발가락", "발", "피부", "골반", "사타구니", "방광", "신장", "턱", "입", "혀", "종아리", "뒤꿈치", "고막",
)
_KO_SYMPTOMS = (
    "통증", "아픔", "아프", "저림", "저리", "발열", "열감", "기침", "가래", "호흡곤란", "숨참", "숨이 차", "숨가쁨",
    "구역", "오심", "구토", "설사", "변비", "피로", "무기력", "어지럼", "현기증", "두통", "발진", "가려움", "부종",
    "붓고", "붓기", "부어", "감각 저하", "압통", "삼출", "걸리는 느낌", "잠김", "뻣뻣", "출혈", "콧물", "인후통",
    "속쓰림", "식욕 저하", "체중 감소", "근력 저하", "시력 저하", "가슴 답답", "흉통", "복통", "요통", "관절통", "오한",
    "식은땀", "경련", "보챔", "처짐", "열이", "충혈", "발적",
)
_KO_DIAGNOSES = (
    "당뇨병", "당뇨", "고혈압", "반월상 연골 파열", "연골 파열", "파열", "신경병증", "골절", "관절염", "폐렴", "중이염",
    "위장염", "장염", "천식", "협심증", "고지혈증", "이상지질혈증", "감염", "염좌", "심부전", "부정맥", "뇌졸중",
    "편두통", "위염", "역류성 식도염", "갑상선", "빈혈", "신부전", "요로감염", "결막염", "비염", "인두염", "편도염",
    "독감", "코로나", "진단", "질환", "증후군", "회전근개", "오십견", "유착성 관절낭염", "탈수", "위암", "폐암",
    "간암", "대장암", "유방암", "석회성 건염", "건염", "충돌 증후군", "의심",
)
_KO_TESTS = (
    "[가-힣A-Za-z]{0,8}\\s?검사", "X-?선", "엑스레이", "MRI", "CT", "초음파", "심전도", "혈액 ?검사", "당화혈색소",
    "혈당", "요검사", "배양", "신경전도", "트로포닌", "촬영", "측정",
)
_KO_MEDICATION_NAMES = (
    "아스피린", "인슐린", "타이레놀", "아세트아미노펜", "이부프로펜", "나프록센", "메트포르민", "암로디핀",
    "다파글리플로진", "아목시실린", "항생제", "진통제", "소염제", "해열제", "스테로이드", "흡입기", "와파린",
    "니트로글리세린", "살부타몰", "프레드니솔론", "항히스타민제", "지사제", "정장제", "수액", "복용", "처방", "투약",
    "투여", "주사",
)
_KO_DRUG_SUFFIX = (
    "[가-힣]{1,8}(?:프릴|사르탄|스타틴|포르민|실린|올롤|디핀|프라졸|마이신|사이클린|플록사신|글리플로진|글립틴|"
    "프로펜|세미드|티아지드|파린|자반|트립탄|티딘|루카스트|솔론|콕시브|카인|세트론)(?![가-힣])"
)
_KO_DOSE = r"\d+(?:\.\d+)?\s?(?:mg|mcg|g|mL|ml|단위|밀리그램)(?!\s?/\s?(?:d[lL]|L)\b)"
_KO_TREATMENTS = (
    "냉찜질", "온찜질", "물리치료", "휴식", "활동 조절", "수액", "식이 ?요법", "운동 ?요법", "보조기", "목발", "산소",
    "금연", "생활 습관", "수분 섭취", "스트레칭",
)
_KO_PROCEDURES = (
    "수술", "시술", "내시경", "생검", "봉합", "절개", "배액", "관절경", "천자", "스텐트", "카테터", "깁스", "부목",
    "절제", "예방접종", "세척", "드레싱", "주사", "도뇨", "관절강 내 주사",
)
_KO_PLAN_CUES = (
    "재진", "재방문", "재검", "예약", "의뢰", "예정", "추적 검사", "후 (?:재|내원|방문|평가|검사)",
    "다음 (?:방문|진료|주|달)", "필요시 내원", "악화 시", "지속 시", "경우 (?:재|응급|내원)",
)
_KO_RESULTS = (
    r"(?:혈압|맥박|체온|호흡수|산소포화도|체중)\s*:?\s*\d", r"\d+(?:\.\d+)?\s?(?:mmHg|°C|%|mg/dL|mmol/L|회/분)",
    r"\b\d{2,3}/\d{2,3}\b", r"양성|음성|정상|이상 소견|상승|저하|높음|낮음|없음",
)
_KO_HEADINGS: tuple[tuple[str, Context], ...] = (
    (r"진찰|신체 ?검진|이학적 ?검사|활력 ?징후|소견", Context.EXAM),
    (r"평가|진단|임상 ?인상|인상|A/P", Context.ASSESSMENT),
    (r"(?:치료 |향후 )?계획|권고", Context.PLAN),
    (r"처방|치료|처치|투약|약물|복용약", Context.TREATMENT),
    (r"검사(?: 결과)?|결과|영상", Context.RESULTS),
    (r"시술|수술", Context.PROCEDURE),
    (r"진료일|방문일|내원일|날짜|일자", Context.META),
)


def _headings(table: Iterable[tuple[str, Context]]) -> tuple[tuple[re.Pattern[str], Context], ...]:
    return tuple((re.compile(rf"(?:{pattern})", re.IGNORECASE), context) for pattern, context in table)


ENGLISH = Lexicon(
    symptom=_en(*_EN_SYMPTOMS),
    negated=re.compile(r"^\s*(?:no|not|denies|denied|without|negative for|nil|absent)\b", re.IGNORECASE),
    diagnosis=_en(*_EN_DIAGNOSES),
    test=_en(*_EN_TESTS),
    medication=re.compile(rf"\b(?:{_terms(*_EN_MEDICATION_NAMES, _EN_DRUG_SUFFIX)})\b|{_EN_DOSE}", re.IGNORECASE),
    treatment=_en(*_EN_TREATMENTS),
    procedure=_en(*_EN_PROCEDURES),
    allergy=re.compile(r"\ballerg\w*|\bNKDA\b", re.IGNORECASE),
    plan=_en(*_EN_PLAN_CUES),
    result=re.compile("|".join(_EN_RESULTS), re.IGNORECASE),
    anatomy=re.compile(
        rf"\b(?:(?P<side>left|right|bilateral|both)\s+)?(?P<part>{_terms(*_EN_ANATOMY)})\b", re.IGNORECASE),
    complaint=re.compile(
        rf"\b(?:(?P<part>{_terms(*_EN_ANATOMY)})\s+)?(?P<term>{_terms(*_EN_SYMPTOMS)})\b", re.IGNORECASE),
    headings=_headings(_EN_HEADINGS),
    clause_break=None,
    age=(
        re.compile(r"\b(?P<years>\d{1,3})\s*-?\s*(?:years?|yrs?)\s*-?\s*old\b", re.IGNORECASE),
        re.compile(r"\b(?P<years>\d{1,3})\s*(?:y/o|yo|y\.o\.)(?!\w)", re.IGNORECASE),
        re.compile(r"\baged?\s+(?P<years>\d{1,3})\b", re.IGNORECASE),
        re.compile(r"\b(?P<months>\d{1,2})\s*-?\s*months?\s*-?\s*old\b", re.IGNORECASE),
    ),
    date_label=re.compile(rf"\b(?:date of visit|visit date|date|visit|seen on)\s*:?\s*{_DATE}", re.IGNORECASE),
)

KOREAN = Lexicon(
    symptom=_ko(*_KO_SYMPTOMS),
    negated=re.compile(r"(?:없음|없다|없고|없었음|없으며|없었다|아님|부인함?|음성)\s*[.。]?\s*$"),
    diagnosis=_ko(*_KO_DIAGNOSES),
    test=_ko(*_KO_TESTS),
    medication=re.compile(f"{_terms(*_KO_MEDICATION_NAMES, _KO_DRUG_SUFFIX)}|{_KO_DOSE}", re.IGNORECASE),
    treatment=_ko(*_KO_TREATMENTS),
    procedure=_ko(*_KO_PROCEDURES),
    allergy=re.compile(r"알레르기|알러지|과민 ?반응"),
    plan=_ko(*_KO_PLAN_CUES),
    result=re.compile("|".join(_KO_RESULTS)),
    anatomy=re.compile(
        rf"(?<![가-힣])(?:(?P<side>오른쪽|왼쪽|양쪽|양측|우측|좌측)\s?)?(?P<part>{_terms(*_KO_ANATOMY)}){_KO_PARTICLE}"),
    complaint=re.compile(
        rf"(?:(?<![가-힣])(?P<part>{_terms(*_KO_ANATOMY)})(?:이|가|의)?\s?)?(?P<term>{_terms(*_KO_SYMPTOMS)})"),
    headings=_headings(_KO_HEADINGS),
    clause_break=re.compile(r"(?<=으나|지만|는데)\s+"),
    age=(
        re.compile(r"(?<!\d)(?P<years>\d{1,3})\s*세(?:의|로|이며|이고|인|이다)?(?![가-힣])"),
        re.compile(r"(?<!\d)(?P<months>\d{1,2})\s*개월\s*(?:된\s*)?(?:남아|여아|영아|환아|아기|소아)"),
    ),
    date_label=re.compile(rf"(?:진료일|방문일|내원일|날짜|일자)\s*:?\s*{_DATE}"),
)

_LIST_CONTEXTS = frozenset({Context.EXAM, Context.ASSESSMENT, Context.PLAN, Context.TREATMENT, Context.PROCEDURE})
_COMMA_CONTEXTS = frozenset({Context.EXAM, Context.ASSESSMENT, Context.PLAN, Context.TREATMENT})
# a short label and an ASCII or full-width colon
_HEADING = re.compile(r"^\s*(?P<label>[^:\uff1a\d][^:\uff1a]{0,28}?)\s*[:\uff1a]\s*(?P<body>.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|vs|e\.g|i\.e|approx|No|Fig)\.$", re.IGNORECASE)
_ANY_DATE = re.compile(_DATE)
_UNNAMED_DATE = re.sub(r"\?P<\w+>", "?:", _DATE)
# a date of birth, labelled in either language (Korean notes write "DOB" too) or "1961년 3월 2일생"
_BIRTH_DATE = re.compile(
    r"(?:\bDOB\b|\bD\.O\.B\b\.?|\bdate of birth\b|\bbirth ?date\b|\bborn\b(?:\s+on\b)?|"
    r"생년월일|출생\s?일자|출생일|출생|생일)[\s:\uff1a(=,-]*(?:(?:is|was|은|는|이)\s+)?"
    rf"(?P<date>{_UNNAMED_DATE})|(?P<suffixed>{_UNNAMED_DATE})\.?\s*일?생(?![가-힣])",
    re.IGNORECASE)


def _language_lexicon(language: str) -> Lexicon:
    return KOREAN if language.lower().startswith("ko") else ENGLISH


# --------------------------------------------------------------------------------------- age, date


def extract_age(text: str, lexicon: Lexicon) -> str:
    for pattern in lexicon.age:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            years = int(groups["years"]) if groups.get("years") else int(groups["months"]) // 12
            if 0 <= years <= 130:
                return str(years)
    return ""


def _calendar_date(match: re.Match[str]) -> str | None:
    try:
        return date(int(match["y"]), int(match["m"]), int(match["d"])).isoformat()
    except ValueError:
        return None


def extract_date(text: str, lexicon: Lexicon) -> str:
    """The visit date: labelled first, else the first date that is not a date of birth."""
    births = {match.start("date") if match["date"] else match.start("suffixed") for match in _BIRTH_DATE.finditer(text)}
    for pattern in (lexicon.date_label, _ANY_DATE):
        for match in pattern.finditer(text):
            found = _calendar_date(match)
            if found and match.start("y") not in births:
                return found
    return ""


# ------------------------------------------------------------------------------ lines -> clauses


@dataclass(frozen=True)
class Clause:
    context: Context
    text: str
    label: str | None  # the heading label of the line, for result clauses


def _heading_context(label: str, lexicon: Lexicon) -> tuple[Context, bool] | None:
    """The context a line label opens, and whether the label names a test ("ECG today", "X-선");
    None when the label is not a heading."""
    if len(label.split()) > 4:
        return None
    for pattern, context in lexicon.headings:
        if pattern.fullmatch(label.strip()):
            return context, False
    if lexicon.test.search(label):
        return Context.RESULTS, True
    return None


def _sentences(text: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start:match.start()]
        if _ABBREVIATION.search(candidate):
            continue  # "Dr. Lee" is not a sentence end
        sentences.append(candidate)
        start = match.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]


def _names_nothing(piece: str, context: Context, lexicon: Lexicon) -> bool:
    """In an assessment, a piece naming no diagnosis ("stable angina, likely"); in a plan or treatment,
    a short piece naming nothing a plan is made of ("return if redness, swelling, fever or discharge")."""
    if context is Context.ASSESSMENT:
        return not lexicon.diagnosis.search(piece)
    if context in (Context.PLAN, Context.TREATMENT) and len(piece.split()) <= 3:
        patterns = (lexicon.plan, lexicon.medication, lexicon.treatment, lexicon.test, lexicon.procedure)
        return not any(p.search(piece) for p in patterns)
    return False


def _pieces(sentence: str, context: Context, lexicon: Lexicon) -> list[str]:
    """Clauses of a sentence: split at ';' (and where a Korean sentence turns), and at ',' in list-like
    contexts, where a one-word piece, or one naming nothing of the context, stays with its neighbour."""
    parts = [p.strip() for p in sentence.split(";")]
    if lexicon.clause_break:
        parts = [piece for part in parts for piece in lexicon.clause_break.split(part)]
    if context not in _COMMA_CONTEXTS:
        return [p for p in parts if p]
    pieces: list[str] = []
    for part in parts:
        merged: list[str] = []
        for piece in re.split(r",(?!\d)\s*", part):
            joins = len(piece.split()) < 2 or _names_nothing(piece, context, lexicon)
            if merged and (joins or len(merged[-1].split()) < 2):
                merged[-1] = f"{merged[-1]}, {piece}"
            else:
                merged.append(piece)
        pieces.extend(m.strip() for m in merged if m.strip())
    return pieces


def clauses(text: str, lexicon: Lexicon) -> list[Clause]:
    """The note's clauses with the context each was written in (steps 3 and 4 of the method)."""
    found: list[Clause] = []
    context = Context.HISTORY
    carry = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = " ".join(raw.split())
        if not line:
            context, carry = Context.HISTORY, False
            continue
        label: str | None = None
        body = line
        heading = _HEADING.match(line)
        opened = _heading_context(heading["label"], lexicon) if heading else None
        if heading and opened is not None:
            context, body = opened[0], heading["body"]
            label = heading["label"].strip() if opened[1] else None
        elif not carry:
            context = Context.HISTORY
        carry = context in _LIST_CONTEXTS and not re.search(r"[.!?。]$", line)
        if context is Context.META:
            continue
        for index, sentence in enumerate(_sentences(body)):
            if context is Context.RESULTS:  # the label names the test its first sentence reports
                text = sentence.rstrip(". ")
                found.append(Clause(context, f"{label}: {text}" if label and not index else text,
                                    label if not index else None))
                continue
            found.extend(Clause(context, piece.rstrip(". "), label) for piece in _pieces(sentence, context, lexicon))
    return [clause for clause in found if clause.text]


# ------------------------------------------------------------------------------------- routing


def _route(clause: Clause, lexicon: Lexicon) -> list[str]:
    """The fields a clause belongs to (step 5 of the method)."""
    text = clause.text
    negated = bool(lexicon.negated.search(text))
    fields: list[str] = []

    def by_lexicon(*names: str) -> None:
        # in a history, "rest" or "ice" are circumstances, not treatments: only medications count there
        other_treatments = clause.context is not Context.HISTORY
        checks = {
            SYMPTOMS: lambda: not negated and bool(lexicon.symptom.search(text)),
            DIAGNOSES: lambda: not negated and bool(lexicon.diagnosis.search(text)),
            TESTS: lambda: bool(lexicon.test.search(text)),
            TREATMENTS: lambda: bool(lexicon.medication.search(text)
                                     or (other_treatments and lexicon.treatment.search(text))),
            PROCEDURES: lambda: bool(lexicon.procedure.search(text)),
        }
        fields.extend(name for name in names if checks[name]())

    if clause.context is Context.EXAM:
        fields.append(OBSERVATIONS)
        by_lexicon(SYMPTOMS, TESTS)
    elif clause.context is Context.RESULTS:
        fields.append(OBSERVATIONS)
        if clause.label or lexicon.test.search(text):
            fields.append(TESTS)
    elif clause.context is Context.ASSESSMENT:
        fields.append(PLANS if lexicon.plan.search(text) and not lexicon.diagnosis.search(text) else DIAGNOSES)
    elif clause.context is Context.PLAN:
        fields.append(PLANS)
        by_lexicon(TESTS, TREATMENTS, PROCEDURES)
    elif clause.context is Context.TREATMENT:
        fields.append(TREATMENTS)
        if lexicon.plan.search(text):
            fields.append(PLANS)
        by_lexicon(PROCEDURES)
    elif clause.context is Context.PROCEDURE:
        fields.append(PROCEDURES)
        by_lexicon(TREATMENTS)
    elif lexicon.plan.search(text):
        fields.append(PLANS)
        by_lexicon(TESTS, TREATMENTS, PROCEDURES)
    elif negated:
        fields.append(OBSERVATIONS)  # a pertinent negative
    elif lexicon.allergy.search(text):
        fields.append(DIAGNOSES)  # "Allergic to penicillin" names a drug but is a condition
    else:
        by_lexicon(SYMPTOMS, DIAGNOSES, TESTS, TREATMENTS, PROCEDURES)
        if lexicon.test.search(text) and lexicon.result.search(text):
            fields.append(OBSERVATIONS)
    return fields


def _anatomy(items: Sequence[str], lexicon: Lexicon) -> list[str]:
    pairs = [(match["side"], match["part"]) for item in items for match in lexicon.anatomy.finditer(item)]
    lateralised = {part.lower() for side, part in pairs if side}
    return _unique((f"{side} {part}" if side else part).lower() for side, part in pairs
                   if side or part.lower() not in lateralised)


def _unique(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        key = " ".join(value.lower().split())
        if key and key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


# ------------------------------------------------------------------------------------- summary


# Summary vocabulary: inflected symptom forms -> the noun; words that are cues, not findings.
_CANONICAL = {
    "아프": "통증", "아픔": "통증", "저리": "저림", "붓고": "부종", "붓기": "부종", "부어": "부종",
    "숨이 차": "호흡곤란", "숨참": "호흡곤란", "열이": "발열",
    "swollen": "swelling", "short of breath": "shortness of breath", "twisted": "twisting injury",
    "twist": "twisting injury", "twisting": "twisting injury", "injured": "injury", "painful": "pain",
    "dizzy": "dizziness", "vomit": "vomiting", "fevers": "fever", "headaches": "headache", "migraines": "migraine",
    "breathless": "breathlessness", "tender": "tenderness", "red": "redness", "itchy": "itching", "sore": "soreness",
}
_NOT_SUMMARY_TERMS = frozenset({
    "의심", "진단", "질환", "촬영", "측정", "검사", "복용", "처방", "투약", "투여", "test", "tests", "scan", "labs",
    "imaging", "tablet", "tablets", "capsule", "capsules", "medication", "medications", "injection", "주사",
})


def _summary_terms(matches: Iterable[str], limit: int) -> list[str]:
    terms = (" ".join(m.split()) for m in matches)
    return _unique(_CANONICAL.get(t.lower(), t) for t in terms
                   if t.lower() not in _NOT_SUMMARY_TERMS and not t[:1].isdigit())[:limit]


def _complaints(items: Sequence[str], lexicon: Lexicon, limit: int) -> list[str]:
    found: list[str] = []
    for item in items:
        if lexicon.negated.search(item):
            continue
        for match in lexicon.complaint.finditer(item):
            term = _CANONICAL.get(match["term"].lower(), match["term"])
            found.append(" ".join(filter(None, (match["part"], term))).lower())
    # "pain" adds nothing after "chest pain"
    kept = [c for i, c in enumerate(found) if not any(o.endswith(f" {c}") for o in found[:i] + found[i + 1:])]
    return _summary_terms(kept, limit)


def _plan_terms(plans: Sequence[str], lexicon: Lexicon, language: str) -> list[str]:
    patterns = (lexicon.medication, lexicon.test, lexicon.procedure)
    terms = _summary_terms((m.group(0) for item in plans for p in patterns for m in p.finditer(item)), 4)
    if any(lexicon.plan.search(item) for item in plans):
        terms.append("추적 관찰" if language == "ko" else "follow-up")
    return terms


def build_summary(age: str, fields: dict[str, list[str]], lexicon: Lexicon, language: str) -> str:
    """Step 7: a de-identified summary from controlled vocabulary only, validated part by part."""
    complaints = _complaints(fields[SYMPTOMS], lexicon, 3)
    diagnoses = _summary_terms((m.group(0) for item in fields[DIAGNOSES] if not lexicon.allergy.search(item)
                                for m in lexicon.diagnosis.finditer(item)), 3)
    plans = _plan_terms(fields[PLANS], lexicon, language)
    if language == "ko":
        who = f"{age}세 환자" if age else "환자"
        parts = [f"{who}로 {', '.join(complaints)} 증상으로 내원함." if complaints else f"{who} 진료 기록."]
        assessment = [f"평가: {', '.join(diagnoses)}" if diagnoses else "",
                      f"계획: {', '.join(plans)}" if plans else ""]
        closing = "; ".join(p for p in assessment if p)
        parts.append(f"{closing}." if closing else "")
        fallback = "규칙 기반으로 구조화한 진료 기록."
    else:
        who = f"{age}-year-old patient" if age else "Patient"
        parts = [f"{who} seen for {', '.join(complaints)}." if complaints
                 else f"{who} seen; no complaint recognised by the offline rules."]
        assessment = [f"Assessment: {', '.join(diagnoses)}" if diagnoses else "",
                      f"plan: {', '.join(plans)}" if plans else ""]
        closing = "; ".join(p for p in assessment if p)
        parts.append(f"{closing[0].upper()}{closing[1:]}." if closing else "")
        fallback = "Clinical note structured by rules."
    kept = [p for p in parts if p and not find_identifiers(p)]
    return " ".join(kept) if kept else fallback


# ------------------------------------------------------------------------------------- the record


def extract_record(text: str, language: str | None = None) -> EmrRecord:
    """The EMR record of a note (see the module docstring for the method)."""
    lang = "ko" if (language or detect_language(text)).lower().startswith("ko") else "en"
    lexicon = _language_lexicon(lang)
    fields: dict[str, list[str]] = {name: [] for name in LIST_FIELDS}
    for clause in clauses(text, lexicon):
        for name in _route(clause, lexicon):
            labelled_test = name == TESTS and clause.context is Context.RESULTS and clause.label
            fields[name].append(clause.label if labelled_test and clause.label else clause.text)
    fields = {name: _unique(values) for name, values in fields.items()}
    fields[ANATOMY] = _anatomy(fields[SYMPTOMS] + fields[DIAGNOSES], lexicon) or _anatomy(fields[OBSERVATIONS], lexicon)
    age = extract_age(text, lexicon)
    record = {**fields, "Age": age, "Date": extract_date(text, lexicon),
              "Summary": build_summary(age, fields, lexicon, lang)}
    return EmrRecord.model_validate(record)
