"""Claim verification: is what a claim says supported by the transcript lines it cites? Pure.

A citation that exists is not evidence. `verify_claim(claim, lines)` checks the facts a clinician
acts on against the cited lines (English and Korean), after normalising both sides the same way
(Unicode NFKC, lower case, common abbreviations and lay/clinical synonyms mapped to one concept:
"SOB" = "short of breath" = "dyspnea", "BID" = "twice a day" = "two times a day", brand = generic):

Checks (the claim against its cited lines):
- medication: every medication the claim names (`lexicon/medications.txt`, a drug-class suffix, or a
  word before a dose) is named in the lines; else unsupported.
- quantity: every number (digits or words, with its unit) is in the lines; the same unit with another
  value is a contradiction, no such number is unsupported.
- laterality: a side (left / right / both) is in the lines; only the other side contradicts.
- allergy: "no known allergies" against lines stating an allergy (or the reverse) contradicts.
- polarity: a finding asserted in the claim and denied in the lines (or the reverse) contradicts; a
  clinician's yes/no question takes the polarity of the answer cited with it.
- support: at least `SUPPORT_THRESHOLD` of the claim's content words are in the lines; else unsupported.

The verdict is `contradicted` if any check contradicts, else `unsupported` if any check finds no
support, else `supported`. `Verdict.reasons` are codes from `REASONS` (no claim or transcript text),
so they may go into problems, logs and metrics. Hypothetical and past clauses ("if", "quit",
"used to", "whether") are not given a polarity. What it cannot judge: meaning that needs clinical
inference ("stable angina" from a description of exertional chest pain) reads as unsupported, which
sends the note to review; a reviewer or the optional model judge decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from medscribe.domain.claim_text import DOSED_WORD, DRUG_SUFFIX, NOT_DRUG, medications, normalise
from medscribe.domain.notes import FILLERS, STOPWORDS, Problem, Section, is_question

SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
CONTRADICTED = "contradicted"
SUPPORT_THRESHOLD = 0.6  # share of a claim's content words (concepts) that must appear in its cited lines

REASONS = {
    "medication": "names a medication its cited lines do not mention",
    "quantity_differs": "gives a number or dose that differs from its cited lines",
    "quantity_missing": "gives a number or dose its cited lines do not contain",
    "laterality_differs": "gives the opposite side (left/right) to its cited lines",
    "laterality_missing": "gives a side (left/right) its cited lines do not",
    "relative_differs": "names a different family member than its cited lines",
    "relative_missing": "names a family member its cited lines do not",
    "frequency_differs": "gives a different frequency (times a day) than its cited lines",
    "frequency_missing": "gives a frequency (times a day) its cited lines do not",
    "allergy": "states an allergy status its cited lines contradict",
    "polarity": "asserts what its cited lines deny, or denies what they assert",
    "content": "says things its cited lines do not (too few of its words are in them)",
}
_CONTRADICTIONS = frozenset({"quantity_differs", "laterality_differs", "relative_differs", "frequency_differs",
                             "allergy", "polarity"})


@dataclass(frozen=True)
class Verdict:
    status: str  # supported | unsupported | contradicted
    reasons: tuple[str, ...] = ()  # keys of REASONS
    support: float = 1.0  # share of the claim's content words found in the lines

    @property
    def ok(self) -> bool:
        return self.status == SUPPORTED


# ------------------------------------------------------------------------------------------ facts

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_TOKEN = re.compile(r"[a-z][a-z'-]*|[\uac00-\ud7a3]+|\d+(?:\.\d+)?")
_JOSA = ("에서는", "에서", "으로", "부터", "까지", "하고", "이랑", "입니다", "이에요", "예요", "이고", "이며", "은",
         "는", "이", "가", "을", "를", "에", "로", "와", "과", "도", "의", "만", "요")
_UNIT_ALIASES = {
    "mg": "mg", "mcg": "mcg", "g": "g", "kg": "kg", "ml": "ml", "l": "l", "unit": "units", "units": "units",
    "iu": "units", "%": "%", "mmhg": "mmhg", "bpm": "bpm", "cm": "cm", "mm": "mm", "pounds": "pounds",
    "pound": "pounds", "degrees": "degrees", "degree": "degrees", "f": "degrees", "c": "degrees", "°": "degrees",
    "puff": "puffs", "puffs": "puffs", "tablet": "tablets", "tablets": "tablets", "tab": "tablets",
    "tabs": "tablets", "capsule": "tablets", "capsules": "tablets", "pill": "tablets", "pills": "tablets",
    "second": "seconds", "seconds": "seconds", "minute": "minutes", "minutes": "minutes", "hour": "hours",
    "hours": "hours", "day": "days", "days": "days", "night": "days", "nights": "days", "week": "weeks",
    "weeks": "weeks", "month": "months", "months": "months", "year": "years", "years": "years",
    "times": "times", "time": "times", "episodes": "times", "episode": "times", "packs": "packs", "pack": "packs",
    "km": "km", "meters": "meters", "feet": "feet", "foot": "feet", "ft": "feet", "miles": "miles", "mile": "miles",
    "inches": "inches", "inch": "inches", "teaspoons": "teaspoons", "teaspoon": "teaspoons",
    "tablespoons": "tablespoons", "tablespoon": "tablespoons", "cigarettes": "cigarettes",
    "kg/m2": "kg/m2", "/10": "/10", "out of 10": "/10", "mg/dl": "mg/dl", "mmol/l": "mmol/l",
    "일": "days", "주": "weeks", "개월": "months", "달": "months", "년": "years", "시간": "hours", "분": "minutes",
    "번": "times", "회": "times", "알": "tablets", "정": "tablets", "도": "degrees", "밀리그램": "mg", "살": "years",
    "세": "years",
}
_QUANTITY = re.compile(
    r"(\d+(?:\.\d+)?)(?:\s*(?:of\s+)?(mg/dl|mmol/l|kg/m2|out of 10|/10|mmhg|mg|mcg|kg|ml|g|l|units?|iu|%|bpm|cm|mm|"
    r"km|meters|feet|foot|ft|miles?|inch(?:es)?|teaspoons?|tablespoons?|cigarettes|"
    r"pounds?|degrees?|°|puffs?|tablets?|tabs?|capsules?|pills?|seconds?|minutes?|hours?|days?|nights?|weeks?|"
    r"months?|years?|times?|episodes?|packs?|밀리그램|개월|시간|일|주|달|년|분|번|회|알|정|도|살|세)(?![a-z]))?")
_SIDES = {"left": "left", "right": "right", "bilateral": "bilateral"}
_NEGATIONS = frozenset({
    "no", "not", "denies", "denied", "deny", "denying", "without", "negative", "never", "none", "neither", "nor",
    "don't", "doesn't", "didn't", "haven't", "hasn't", "hadn't", "isn't", "wasn't", "aren't", "weren't", "nothing",
    "absent", "free", "n't", "non",
})
_NEGATION_WINDOW = 6  # tokens after an English negation cue that it covers (NegEx-style)
_UNCERTAIN = frozenset({
    "if", "whether", "unless", "quit", "stopped", "former", "formerly", "previously", "used", "until", "should",
    "might", "may", "possible", "possibly", "maybe", "probably", "rule", "concern", "concerned", "worried",
    "worry", "return", "monitor", "watch", "rarely", "occasionally", "sometimes", "socially", "barely",
    "hardly", "anymore", "longer",
})
_LEADING_FILLERS = re.compile(r"^\s*(?:(?:oh|uh|um|umm|uhh|er|ah|well|so|hmm|mm)\b[\s,.]*)+")
_TERMINATORS = frozenset({"but", "however", "although", "though", "except", "apart", "aside", "yet", "whereas"})
_KOREAN_NEGATIONS = ("없", "않", "아니", "아뇨", "못", "부인", "음성")
_KOREAN_NOT = frozenset({"안"})  # the negating adverb written as its own word (안 아파요)
_YES = frozenset({"yes", "yeah", "yep", "yup", "yea", "sure", "definitely", "sometimes", "occasionally", "uh-huh",
                  "mm-hmm", "mhm", "correct", "right", "네", "예", "응", "있어요", "있습니다", "있었어요"})
_NO = frozenset({"no", "nope", "nah", "never", "not", "none", "nothing", "negative", "아니요", "아뇨", "아니오",
                 "없어요", "없습니다", "없었어요"})
# words a scribe adds that need no support in the lines
_SCRIBE_WORDS = frozenset({
    "patient", "patients", "reports", "reported", "report", "reporting", "states", "stated", "says", "notes",
    "noted", "describes", "described", "endorses", "endorsed", "complains", "complaint", "complaints",
    "presents", "presenting", "presented", "history", "denies", "denied", "clinician", "physician", "advised",
    "advises", "plan", "discussed", "recommended", "recommends", "currently", "current", "also", "additionally",
    "has", "had", "have", "is", "was", "were", "are", "with", "of", "the", "and", "or", "for", "to", "in", "on",
    "at", "a", "an", "no", "not", "any", "recent", "recently", "ongoing", "approximately", "about", "since",
    "past", "prior", "previous", "symptoms", "symptom", "episode", "episodes", "mild", "moderate", "known",
    "significant", "associated", "new", "which", "who", "that", "she", "he", "her", "his", "they", "their",
    "s", "mr", "mrs", "ms", "yes", "notable", "note", "per", "further", "experiencing", "experiences",
    "sometimes", "occasional", "occasionally", "intermittent", "intermittently", "describe", "feels", "felt",
    "환자", "환자는", "호소", "호소함", "있음", "없음", "함", "있다", "없다", "보고", "언급",
})


@dataclass(frozen=True)
class _Text:
    normal: str
    tokens: tuple[str, ...]


def _text(raw: str) -> _Text:
    normal = normalise(raw)
    return _Text(normal, tuple(_TOKEN.findall(normal)))


def _stem(token: str) -> str:
    if _HANGUL.match(token):
        for josa in _JOSA:
            if token.endswith(josa) and len(token) > len(josa) + 1:
                return token[: -len(josa)]
        return token
    for suffix in ("ings", "ing", "ed", "es", "s", "ly"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            return token[: -len(suffix)]
    return token


def _matches(stem: str, stems: set[str]) -> bool:
    if stem in stems:
        return True
    shortest = 2 if _HANGUL.match(stem) else 4
    return len(stem) >= shortest and any(
        len(other) >= shortest and (other.startswith(stem) or stem.startswith(other)) for other in stems)


def _quantities(text: _Text) -> list[tuple[float, str]]:
    found: list[tuple[float, str]] = []
    for match in _QUANTITY.finditer(text.normal):
        if match.start() > 0 and text.normal[match.start() - 1].isalpha():
            continue  # t2dm-like tokens, b12
        value = float(match.group(1))
        unit = _UNIT_ALIASES.get(match.group(2) or "", "")
        found.append((value, unit))
    return found


def _medications(text: _Text) -> set[str]:
    known = medications()
    names = {known[t] for t in text.tokens if t in known}
    names |= {known.get(m.group(0), m.group(0)) for m in DRUG_SUFFIX.finditer(text.normal)}
    names |= {known.get(m.group(1), m.group(1)) for m in DOSED_WORD.finditer(text.normal)
              if m.group(1) not in NOT_DRUG and m.group(1) not in _SCRIBE_WORDS}
    return names


_ANATOMY = (r"side|sides|arm|arms|leg|legs|knee|knees|ear|ears|eye|eyes|chest|foot|feet|hand|hands|shoulder|hip|"
            r"ankle|wrist|elbow|lung|lungs|kidney|breast|flank|lower|upper|quadrant|temple|thigh|calf|toe|toes|"
            r"finger|fingers|thumb|heel|back|neck|jaw|face|groin|buttock|rib|ribs|lobe|ventricle|atrium|"
            r"ovary|testicle|temporal|frontal|parietal|occipital|sided|lateral|medial|maxillary|carotid|"
            r"[\uac00-\ud7a3]+")
_SIDE = re.compile(r"\b(left|right|bilateral)\b(?=(?:\s+\S+){0,2}?\s+(?:" + _ANATOMY + r")\b)"
                   r"|\b(?:on|to|in|at)\s+the\s+(left|right)\b|\b(bilateral)\b")


def _sides(text: _Text) -> set[str]:
    """Sides of the body named: "left"/"right" before a body part or side within three words, "on the
    left", "bilateral" (not "right now", "all right", "I left work")."""
    return {next(g for g in match.groups() if g) for match in _SIDE.finditer(text.normal)}


