"""Text normalisation for claim verification (`domain.evidence`): the same on the claim and line side.

Unicode NFKC and lower case; citations like [3] removed; abbreviations expanded ("SOB", "BID", "L");
numbers written as words turned into digits ("twenty-five" -> 25, "a week" -> 1 week; Korean native
counts "두 번" -> 2번, "하루" -> 1일); and lay and clinical words for one concept mapped to one word
("short of breath" = "breathless" = "dyspnea"). The lists are the project's own, written from common
clinical usage; brand and generic medication names come from `lexicon/medications.txt`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

_ABBREVIATIONS = {
    "sob": "short of breath", "doe": "short of breath on exertion", "bp": "blood pressure", "hr": "heart rate",
    "rr": "respiratory rate", "nkda": "no known drug allergies", "nka": "no known allergies",
    "bid": "twice a day", "b.i.d.": "twice a day", "tid": "three times a day", "t.i.d.": "three times a day",
    "qid": "four times a day", "q.i.d.": "four times a day", "qd": "once a day", "od": "once a day",
    "qhs": "at bedtime", "prn": "as needed", "p.r.n.": "as needed", "po": "by mouth", "hx": "history",
    "h/o": "history of", "c/o": "complains of", "pt": "patient", "pts": "patients", "yo": "year old",
    "y/o": "year old", "yrs": "years", "yr": "year", "wks": "weeks", "wk": "week", "hrs": "hours",
    "hr.": "hour", "mins": "minutes", "min": "minutes", "mos": "months", "lt": "left", "rt": "right",
    "l": "left", "r": "right", "bilat": "bilateral", "b/l": "bilateral", "htn": "hypertension",
    "dm": "diabetes", "t2dm": "type 2 diabetes", "t1dm": "type 1 diabetes", "cp": "chest pain",
    "abd": "abdominal", "n/v": "nausea and vomiting", "uti": "urinary tract infection",
    "uri": "upper respiratory infection", "mi": "heart attack", "cva": "stroke", "tia": "mini stroke",
    "gerd": "reflux", "afib": "atrial fibrillation", "etoh": "alcohol", "hl": "high cholesterol",
    "hld": "high cholesterol", "copd": "chronic obstructive pulmonary disease", "ed": "emergency department",
    "er": "emergency department", "f/u": "follow up", "fu": "follow up", "w/": "with", "w/o": "without",
    "approx": "about", "pmh": "past medical history", "fhx": "family history", "sx": "symptoms",
    "dx": "diagnosis", "tx": "treatment", "rx": "prescription", "meds": "medications", "med": "medication",
    "lbs": "pounds", "lb": "pounds", "kgs": "kg", "mgs": "mg", "milligrams": "mg", "milligram": "mg",
    "micrograms": "mcg", "microgram": "mcg", "grams": "g", "gram": "g", "milliliters": "ml", "millilitres": "ml",
    "centimeters": "cm", "centimetres": "cm", "centimeter": "cm", "millimeters": "mm", "millimetres": "mm",
    "kilometers": "km", "kilometres": "km", "metres": "meters", "metre": "meters", "meter": "meters",
    "cc": "ml", "kilograms": "kg", "kilos": "kg", "kilo": "kg", "percent": "%", "per cent": "%",
}
# lay and clinical words for one concept, both sides mapped to the first word (phrases before words)
_CONCEPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dyspnea", ("short of breath", "shortness of breath", "breathless", "breathlessness", "winded",
                 "difficulty breathing", "trouble breathing", "hard to breathe", "out of breath", "dyspnoea")),
    ("fever", ("pyrexia", "febrile", "temperature", "temperatures", "fevers", "feverish")),
    ("vomiting", ("emesis", "throwing up", "threw up", "vomit", "vomited", "vomits")),
    ("nausea", ("nauseous", "nauseated", "queasy", "sick to my stomach")),
    ("headache", ("cephalgia", "head ache", "headaches", "head pain", "head hurts")),
    ("myalgia", ("muscle aches", "muscle ache", "muscle pain", "muscles ache", "body aches")),
    ("arthralgia", ("joint pain", "joint pains", "joints hurt", "joints ache")),
    ("syncope", ("fainted", "fainting", "faint", "passed out", "pass out", "passing out", "blacked out",
                 "blackout", "lost consciousness", "loss of consciousness")),
    ("hematuria", ("blood in urine", "blood in my urine", "blood in the urine")),
    ("dysuria", ("burning when urinating", "burning when i pee", "pain when urinating", "painful urination",
                 "burns when i pee", "burning urination")),
    ("rhinorrhea", ("runny nose", "running nose", "nose running")),
    ("palpitations", ("heart racing", "racing heart", "heart pounding", "pounding heart", "heart fluttering",
                      "fluttering", "palpitation")),
    ("hypertension", ("high blood pressure", "elevated blood pressure", "hypertensive")),
    ("hyperlipidemia", ("high cholesterol", "cholesterol is high", "elevated cholesterol")),
    ("diabetes", ("diabetic", "high blood sugar", "sugar diabetes")),
    ("myocardial infarction", ("heart attack", "heart attacks")),
    ("edema", ("swelling", "swollen", "oedema", "puffy", "swell", "swells")),
    ("pruritus", ("itching", "itchy", "itch", "itches")),
    ("fatigue", ("tired", "tiredness", "exhausted", "exhaustion", "fatigued", "lethargic", "lethargy",
                 "no energy", "low energy", "worn out")),
    ("insomnia", ("trouble sleeping", "difficulty sleeping", "can't sleep", "cannot sleep", "not sleeping well")),
    ("diaphoresis", ("sweating", "sweaty", "sweats", "night sweats")),
    ("alcohol", ("beer", "beers", "wine", "liquor", "alcoholic", "booze")),
    ("smoking", ("smoke", "smokes", "smoked", "smoker", "cigarette", "cigarettes", "tobacco", "cigs",
                 "pack a day", "packs a day")),
    ("abdominal", ("stomach", "belly", "tummy", "abdomen")),
    ("diarrhea", ("loose stools", "loose stool", "watery stools", "diarrhoea", "the runs")),
    ("constipation", ("constipated", "hard stools", "can't go")),
    ("epistaxis", ("nosebleed", "nosebleeds", "nose bleed", "nose bleeds", "bloody nose")),
    ("cough", ("coughing", "coughs", "coughed")),
    ("dizziness", ("dizzy", "lightheaded", "light headed", "lightheadedness", "vertigo", "room spinning")),
    ("pain", ("hurts", "hurt", "hurting", "painful", "sore", "soreness", "ache", "aches", "aching", "pains")),
    ("weight loss", ("lost weight", "losing weight")),
    ("weight gain", ("gained weight", "putting on weight", "gaining weight")),
    ("appetite", ("hungry", "eating less", "not eating")),
    ("pregnant", ("pregnancy", "expecting")),
    ("medications", ("medication", "medicine", "medicines", "pills", "tablets", "drugs")),
    ("twice a day", ("two times a day", "2 times a day", "twice daily", "two times daily", "2 times daily",
                     "twice per day", "two times per day", "every 12 hours")),
    ("three times a day", ("3 times a day", "three times daily", "3 times daily", "every 8 hours")),
    ("four times a day", ("4 times a day", "four times daily", "every 6 hours")),
    ("three times a day", ("3 times per day", "three times per day")),
    ("four times a day", ("4 times per day", "four times per day")),
    ("once a day", ("once daily", "one time a day", "1 time a day", "daily", "every day", "each day",
                    "once per day", "one time per day", "once a day")),
    ("emergency department", ("emergency room", "emergency", "a&e", "casualty")),
    ("bilateral", ("both sides", "on each side", "each side", "on both sides")),
    ("physician", ("doctor", "gp", "provider", "clinician")),
    ("hemoptysis", ("coughing up blood", "coughed up blood", "cough up blood", "blood in sputum",
                    "blood in my sputum", "bloody sputum", "blood-streaked sputum", "haemoptysis")),
    ("hematochezia", ("blood in stool", "blood in my stool", "blood in the stool", "bloody stool", "bloody stools",
                      "blood in poo", "blood in my poo", "rectal bleeding", "haematochezia")),
    ("melena", ("black stools", "black stool", "tarry stools", "black poo", "melaena")),
    ("dysphagia", ("difficulty swallowing", "trouble swallowing", "hard to swallow", "food sticking",
                   "food gets stuck", "food getting stuck")),
    ("odynophagia", ("painful swallowing", "pain when swallowing", "hurts to swallow", "pain with swallowing")),
    ("orthopnea", ("short of breath lying flat", "breathless lying down", "orthopnoea")),
    ("cholecystectomy", ("gallbladder removed", "gallbladder out", "gallbladder taken out", "gallbladder surgery")),
    ("appendectomy", ("appendix removed", "appendix out", "appendix taken out", "appendicectomy")),
    ("hysterectomy", ("uterus removed", "womb removed")),
    ("analgesia", ("painkillers", "painkiller", "pain killers", "pain killer", "pain medication", "pain medicine",
                   "pain relief", "analgesics", "analgesic")),
    ("over the counter", ("otc",)),
    ("incontinence", ("leaking urine", "leaking", "wetting", "accidents", "can't hold", "incontinent")),
    ("tinnitus", ("ringing in my ear", "ringing in my ears", "ringing in the ear", "ringing in the ears",
                  "ringing", "buzzing in my ear")),
    ("photophobia", ("sensitive to light", "light sensitivity", "light hurts", "sensitivity to light")),
    ("chills", ("rigors", "shivering", "shivers", "chill")),
    ("jaundice", ("yellow skin", "yellowing", "yellow eyes", "jaundiced")),
    ("erythema", ("redness", "reddened", "red skin")),
    ("tenderness", ("tender", "sore to touch", "painful to touch", "hurts when i press", "hurts to touch")),
    ("nocturia", ("peeing at night", "urinating at night", "get up at night to pee", "wake up to pee")),
    ("polyuria", ("peeing a lot", "urinating a lot", "frequent urination", "urinating more")),
    ("polydipsia", ("very thirsty", "thirsty all the time", "excessive thirst", "drinking a lot of water")),
    ("paresthesia", ("pins and needles", "tingling", "tingly", "paraesthesia")),
    ("ecg", ("ekg", "electrocardiogram")),
    ("ct", ("cat scan", "ct scan", "computed tomography")),
    ("x-ray", ("xray", "x ray", "radiograph")),
    ("wheeze", ("wheezing", "wheezy", "wheezes")),
    ("sputum", ("phlegm", "mucus", "spit")),
    ("urination", ("urinating", "peeing", "pee", "urine", "wee")),
    ("stool", ("stools", "bowel movement", "bowel movements", "poo", "poop", "bowels")),
    ("former", ("ex", "used to")),
)
_KOREAN_CONCEPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("left", ("왼쪽", "좌측")), ("right", ("오른쪽", "우측")), ("bilateral", ("양쪽", "양측")),
    ("fever", ("발열", "열이", "열은", "열도", "열")), ("headache", ("두통", "머리가 아프", "머리 아프")),
    ("dyspnea", ("호흡곤란", "숨이 차", "숨차")), ("cough", ("기침",)), ("vomiting", ("구토",)),
    ("nausea", ("메스꺼움", "오심", "속이 메스껍")), ("dizziness", ("어지럼", "어지러")),
    ("hypertension", ("고혈압",)), ("diabetes", ("당뇨",)),
)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "a hundred": 100,
    "half": 0.5, "a half": 0.5, "a couple": 2, "couple": 2, "a dozen": 12, "dozen": 12,
}
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ONES = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TIME_UNITS = r"(?:second|minute|hour|day|week|month|year|night|morning)s?"


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(set(phrases), key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![\w])")


@cache
def _maps() -> tuple[re.Pattern[str], dict[str, str], re.Pattern[str], dict[str, str]]:
    english = {alias: concept for concept, aliases in _CONCEPTS for alias in (concept, *aliases)}
    english.update({alias: concept for concept, aliases in _KOREAN_CONCEPTS for alias in aliases
                    if " " in alias})
    korean = {alias: concept for concept, aliases in _KOREAN_CONCEPTS for alias in aliases if " " not in alias}
    return _phrase_pattern(english), english, re.compile("|".join(sorted(korean, key=len, reverse=True))), korean


@cache
def medications() -> dict[str, str]:
    """Medication names (brand and Korean names mapped to their generic) from `lexicon/medications.txt`."""
    names: dict[str, str] = {}
    text = resources.files("medscribe").joinpath("lexicon", "medications.txt").read_text(encoding="utf-8")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, generic = (part.strip() for part in line.partition("="))
            names[name] = generic or name
    return names


DRUG_SUFFIX = re.compile(
    r"[a-z]{3,}(?:pril|sartan|olol|statin|azole|cillin|mycin|cycline|floxacin|prazole|tidine|afil|gliptin|"
    r"gliflozin|glutide|mab|tinib|parin|codone|morphone|azepam|azolam|oxetine|triptan|dronate|lukast|"
    r"vudine|navir|conazole|dipine|semide|thiazide|terol|sonide|asone|olone|barbital)\b")
DOSE_UNITS = r"(?:mg|mcg|g|ml|units?|iu|puffs?|tablets?|tabs?|capsules?|drops?)"
DOSED_WORD = re.compile(r"\b([a-z][a-z-]{3,})\s+\d+(?:\.\d+)?\s*" + DOSE_UNITS + r"\b")
NOT_DRUG = frozenset({
    "take", "takes", "taking", "took", "dose", "doses", "dosage", "give", "given", "start", "started", "prescribe",
    "prescribed", "increase", "increased", "decrease", "reduce", "continue", "about", "with", "only", "extra",
    "another", "total", "plus", "around", "approximately", "least", "most", "daily", "each", "every", "than",
    "then", "from", "into", "more", "less", "over", "under", "also", "maybe", "just", "like", "some", "twice",
})


def _expand_numbers(text: str) -> str:
    for ten in _TENS:  # twenty five / twenty-five -> 25
        for index, one in enumerate(_ONES, start=1):
            text = re.sub(rf"\b{ten}[\s-]{one}\b", str(_NUMBER_WORDS[ten] + index), text)
    text = re.sub(rf"(?<!times )(?<!once )(?<!twice )\b(?:a|an|one)\s+(?=(?:few\s+)?{_TIME_UNITS}\b)", "1 ", text)
    return re.sub(r"\b(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b",
                  lambda m: _number_text(_NUMBER_WORDS[m.group(1)]), text)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def normalise(text: str) -> str:
    """Lower case NFKC text with citations removed, abbreviations expanded, numbers as digits and
    lay/clinical synonyms mapped to one concept (the same on claim and line side)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    text = re.sub(r"\[\s*\d+(?:\s*[-,]\s*\d+)*\s*\]", " ", text)  # [3], [3, 4], [3-5]
    text = re.sub(r"\bnon-(?=[a-z])", "non ", text)
    text = re.sub(r"\bex-(?=[a-z])", "ex ", text)
    text = re.sub(r"\b(left|right)-(sided|side)\b", r"\1 side", text)
    for numeral, digit in (("한", 1), ("두", 2), ("세", 3), ("네", 4), ("다섯", 5)):
        text = re.sub(rf"{numeral}\s?(번|알|정|시간|달|주)", rf"{digit}\1", text)
    text = re.sub(r"하루(?:에)?\s*", "1일 ", text)
    text = re.sub(r"(\d)\s*-\s*(year|month|week|day)s?[\s-]*old", r"\1 \2 old", text)
    text = re.sub(r"(?<![\w/.])(" + "|".join(re.escape(k) for k in sorted(_ABBREVIATIONS, key=len, reverse=True))
                  + r")(?![\w/])", lambda m: _ABBREVIATIONS[m.group(1)], text)
    pattern, english, korean_pattern, korean = _maps()
    text = pattern.sub(lambda m: english[m.group(0)], text)
    text = _expand_numbers(text)
    text = korean_pattern.sub(lambda m: " " + korean[m.group(0)] + " ", text)
    return " ".join(text.split())
