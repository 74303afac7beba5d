"""Offline EMR structuring: a deterministic, rule-based extractor for Korean and English notes. Pure.

Method (no model; the same note always gives the same record):
1. Language: Korean when at least 30 % of the letters are Hangul (`emr.detect_language`), else
   English; each language has its own lexicons, headings and patterns
   (`domain.offline_emr_lexicon`).
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
from medscribe.domain.offline_emr_lexicon import DATE, ENGLISH, KOREAN, Context, Lexicon

ENGINE = "offline"  # the engine name every offline output carries (as the offline note engine)

_LIST_CONTEXTS = frozenset({Context.EXAM, Context.ASSESSMENT, Context.PLAN, Context.TREATMENT, Context.PROCEDURE})
_COMMA_CONTEXTS = frozenset({Context.EXAM, Context.ASSESSMENT, Context.PLAN, Context.TREATMENT})
# a short label and an ASCII or full-width colon
_HEADING = re.compile(r"^\s*(?P<label>[^:\uff1a\d][^:\uff1a]{0,28}?)\s*[:\uff1a]\s*(?P<body>.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|vs|e\.g|i\.e|approx|No|Fig)\.$", re.IGNORECASE)
_ANY_DATE = re.compile(DATE)
_UNNAMED_DATE = re.sub(r"\?P<\w+>", "?:", DATE)
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