_RELATIVES = {"mother": "mother", "mom": "mother", "mum": "mother", "mommy": "mother", "father": "father",
              "dad": "father", "daddy": "father", "brother": "brother", "sister": "sister", "son": "son",
              "daughter": "daughter", "grandmother": "grandmother", "grandma": "grandmother", "granny": "grandmother",
              "grandfather": "grandfather", "grandpa": "grandfather", "aunt": "aunt", "uncle": "uncle",
              "wife": "wife", "husband": "husband", "cousin": "cousin", "어머니": "mother", "엄마": "mother",
              "아버지": "father", "아빠": "father", "형": "brother", "오빠": "brother", "남동생": "brother",
              "누나": "sister", "언니": "sister", "여동생": "sister", "아들": "son", "딸": "daughter",
              "할머니": "grandmother", "할아버지": "grandfather", "아내": "wife", "남편": "husband"}
_FREQUENCIES = ("once a day", "twice a day", "three times a day", "four times a day")


def _relatives(text: _Text) -> set[str]:
    return {_RELATIVES[_stem(t)] for t in text.tokens if _stem(t) in _RELATIVES}


def _frequencies(text: _Text) -> set[str]:
    return {f for f in _FREQUENCIES if re.search(rf"(?<![\w]){f}(?![\w])", text.normal)}


