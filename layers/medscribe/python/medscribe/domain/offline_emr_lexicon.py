"""The offline EMR extractor's lexicons (`domain.offline_emr`), one per language. Pure.

Each `Lexicon` holds the compiled patterns the extractor routes clauses by: symptoms and signs,
negation, diagnoses, tests, medications (by name, drug-name suffix or dose), other treatments,
procedures, allergies, plan cues, results, anatomy with laterality, the summary's complaint terms,
section headings and the age and visit-date forms. Kept apart from the extraction rules so that
adding a term never touches how a note is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


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


DATE = r"(?P<y>(?:19|20)\d{2})\s*(?:[-./]|년)\s*(?P<m>\d{1,2})\s*(?:[-./]|월)\s*(?P<d>\d{1,2})(?!\d)"

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
    date_label=re.compile(rf"\b(?:date of visit|visit date|date|visit|seen on)\s*:?\s*{DATE}", re.IGNORECASE),
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
    date_label=re.compile(rf"(?:진료일|방문일|내원일|날짜|일자)\s*:?\s*{DATE}"),
)
