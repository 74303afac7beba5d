"""The deterministic offline entity extractor (issue 17): Comprehend Medical's output shape, offline.

Reads numbered transcript lines (or a text note's lines) and returns an `EntitySet` with engine "offline":

- **Terms**: a clinical term lexicon shipped in the package (`lexicon/entities-en.json`,
  `lexicon/entities-ko.json`, each documented in its "_about"; medication names also from
  `lexicon/medications.txt` and drug-class suffixes, as the claim checker reads them), matched whole-word on
  `LineText.text`, longest term first, and mapped to line spans with `LineText.spans`. Categories and types
  are Comprehend Medical's (DX_NAME, GENERIC_NAME / BRAND_NAME, TEST_NAME, PROCEDURE_NAME, SYSTEM_ORGAN_SITE).
- **Attributes** of a medication, by rules on its own line: DOSAGE ("10 mg"), FREQUENCY ("twice a day"),
  ROUTE_OR_MODE ("by mouth").
- **Traits** (`domain.offline_entity_context`): NEGATION by NegEx (negspacy on a blank spaCy pipeline) within a
  line, and across a question and its answer ("Any fever?" / "No.": both lines are the evidence);
  PERTAINS_TO_FAMILY, HYPOTHETICAL, PAST_HISTORY by cue words; SYMPTOM / DIAGNOSIS from the lexicon.
  Korean negation by rules (없어요, 않아요, 안 ..., 아니요).
- **Codes**: ICD-10-CM only, from the lexicon's term-to-code map, each code checked with simple-icd-10-cm's
  `is_valid_item` and described by that package. RxNorm and SNOMED CT are not coded offline (no maintained
  offline source): every entity says so in `not_coded`, and the set's notes say it once.

Where it runs: the local runtime and development (`medscribe` CLI, tests, bench/entities.py). spaCy,
negspacy and simple-icd-10-cm are in requirements-dev.txt (the local install), not in a Lambda layer: in AWS
the entities come from Amazon Comprehend Medical. They are imported on first use, so importing this module
stays cheap (cold-start rule). Deterministic: the same lines give the same entities, ids included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from medscribe.domain import offline_entity_context as context
from medscribe.domain.claim_text import DRUG_SUFFIX, medications
from medscribe.domain.clinical_entities import Attribute, Code, Entity, EntitySet, LineText, Span
from medscribe.domain.transcript_lines import Line

ENGINE = "offline"
NOT_RXNORM = "offline: RxNorm is not available offline (Comprehend Medical codes medications in AWS)"
NOT_SNOMED = "offline: SNOMED CT is not available offline (Comprehend Medical codes it in AWS)"
NOT_ICD = "offline: the term list gives no ICD-10-CM code for this term; SNOMED CT is not available offline"
NOT_ICD_KO = "offline: the Korean term list gives no ICD-10-CM code for this term (not coded)"
NOTE_CODES = ("offline: ICD-10-CM codes only, from the shipped term list checked against simple-icd-10-cm; "
              "RxNorm and SNOMED CT are not coded offline")
NOTE_KOREAN = "Korean: coded from the documented Korean term list (lexicon/entities-ko.json); other terms not coded"
# a one-syllable Korean term (열, 목, 배) counts only before a particle or the end of the word
_KO_PARTICLE = r"(?=(?:이|가|은|는|을|를|도|에|의|과|와|만|쪽|으로|로|에서|이나|나)?(?![가-힣]))"
_HANGUL = re.compile(r"[\uac00-\ud7a3]")

_DOSE = r"\d+(?:\.\d+)?\s?(?:mg|milligrams?|mcg|micrograms?|g|grams?|ml|units?|iu|puffs?|tablets?|capsules?|mg/kg)"
_ATTRIBUTES_EN = (
    ("DOSAGE", re.compile(rf"(?<![\w.]){_DOSE}(?!\w)", re.IGNORECASE)),
    ("FREQUENCY", re.compile(
        r"\b(?:(?:once|twice|three times|four times|one time|two times)(?: a| per| each)? ?(?:day|daily|week|weekly)|"
        r"(?:once|twice) daily|every (?:\d+|one|two|three|four|six|eight|twelve)(?: to \d+)? hours|every (?:morning|"
        r"evening|night|day)|at (?:night|bedtime)|as needed|daily|nightly|weekly|bid|tid|qid|qd|prn)\b",
        re.IGNORECASE)),
    ("ROUTE_OR_MODE", re.compile(
        r"\b(?:by mouth|orally|oral|intravenous(?:ly)?|topical(?:ly)?|inhaled|subcutaneous(?:ly)?|"
        r"sublingual(?:ly)?|intramuscular(?:ly)?)\b|\b(?-i:PO|IV|IM|SC)\b", re.IGNORECASE)),  # abbreviations: capitals
)
_ATTRIBUTES_KO = (
    ("DOSAGE", re.compile(r"\d+(?:\.\d+)?\s?(?:mg|mcg|g|ml|mL|밀리그램|그램|정|알|캡슐|단위)", re.IGNORECASE)),
    ("FREQUENCY", re.compile(
        r"하루\s?(?:한|두|세|네|\d)\s?(?:번|회|차례)|1일\s?\d회|매일|아침저녁|자기 전|필요시|필요할 때")),
    ("ROUTE_OR_MODE", re.compile(r"경구|입으로|정맥(?:으로| 주사)?|근육 주사|피하 주사|흡입")),
)
_MEDICATION_WINDOW = 60  # characters between a medication and an attribute of it on the same line


@dataclass(frozen=True)
class Term:
    category: str
    type: str
    trait: str | None
    icd10cm: str | None


@dataclass(frozen=True)
class Lexicon:
    pattern: re.Pattern[str]
    terms: dict[str, Term]
    korean: bool

    def term(self, matched: str) -> Term | None:
        key = " ".join(matched.split()).casefold()
        for candidate in (key, key[:-1] if key.endswith("s") else key, key[:-2] if key.endswith("es") else key):
            if candidate in self.terms:
                return self.terms[candidate]
        if not self.korean and DRUG_SUFFIX.fullmatch(key):
            return Term("MEDICATION", "GENERIC_NAME", None, None)
        return None


def _korean(language: str) -> bool:
    return language.lower().startswith("ko")


def _alternation(terms: Sequence[str], korean: bool) -> str:
    def one(term: str) -> str:
        words = r"[ \t]+".join(re.escape(word) for word in term.split())  # never across a line break
        if korean:
            return words + (_KO_PARTICLE if len(term) == 1 else "")
        return words + ("(?:e?s)?" if len(term) >= 3 and term[-1].isalpha() else "")
    return "|".join(one(t) for t in sorted(terms, key=lambda t: (-len(t), t)))


@cache
def lexicon(language: str) -> Lexicon:
    """The term lexicon of `language` (English unless it is Korean), compiled once."""
    korean = _korean(language)
    raw = json.loads(resources.files("medscribe").joinpath(
        "lexicon", "entities-ko.json" if korean else "entities-en.json").read_text(encoding="utf-8"))
    terms: dict[str, Term] = {}
    for section in raw["sections"]:
        for name, value in section["terms"].items():
            code = value[1] if isinstance(value, list) else value  # Korean: [English equivalent, code]
            terms[name.casefold()] = Term(section["category"], section["type"], section["trait"], code)
    for name, generic in medications().items():
        if bool(_HANGUL.search(name)) == korean and name.casefold() not in terms:
            brand = not korean and generic != name  # Korean names map to the English generic: not a brand
            terms[name.casefold()] = Term("MEDICATION", "BRAND_NAME" if brand else "GENERIC_NAME", None, None)
    alternation = _alternation(list(terms), korean)
    if korean:
        pattern = re.compile(rf"(?<![가-힣])(?:{alternation})", re.IGNORECASE)
    else:
        suffixed = DRUG_SUFFIX.pattern.removesuffix(r"\b")
        pattern = re.compile(rf"(?<![\w-])(?:{alternation}|{suffixed})(?![\w-])", re.IGNORECASE)
    return Lexicon(pattern, terms, korean)


@cache
def icd10cm(code: str) -> Code | None:
    """The ICD-10-CM code as simple-icd-10-cm knows it (its description), or None when it is not a valid code."""
    try:
        import simple_icd_10_cm as cm  # its table takes a second or two to load: first use only
    except ImportError as error:
        raise RuntimeError("the offline entity extractor needs simple-icd-10-cm (requirements-dev.txt)") from error
    if not cm.is_valid_item(code):
        return None
    return Code(system="ICD-10-CM", code=code, description=str(cm.get_description(code)))


@dataclass
class _Found:
    """A term found on one line (a term never crosses a line break): characters [begin, end) of lines[index]."""

    index: int
    begin: int
    end: int
    term: Term
    traits: list[str] = field(default_factory=list)
    evidence: list[Span] = field(default_factory=list)  # more lines that support it (a question's answer)
    attributes: list[Attribute] = field(default_factory=list)


def _find(text: LineText, lex: Lexicon) -> list[_Found]:
    position = {line.n: index for index, line in enumerate(text.lines)}
    found = []
    for match in lex.pattern.finditer(text.text):
        term = lex.term(match.group(0))
        spans = text.spans(match.start(), match.end())
        if term is not None and len(spans) == 1:
            found.append(_Found(position[spans[0].line], spans[0].begin, spans[0].end, term))
    return found


def _by_line(found: Sequence[_Found], categories: Collection[str]) -> dict[int, list[_Found]]:
    grouped: dict[int, list[_Found]] = {}
    for item in found:
        if item.term.category in categories:
            grouped.setdefault(item.index, []).append(item)
    return grouped


def _attributes(lines: Sequence[Line], found: list[_Found], korean: bool) -> None:
    """Dose, frequency and route on a medication's line go to the nearest medication of that line."""
    for index, meds in _by_line(found, {"MEDICATION"}).items():
        line = lines[index]
        for kind, pattern in _ATTRIBUTES_KO if korean else _ATTRIBUTES_EN:
            for match in pattern.finditer(line.text):
                distance, owner = min((max(med.begin - match.end(), match.start() - med.end, 0), i)
                                      for i, med in enumerate(meds))
                if distance <= _MEDICATION_WINDOW:
                    meds[owner].attributes.append(Attribute(
                        type=kind, text=match.group(0), spans=(Span(line.n, match.start(), match.end()),)))