def _content(text: _Text) -> list[str]:
    return [_stem(t) for t in text.tokens
            if not t[0].isdigit() and t not in STOPWORDS and t not in FILLERS and t not in _SCRIBE_WORDS
            and t not in _NEGATIONS and t not in _YES and t not in _NO and _korean_content(t)
            and (len(t) >= 3 or _HANGUL.match(t))]


def _korean_content(token: str) -> bool:
    """False for Hangul particles, negations and the verbs of being/having (은, 없습니다, 있어요)."""
    if not _HANGUL.match(token):
        return True
    return (token not in _JOSA and not token.startswith(("있", "없", "아니", "않", "하", "합", "했", "해"))
            and not any(n in token for n in _KOREAN_NEGATIONS) and token not in _KOREAN_NOT)


# ---------------------------------------------------------------------------------------- polarity

_CLAUSE = re.compile(r"[;:]|\b(?:but|however|although|though|except|apart from|aside from|yet|whereas)\b")
_RESETS = frozenset({"reports", "reported", "endorses", "endorsed", "complains", "admits", "positive", "notes",
                     "states", "says"})
_RESPONSE = re.compile(r"^\s*(?:no|nope|nah|yes|yeah|yep|yup|네|예|아니요|아뇨)(?:\s*[,.!]+\s*|\s*$|\s+"
                       r"(?=(?:i|i'm|i've|we|he|she|it|it's|that|they|not|never|nothing|none|just|only|thank|thanks)\b))")
