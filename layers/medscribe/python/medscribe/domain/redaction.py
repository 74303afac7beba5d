"""De-identified copies of transcripts and notes: offline rules for English and Korean. Pure.

`find_phi(text, language)` returns the spans of protected health information it recognises, by
category; `redact(text, language)` replaces each with `[CATEGORY]`; `redact_lines` does so for
numbered transcript lines (numbers, speakers and times kept, so citations still point at the same
lines). The categories follow the HIPAA Safe Harbor identifiers that occur in speech and notes:

- NAME: a person's name. English: after a title (Mr., Mrs., Ms., Miss, Dr.), in a naming phrase
  ("my name is", "this is", "I'm seeing", "patient,"), after a greeting ("hi, brian"), or a given
  name from the 1990 U.S. Census lists (`medscribe/names/`) anywhere unless it is also a common
  English word (will, may, june, ray...), with a following family name from the same lists.
  Korean: a surname syllable and one to three syllables before an honorific (님, 씨, 환자, 선생님)
  or after "이름은".
- DATE: every element of a date but the year alone (numeric dates, month-name dates, Korean
  년/월/일 dates), as Safe Harbor asks.
- AGE: ages over 89 ("92 years old", "aged 95", "93세", "ninety-one-year-old"); younger ages stay.
- PHONE: US and Korean numbers. EMAIL. URL.
- ADDRESS: a street address (a number and a street name with its suffix, apartment), a ZIP code
  after "zip", a Korean road or lot address (시/도, 구/군, 로/길/동 and number).
- ID: record, account, insurance and social security numbers named as such, and SSN-shaped numbers.
- RRN: Korean resident registration numbers (주민등록번호: six digits, a dash, seven digits).
- PROFESSION: only from Amazon Comprehend Medical's DetectPHI (a patient's or relative's profession or
  employer, Safe Harbor's "any other unique identifying characteristic"); the rules do not look for it.

What rules cannot see is not found: a name the lists do not hold, said without a title, a greeting
or a naming phrase ("then Okonkwo called"), or a place named without a number. `bench/redaction.py`
prints the recall on ACI-BENCH's real names and dates and on a planted set in both languages. In
AWS, English text also goes through Amazon Comprehend Medical's DetectPHI, and both sets of spans
are redacted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from itertools import count

from medscribe.domain.transcript_lines import Line

CATEGORIES = ("NAME", "DATE", "AGE", "PHONE", "EMAIL", "URL", "ADDRESS", "ID", "RRN", "PROFESSION")


@dataclass(frozen=True)
class PhiSpan:
    """Characters [begin, end) of a text that are PHI of `category`."""

    category: str
    begin: int
    end: int


# -------------------------------------------------------------------------------------------- names


def _name_list(filename: str) -> frozenset[str]:
    text = resources.files("medscribe").joinpath("names", filename).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@cache
def given_names() -> frozenset[str]:
    return _name_list("first.txt")


@cache
def family_names() -> frozenset[str]:
    return _name_list("last.txt")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Given names that are also everyday English (or clinical) words: a name only in a naming context.
COMMON_WORDS = _word_set("""
al amber angel april art august autumn bill bob bonnie brain brandy buddy candy carol chance chase cherry
chip christian clay cliff crystal dale dawn dean destiny don drew dusty earl ed ernest faith frank gale
gay gene georgia glen grace grant guy harmony hope hunter iris ivy jack jade jean jewel joy june kay king
lane lee les lily lou ma major mark marshall mason max may melody mercy miles misty nick norman pat
patience pearl penny ray rex rich robin rocky rose ruby rusty sage sandy son star sterling stormy sue
summer sun sunny tanner terry victor virginia wade ward warren will young page paige ben ester india kenya ora
van vera alba""")
# Words never taken for a name, even in a naming context ("this is fine", "hi, everyone").
NOT_NAMES = _word_set("""
a about after again all also am an and any are as at be been before being but by can could did do does
doing done down even ever every everyone everybody for from get go going good got great had has have he
her here him his how i if in into is it its just know let like look me more my no not now of off oh ok
okay on one or our out over please really right say see she so some sure than thank thanks that the
their them then there these they this those to today too uh um up us very was we well were what when
where which who why will with yeah yes you your guys folks doc doctor nurse sir maam ma'am dear honey
buddy everyone everybody""")

_WORD = r"[a-z][a-z'\-]*"
_TITLE = re.compile(rf"\b(?:mr|mrs|ms|mister|dr|prof)\b\s*\.?\s*(?P<name>{_WORD})(?:\s+(?P<family>{_WORD}))?",
                    re.IGNORECASE)
# "doctor" and "miss" are also ordinary words: the name after them must be on the lists
_DOCTOR = re.compile(rf"\b(?:doctor|miss)\s+(?P<name>{_WORD})(?:\s+(?P<family>{_WORD}))?", re.IGNORECASE)
_NAMING = re.compile(
    rf"\b(?:my name is|my name's|name is|this is|i'm seeing|i am seeing|seeing|patient\s*,|call me|"
    rf"i'm|i am|meet)\s+(?P<name>{_WORD})(?:\s+(?P<family>{_WORD}))?", re.IGNORECASE)
_OPEN_NAMING = re.compile(r"\b(?:my name is|my name's|name is|call me)\s*$", re.IGNORECASE)
_GREETING = re.compile(
    rf"\b(?:hi|hello|hey|morning|afternoon|evening|bye|goodbye|thanks|thank you|welcome|sorry|okay|so|"
    rf"questions)\s*,?\s+(?P<name>{_WORD})(?:\s+(?P<family>{_WORD}))?", re.IGNORECASE)
_TOKEN = re.compile(_WORD, re.IGNORECASE)

_KO_SURNAMES = ("김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진지엄채원천방공"
                "현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형피두감음빈동온호범좌팽승간상갈단견당")
_KO_NAME = re.compile(rf"(?<![가-힣])(?P<name>[{_KO_SURNAMES}][가-힣]{{1,3}}?)\s?(?=님|씨|환자|선생님)")
_KO_NAMING = re.compile(rf"(?:이름은|성함은|저는)\s*(?P<name>[{_KO_SURNAMES}][가-힣]{{1,2}})"
                        r"(?=입니다|이에요|예요|이고|\s|$|[.,])")
# a relative named after the relation word: 딸 윤아가, 남편이 강동원이에요, 아들 준호가
_KO_RELATIVE = re.compile(r"(?:딸|아들|남편|아내|부인|동생|언니|오빠|누나|형|손자|손녀|어머니|아버지|엄마|아빠|보호자)"
                          r"(?:이|은|는|가)?\s+(?P<name>[가-힣]{2,3}?)(?=이에요|예요|입니다|이가|가|이는|는|이랑|랑|이고|하고)")
# words an honorific follows that are not names (선생님, 어머님, 환자분...)
_KO_NOT_NAMES = frozenset({"선생", "어머", "아버", "간호사", "환자", "고객", "사모", "의사", "원장", "교수",
                           "보호자", "할머", "할아버", "형", "누", "부모", "아드", "따", "손", "어르신", "여러분",
                           "기사", "약사"})


def _name_spans(text: str) -> Iterable[PhiSpan]:
    given, family = given_names(), family_names()

    def candidate(match: re.Match[str], *, open_context: bool, family_too: bool = False) -> Iterable[PhiSpan]:
        name = match.group("name")
        lowered = name.lower()
        if lowered in NOT_NAMES:
            return
        known = (lowered in given or (family_too and lowered in family)) and lowered not in COMMON_WORDS
        if not (open_context or known):
            return
        end = match.end("name")
        extra = match.group("family")
        if extra and extra.lower() in family and extra.lower() not in NOT_NAMES:
            end = match.end("family")
        yield PhiSpan("NAME", match.start("name"), end)

    for match in _TITLE.finditer(text):
        yield from candidate(match, open_context=True)
    for match in _DOCTOR.finditer(text):
        yield from candidate(match, open_context=False, family_too=True)
    for match in _NAMING.finditer(text):
        opened = bool(_OPEN_NAMING.search(text[:match.start("name")]))
        yield from candidate(match, open_context=opened)
    for match in _GREETING.finditer(text):
        if match.group("name").lower() in given:
            yield from candidate(match, open_context=False)
    tokens = list(_TOKEN.finditer(text))
    for index, token in enumerate(tokens):
        word = token.group().lower()
        if word in given and word not in COMMON_WORDS and word not in NOT_NAMES:
            end = token.end()
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if (following is not None and text[token.end():following.start()].isspace()
                    and following.group().lower() in family and following.group().lower() not in NOT_NAMES):
                end = following.end()
            yield PhiSpan("NAME", token.start(), end)
    for pattern in (_KO_NAME, _KO_NAMING, _KO_RELATIVE):
        for match in pattern.finditer(text):
            if match.group("name") not in _KO_NOT_NAMES:
                yield PhiSpan("NAME", match.start("name"), match.end("name"))


# --------------------------------------------------------------------------------- dates and ages

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine")
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("URL", re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)),
    ("RRN", re.compile(r"(?<!\d)\d{6}\s?-\s?[1-8]\d{6}(?!\d)")),
    ("ID", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),
    ("ID", re.compile(
        r"(?:\b(?:mrn|medical record(?: number| no\.?)?|record number|chart number|patient id|patient number|"
        r"account number|member id|insurance (?:id|number)|policy number|social security number|ssn)"
        r"|등록번호|차트번호|환자번호|보험번호)\s*(?:is|:|#|는|은)?\s*(?P<value>[a-z]{0,3}[-\s]?\d[\d\s-]{2,}\d)",
        re.IGNORECASE)),
    ("PHONE", re.compile(r"(?<![\d-])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\d-])")),
    ("PHONE", re.compile(r"(?<![\d-])(?:\+82[\s.-]?|0)(?:1[016789]|2|[3-6][1-5])[\s.-]?\d{3,4}[\s.-]?\d{4}(?![\d-])")),
    ("DATE", re.compile(r"(?<![\d/.-])(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
                        r"(?![\d/-])(?!\.\d)")),
    ("DATE", re.compile(rf"\b{_MONTH}\.?\s+(?:the\s+)?{_DAY}\b(?:\s*,?\s*(?:19|20)\d\d\b)?", re.IGNORECASE)),
    ("DATE", re.compile(rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:\s*,?\s*(?:19|20)\d\d\b)?", re.IGNORECASE)),
    ("DATE", re.compile(r"\b(?:jan(?:uary)?|feb(?:ruary)?|april|june|july|aug(?:ust)?|sept(?:ember)?|"
                        r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|march)\s*,?\s*(?:19|20)\d\d\b", re.IGNORECASE)),
    ("DATE", re.compile(rf"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\s+(?:the\s+)?{_DAY}(?=\s|[.,;]|$)",
                        re.IGNORECASE)),
    ("DATE", re.compile(r"(?:(?:19|20)\d\d\s?년\s?)?\d{1,2}\s?월\s?\d{1,2}\s?일|(?:19|20)\d\d\s?년\s?\d{1,2}\s?월")),
    ("AGE", re.compile(r"\b(?:9\d|1[01]\d)(?=(?:\s|-)*(?:years?|yrs?|y/?o)\b)", re.IGNORECASE)),
    ("AGE", re.compile(r"(?:\baged?\s+(?:of\s+)?|\bage\s+is\s+|\b(?:he's|she's|i'm|he is|she is|i am|turns?|"
                       r"turned|turning)\s+)(?P<value>9\d|1[01]\d)\b(?!\s*(?:%|percent|pounds|lbs|kilos|kg|mg|over))",
                       re.IGNORECASE)),
    ("AGE", re.compile(rf"\b(?:ninety|one hundred(?: and)?)(?:[\s-](?:{_NUMBER_WORDS}))?(?=[\s-]+years?\b)",
                       re.IGNORECASE)),
    ("AGE", re.compile(r"(?:만\s?)?(?:9\d|1[01]\d)\s?(?:세|살)")),
    ("ADDRESS", re.compile(
        r"\b\d{1,6}\s+(?:(?!(?:on|a|an|the|of|to|in|at|per|for|from|by)\s)[a-z0-9]+\s+){1,3}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|"
        r"place|pl|terrace|circle|highway|hwy|parkway|pkwy)\b\.?(?:\s*,?\s*(?:apt|apartment|unit|suite|#)\.?\s*"
        r"\w+)?", re.IGNORECASE)),
    ("ADDRESS", re.compile(r"\bzip(?:\s*code)?\s*(?:is\s*)?(?P<value>\d{5}(?:-\d{4})?)\b", re.IGNORECASE)),
    ("ADDRESS", re.compile(
        r"(?:[가-힣]+(?:특별시|광역시|특별자치시|특별자치도|시|도)\s*)?[가-힣]+(?:시|구|군)\s+"
        r"(?:[가-힣]+(?:구|군)\s+)?[가-힣0-9]+(?:로|길|동|읍|면)\s*\d+(?:-\d+)?(?:\s*번지)?(?:\s*\d+\s*호)?")),
)


def find_phi(text: str, language: str = "en-US") -> list[PhiSpan]:
    """The PHI spans in `text`, sorted and merged where they overlap (the wider category wins ties
    by order: a span inside another is dropped). `language` is a BCP 47 tag; both languages' rules
    run on every text, since Korean visits quote English words and the reverse."""
    del language  # every rule runs: the rules of one language do not fire on the other's script
    found: list[PhiSpan] = list(_name_spans(text))
    for category, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            group = "value" if "value" in pattern.groupindex else 0
            found.append(PhiSpan(category, match.start(group), match.end(group)))
    return _merged(found)


def _merged(spans: Sequence[PhiSpan]) -> list[PhiSpan]:
    merged: list[PhiSpan] = []
    for span in sorted(spans, key=lambda s: (s.begin, -(s.end - s.begin))):
        if span.end <= span.begin:
            continue
        if merged and span.begin < merged[-1].end:
            last = merged[-1]
            merged[-1] = replace(last, end=max(last.end, span.end))
            continue
        merged.append(span)
    return merged


def redact(text: str, language: str = "en-US", extra: Iterable[PhiSpan] = ()) -> tuple[str, list[PhiSpan]]:
    """`text` with every PHI span (found here, or given in `extra`, e.g. by DetectPHI) replaced by
    `[CATEGORY]`, and the spans replaced (offsets into the original text)."""
    spans = _merged([*find_phi(text, language), *extra])
    pieces: list[str] = []
    position = 0
    for span in spans:
        pieces.append(text[position:span.begin])
        pieces.append(f"[{span.category}]")
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces), spans


def redact_lines(lines: Sequence[Line], language: str = "en-US") -> tuple[list[Line], dict[str, int]]:
    """Each line's text redacted (numbers, speakers, times and confidences kept), and how many spans
    of each category were replaced (counts only: safe to log)."""
    counts: dict[str, int] = {}
    redacted: list[Line] = []
    for line in lines:
        text, spans = redact(line.text, language)
        for span in spans:
            counts[span.category] = counts.get(span.category, 0) + 1
        redacted.append(replace(line, text=text))
    return redacted, counts


# Keys whose values are structure, not free text: left as they are in a redacted document.
STRUCTURAL_KEYS = frozenset({"status", "engine", "template", "code", "speaker", "role", "language", "model",
                             "version", "kind", "category", "type", "system", "unit", "units", "section"})


def _walk(value: object, key: str | None, text: Callable[[str], str]) -> object:
    """`value` with `text` applied to every free-text string, depth first in document order."""
    if isinstance(value, dict):
        return {k: _walk(v, str(k), text) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, key, text) for v in value]
    if isinstance(value, str) and key not in STRUCTURAL_KEYS:
        return text(value)
    return value


def free_texts(value: object) -> list[str]:
    """The free-text strings of a JSON document, in the order redact_document visits them (what a
    detector such as DetectPHI is given, so that its spans line up with `extra`)."""
    found: list[str] = []

    def keep(text: str) -> str:
        found.append(text)
        return text

    _walk(value, None, keep)
    return found


def redact_document(value: object, language: str = "en-US",
                    extra: Sequence[Sequence[PhiSpan]] = ()) -> tuple[object, dict[str, int]]:
    """A JSON document (a note, an EMR record, transcript lines) with every free-text string redacted;
    numbers, booleans and the values of STRUCTURAL_KEYS kept. `extra[i]` are spans another engine
    found in the i-th string of `free_texts(value)`. Returns the copy and the counts per category
    (no text)."""
    counts: dict[str, int] = {}
    position = count()

    def text(item: str) -> str:
        index = next(position)
        replaced, spans = redact(item, language, extra[index] if index < len(extra) else ())
        for span in spans:
            counts[span.category] = counts.get(span.category, 0) + 1
        return replaced

    return _walk(value, None, text), counts


# Amazon Comprehend Medical DetectPHI entity types -> categories here (Detect PHI, "Detected PHI
# entities"; CONTACT_POINT and IDENTIFIER are older names the service model still lists).
SERVICE_TYPES = {"NAME": "NAME", "DATE": "DATE", "AGE": "AGE", "PHONE_OR_FAX": "PHONE", "CONTACT_POINT": "PHONE",
                 "EMAIL": "EMAIL", "ID": "ID", "IDENTIFIER": "ID", "URL": "URL", "ADDRESS": "ADDRESS",
                 "PROFESSION": "PROFESSION"}
_OVER_89 = re.compile(r"(?<!\d)(?:9\d|[1-9]\d{2})(?!\d)|\bninety|\bhundred", re.IGNORECASE)


def service_span(entity_type: str, text: str, begin: int, end: int) -> PhiSpan | None:
    """A DetectPHI entity as a span to redact, or None. DetectPHI marks every age; Safe Harbor asks
    only for ages over 89, so an AGE is kept when its text says 90 or more."""
    category = SERVICE_TYPES.get(entity_type)
    if category is None or end <= begin or (category == "AGE" and not _OVER_89.search(text)):
        return None
    return PhiSpan(category, begin, end)