def _without_route_words(found: list[_Found]) -> list[_Found]:
    """"by mouth" is a route, not a body site: anatomy inside a medication's attribute is dropped."""
    taken = [(med.index, a.spans[0].begin, a.spans[0].end) for med in found for a in med.attributes]
    return [f for f in found if f.term.category != "ANATOMY" or not any(
        index == f.index and begin < f.end and f.begin < end for index, begin, end in taken)]


_NEGATABLE = ("MEDICAL_CONDITION", "MEDICATION", "TEST_TREATMENT_PROCEDURE")


def _negate_within_lines(lines: Sequence[Line], found: list[_Found], korean: bool) -> None:
    for index, items in _by_line(found, _NEGATABLE).items():
        text = lines[index].text
        if korean:
            flags = [context.korean_negated(text, item.end) for item in items]
        else:
            flags = context.english_negated(text, [(item.begin, item.end) for item in items])
        for item, negated in zip(items, flags, strict=True):
            if negated:
                item.traits.append("NEGATION")


def _negate_by_answers(lines: Sequence[Line], found: list[_Found], korean: bool) -> None:
    """A question's entities are negated by the next speaker's "No." (the answer becomes evidence too)."""
    for index, items in _by_line(found, _NEGATABLE).items():
        if index + 1 >= len(lines):
            continue
        question, answer = lines[index], lines[index + 1]
        asked = context.question_span(question.text, korean)
        denial = context.negative_answer(answer.text)
        if asked is None or denial is None or answer.speaker == question.speaker:
            continue
        for item in items:
            if asked[0] <= item.begin and item.end <= asked[1] and not context.set_aside(
                    question.text, item.begin, item.end, korean):
                if "NEGATION" not in item.traits:
                    item.traits.append("NEGATION")
                item.evidence.append(Span(answer.n, denial.start(), denial.end()))