_KOREAN_QUESTION = ("습니까", "나요", "까요", "신가요", "세요", "있어요", "없어요")
Polarities = dict[str, set[str]]


def _sentences(texts: Sequence[str]) -> list[tuple[str, bool]]:
    """(raw sentence, is a question) in order, over all texts."""
    out: list[tuple[str, bool]] = []
    for text in texts:
        parts = [p for p in re.findall("[^.?!\u3002\uff1f]+[.?!\u3002\uff1f]*", text) if p.strip()]
        for part in parts:
            stripped = part.strip()
            question = stripped.endswith(("?", "\uff1f")) or (
                len(parts) == 1 and not re.search(r"[.!]", stripped)
                and (is_question(stripped) or stripped.endswith(_KOREAN_QUESTION[:4])))
            out.append((stripped, question))
    return out


def _answer_polarity(sentence: str) -> str | None:
    tokens = _TOKEN.findall(_LEADING_FILLERS.sub("", normalise(sentence)))
    if not tokens:
        return None
    if tokens[0] in _YES:
        return "pos"
    if tokens[0] in _NO or any(t in _NEGATIONS for t in tokens[:3]):
        return "neg"
    if any(_HANGUL.match(t) for t in tokens):
        if any(n in t for t in tokens for n in _KOREAN_NEGATIONS):
            return "neg"
        if any("있" in t for t in tokens):
            return "pos"
    return None


def _statement_polarities(sentence: str, into: Polarities) -> None:
    normal = _RESPONSE.sub("", _LEADING_FILLERS.sub("", normalise(sentence)))
    clauses = _CLAUSE.split(normal)
    if _HANGUL.search(normal):  # Korean lists findings with commas, each negated at its own end
        clauses = [part for clause in clauses for part in clause.split(",")]
    for clause in clauses:
        tokens = _TOKEN.findall(clause)
        if any(t in _UNCERTAIN for t in tokens):
            continue
        korean_negated = (any(n in t for t in tokens if _HANGUL.match(t) for n in _KOREAN_NEGATIONS)
                          or bool(_KOREAN_NOT & set(tokens)))
        negated = False
        since_cue = 0
        for token in tokens:
            since_cue += 1
            if negated and since_cue > _NEGATION_WINDOW:
                negated = False
            if korean_negated:  # Korean negates the clause from its end (두통은 없습니다)
                if _content(_Text(token, (token,))):
                    into.setdefault(_stem(token), set()).add("neg")
            elif token in _RESETS:
                negated = False
            elif token in _NEGATIONS:
                negated, since_cue = True, 0
            elif _content(_Text(token, (token,))):
                into.setdefault(_stem(token), set()).add("neg" if negated else "pos")


def polarities(texts: Sequence[str]) -> Polarities:
    """Each content stem with the polarities it is given: "pos" (asserted) and/or "neg" (negated).
    A question's terms take the polarity of a yes/no answer that follows it; hypothetical or past
    clauses give none."""
    found: Polarities = {}
    sentences = _sentences(texts)
    for index, (sentence, question) in enumerate(sentences):
        if not question:
            _statement_polarities(sentence, found)
            continue
        answer = next((s for s, q in sentences[index + 1:] if not q), None)
        polarity = _answer_polarity(answer) if answer else None
        if polarity:
            for stem in _content(_text(sentence)):
                found.setdefault(stem, set()).add(polarity)
    return found


_DENY_ALLERGY = re.compile(r"\bno (?:known )?(?:drug |medication )?allerg|\bnot allergic|\bdenies (?:any )?(?:drug )?"
                           r"allerg|\bwithout (?:any )?allerg|\ballergies:? none|\bno allergies|n't have any allerg"
                           r"|알레르기[는가은]?\s*없")
_ASSERT_ALLERGY = re.compile(r"\ballergic to\b|\ballergy to\b|\ballergies to\b|\ballergic reaction|\ballergies include"
                             r"|\ballergies: [a-z]|알레르기가?\s*있")