def _codes(term: Term, korean: bool) -> tuple[tuple[Code, ...], str | None]:
    """ICD-10-CM for a condition whose term has a valid code; otherwise the reason it is not coded."""
    if term.category == "MEDICATION":
        return (), NOT_RXNORM
    if term.category != "MEDICAL_CONDITION":
        return (), NOT_SNOMED
    code = icd10cm(term.icd10cm) if term.icd10cm else None
    if code is None:
        return (), NOT_ICD_KO if korean else NOT_ICD
    return (code,), None


def _entity(number: int, lines: Sequence[Line], item: _Found, korean: bool) -> Entity:
    line = lines[item.index]
    traits = [*item.traits, *([item.term.trait] if item.term.trait else [])]
    if item.term.category == "MEDICAL_CONDITION":
        traits.extend(context.context_traits(line.text, item.begin, item.end, korean))
    codes, not_coded = _codes(item.term, korean)
    return Entity(id=f"off-{number}", category=item.term.category, type=item.term.type,
                  text=line.text[item.begin:item.end], spans=(Span(line.n, item.begin, item.end), *item.evidence),
                  score=None, traits=tuple(dict.fromkeys(traits)), attributes=tuple(item.attributes), codes=codes,
                  not_coded=not_coded)


def extract(encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
    """Entities with traits, attributes, ICD-10-CM codes where found, and their line spans."""
    korean = _korean(language)
    text = LineText(lines)
    found = _find(text, lexicon(language))
    _attributes(text.lines, found, korean)
    found = _without_route_words(found)
    _negate_within_lines(text.lines, found, korean)
    _negate_by_answers(text.lines, found, korean)
    entities = tuple(_entity(number, text.lines, item, korean) for number, item in enumerate(found, start=1))
    notes = (NOTE_CODES, NOTE_KOREAN) if korean else (NOTE_CODES,)
    return EntitySet(encounter_id=encounter_id, engine=ENGINE, language=language, entities=entities, notes=notes)