def _allergy(texts: Sequence[str]) -> set[str]:
    """"deny" and/or "assert": what the texts say about allergies (a question about allergies takes
    the polarity of its yes/no answer)."""
    found: set[str] = set()
    sentences = _sentences(texts)
    for index, (sentence, question) in enumerate(sentences):
        normal = normalise(sentence)
        if question:
            if "allerg" in normal or "알레르기" in normal:
                answer = next((s for s, q in sentences[index + 1:] if not q), None)
                polarity = _answer_polarity(answer) if answer else None
                if polarity:
                    found.add("assert" if polarity == "pos" else "deny")
            continue
        if _DENY_ALLERGY.search(normal):
            found.add("deny")
        elif _ASSERT_ALLERGY.search(normal):
            found.add("assert")
    return found


# ------------------------------------------------------------------------------------------ verdict


def verify_claim(claim: str, lines: Sequence[str]) -> Verdict:
    """Check `claim` against the text of the lines it cites (see the module docstring)."""
    said = _text(claim)
    cited = [_text(line) for line in lines]
    line_stems = {_stem(t) for text in cited for t in text.tokens}
    reasons: list[str] = []

    line_medications = set().union(*(_medications(text) for text in cited)) if cited else set()
    for name in _medications(said):
        if name not in line_medications and not _matches(_stem(name), line_stems):
            reasons.append("medication")

    line_quantities = [q for text in cited for q in _quantities(text)]
    for value, unit in _quantities(said):
        if value == 1 and not unit:
            continue
        if any(value == v and (not unit or not u or unit == u) for v, u in line_quantities):
            continue
        same_unit = [v for v, u in line_quantities if unit and u == unit]
        reasons.append("quantity_differs" if same_unit else "quantity_missing")

    line_sides = set().union(*(_sides(text) for text in cited)) if cited else set()
    for side in _sides(said):
        if side not in line_sides:
            reasons.append("laterality_differs" if line_sides - {"bilateral"} else "laterality_missing")

    for kind, facts in (("relative", _relatives), ("frequency", _frequencies)):
        cited_facts = set().union(*(facts(text) for text in cited)) if cited else set()
        if facts(said) - cited_facts:
            reasons.append(f"{kind}_differs" if cited_facts else f"{kind}_missing")

    claimed_allergy, cited_allergy = _allergy([claim]), _allergy(lines)
    if ("deny" in claimed_allergy and "assert" in cited_allergy) or (
            "assert" in claimed_allergy and cited_allergy == {"deny"}):
        reasons.append("allergy")

    cited_polarity = polarities(lines)
    for stem, claimed in polarities([claim]).items():
        if len(claimed) != 1:
            continue
        given = set().union(*(p for other, p in cited_polarity.items() if _matches(stem, {other}))) \
            if cited_polarity else set()
        if given and not (given & claimed):
            reasons.append("polarity")
            break

    content = _content(said)
    support = sum(_matches(w, line_stems) for w in content) / len(content) if content else 1.0
    if support < SUPPORT_THRESHOLD:
        reasons.append("content")

    unique = tuple(dict.fromkeys(reasons))
    if any(r in _CONTRADICTIONS for r in unique):
        return Verdict(CONTRADICTED, unique, support)
    return Verdict(UNSUPPORTED if unique else SUPPORTED, unique, support)


def check_claims(sections: Sequence[Section], texts: Mapping[int, str]) -> list[Problem]:
    """A `contradicted_claim` or `unsupported_claim` problem for each claim whose cited lines (by number
    in `texts`; unknown numbers are `check_citations`' business) do not support it. Messages name the
    section, item and failed checks only, never claim or transcript text."""
    problems: list[Problem] = []
    for section in sections:
        for index, claim in enumerate(section.items, start=1):
            cited = [texts[n] for n in claim.lines if n in texts]
            if not cited:
                continue
            verdict = verify_claim(claim.text, cited)
            if not verdict.ok:
                problems.append(Problem(
                    f"{verdict.status}_claim",
                    f"{section.name} item {index} is {verdict.status} by its cited line(s) "
                    f"{', '.join(map(str, claim.lines))}: it {'; it '.join(REASONS[r] for r in verdict.reasons)}",
                    section.name, index))
    return problems
