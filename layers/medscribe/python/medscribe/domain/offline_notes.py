"""The offline note engine: a deterministic, extractive note with exact citations. No model.

Method (every claim is the verbatim text of one transcript line, or of a clinician question and the
short answer that follows it, cited by its line numbers, so a citation can never be wrong):

1. Speaker roles come from `notes.infer_roles` (explicit labels win; otherwise the speaker who asks
   most questions / uses clinician phrases is the clinician).
2. The transcript becomes candidate statements ("units"):
   - a clinician question is context, not a claim; its words help classify the answer that follows;
   - a short answer (at most four content words: "No.", "Yes, a little") becomes a span with the
     question before it ("Any fever? No." cites both lines), so the claim means something alone;
   - other lines with at least two content words are statements of their speaker;
   - fillers ("okay", "mm-hmm") are dropped.
3. Each unit is scored per template section: the number of the section's cue words/phrases it
   contains (the answer's preceding question counts half), times the section's weight for the
   speaker's role (patient statements feed history sections; clinician statements with exam
   vocabulary feed the examination, plan vocabulary the plan). Sections marked `short_answers`
   get +1 for question/answer spans with a cue (pertinent negatives belong in the review of systems).
4. A `pick: "first"` section (Chief complaint) takes the first patient-side statement that matches
   its cues (a symptom), and nothing else. Sections with `cues_from` (History of present illness)
   also use the content words of that claim as cues, so follow-up about the complaint lands there.
5. A unit goes to its best section when the score reaches 1 (ties: template order); a long line
   (30+ words, e.g. a clinician's closing summary) also goes to any other section scoring at least
   2 and half the best. A patient-side statement with three or more content words that no section
   wants goes to the `fallback` section (History of present illness / Subjective).
6. Claims are listed in transcript order within each section.
7. A section nothing matched stays empty and is named in the note's `unfilled` list (a template may
   also have sections without cues, which this engine never fills): the engine does not infer.

Question answering offline (`retrieve`) is BM25 over the lines; see its docstring.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from medscribe.domain.notes import (
    CLINICIAN,
    FILLERS,
    STOPWORDS,
    Claim,
    Section,
    SectionSpec,
    Template,
    content_words,
    is_question,
    words,
)
from medscribe.domain.transcript_lines import Line

ENGINE = "offline"
SCORE_THRESHOLD = 1.0
SECONDARY_SCORE = 2.0
LONG_LINE_WORDS = 30
SHORT_ANSWER_WORDS = 4
MIN_STATEMENT_WORDS = 2
FALLBACK_WORDS = 3


@dataclass(frozen=True)
class _Unit:
    lines: tuple[Line, ...]
    role: str
    text: str
    context: str  # the clinician question before a (long) answer, else ""
    short_answer: bool

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(line.n for line in self.lines)


def _cue_pattern(cue: str) -> re.Pattern[str] | None:
    """A cue as a regular expression over space-joined lower-case words: `*` ends a word prefix and
    `|` separates alternatives that count as one cue (`day|days|week|weeks`)."""
    alternatives: list[str] = []
    for alternative in cue.lower().split("|"):
        parts: list[str] = []
        for token in alternative.split():
            pieces = words(token.rstrip("*"))
            if pieces:
                parts.extend(re.escape(piece) for piece in pieces[:-1])
                parts.append(re.escape(pieces[-1]) + (r"[\w']*" if token.endswith("*") else ""))
        if parts:
            alternatives.append(" ".join(parts))
    return re.compile(r"(?<![\w'])(?:" + "|".join(alternatives) + r")(?![\w'])") if alternatives else None


class Cues:
    def __init__(self, cues: Sequence[str]) -> None:
        self.patterns = [p for p in map(_cue_pattern, cues) if p is not None]

    def extended(self, extra: Sequence[str]) -> Cues:
        combined = Cues(extra)
        combined.patterns = [*self.patterns, *combined.patterns]
        return combined

    def count(self, text: str) -> int:
        joined = " ".join(words(text))
        return sum(1 for pattern in self.patterns if pattern.search(joined))


def _units(lines: Sequence[Line], roles: Mapping[str, str]) -> list[_Unit]:
    units: list[_Unit] = []
    for index, line in enumerate(lines):
        role = roles.get(line.speaker, "other")
        question = is_question(line.text)
        if role == CLINICIAN and question:
            continue
        previous = lines[index - 1] if index else None
        asked = (previous is not None and role != CLINICIAN and roles.get(previous.speaker) == CLINICIAN
                 and is_question(previous.text))
        content = content_words(line.text)
        if asked and previous is not None and len(content) <= SHORT_ANSWER_WORDS:
            units.append(_Unit((previous, line), role, f"{previous.text} {line.text}", "", True))
        elif len(content) >= MIN_STATEMENT_WORDS:
            units.append(_Unit((line,), role, line.text, previous.text if asked and previous else "", False))
    return units


class OfflineNoteEngine:
    """Classifies transcript lines into a template's sections (see the module docstring)."""

    engine = ENGINE

    def draft(self, template: Template, lines: Sequence[Line], roles: Mapping[str, str]) -> tuple[Section, ...]:
        units = _units(lines, roles)
        cues = {spec.name: Cues(spec.cues) for spec in template.sections}
        chosen: dict[str, list[_Unit]] = {spec.name: [] for spec in template.sections}
        taken: set[int] = set()
        for spec in template.sections:
            if spec.pick == "first":
                first = next((i for i, u in enumerate(units)
                              if spec.weight(u.role) > 0 and u.role != CLINICIAN and not u.short_answer
                              and cues[spec.name].count(u.text) > 0), None)
                if first is not None:
                    chosen[spec.name].append(units[first])
                    taken.add(first)
        for spec in template.sections:
            if spec.cues_from and chosen.get(spec.cues_from):
                extra = sorted({w for u in chosen[spec.cues_from] for w in content_words(u.text) if len(w) > 3})
                cues[spec.name] = cues[spec.name].extended(extra)
        ranked = [spec for spec in template.sections if spec.pick is None]
        fallback = next((spec for spec in ranked if spec.fallback), None)
        for index, unit in enumerate(units):
            if index in taken:
                continue
            for spec in self._sections_for(unit, ranked, cues, fallback):
                chosen[spec.name].append(unit)
        return tuple(
            Section(spec.name, tuple(Claim(u.text, u.numbers) for u in sorted(chosen[spec.name],
                                                                              key=lambda u: u.numbers)))
            for spec in template.sections
        )

    @staticmethod
    def _sections_for(unit: _Unit, ranked: Sequence[SectionSpec], cues: Mapping[str, Cues],
                      fallback: SectionSpec | None) -> list[SectionSpec]:
        scores: list[tuple[float, SectionSpec]] = []
        for spec in ranked:
            weight = spec.weight(unit.role)
            if weight <= 0:
                continue
            own = cues[spec.name].count(unit.text)
            context = cues[spec.name].count(unit.context) if unit.context else 0
            score = weight * (own + 0.5 * context)
            if spec.short_answers and unit.short_answer and own:
                score += 1.0
            scores.append((score, spec))
        best = max((score for score, _ in scores), default=0.0)
        if best >= SCORE_THRESHOLD:
            first = next(spec for score, spec in scores if score == best)
            picked = [first]
            if not unit.short_answer and len(words(unit.text)) >= LONG_LINE_WORDS:
                floor = max(SECONDARY_SCORE, best / 2)
                picked += [spec for score, spec in scores if spec is not first and score >= floor]
            return picked
        if (fallback is not None and unit.role != CLINICIAN and not unit.short_answer
                and len(content_words(unit.text)) >= FALLBACK_WORDS):
            return [fallback]
        return []


# ------------------------------------------------------------------------------ offline retrieval

_QUESTION_STOPWORDS = FILLERS | STOPWORDS | frozenset({
    "whom", "is", "should", "patient", "patient's", "doctor", "clinician", "any", "tell", "mention", "mentioned",
    "report", "reported", "ever", "currently", "does", "the", "was",
})


def _stem(word: str) -> str:
    """A light suffix strip so 'coughs', 'coughing' and 'cough' meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> list[str]:
    return [_stem(w) for w in words(text) if w not in _QUESTION_STOPWORDS]


@dataclass(frozen=True)
class Hit:
    n: int
    score: float


def retrieve(lines: Sequence[Line], question: str, *, limit: int = 3, min_score: float = 1.0,
             k1: float = 1.5, b: float = 0.75) -> list[Hit]:
    """The lines that best match the question by BM25 (Okapi; stop words removed, light stemming),
    best first. Lines scoring below `min_score` or below half the best score are left out, so an
    empty list means the transcript does not seem to contain the answer."""
    query = set(_terms(question))
    if not query or not lines:
        return []
    documents = [Counter(_terms(line.text)) for line in lines]
    average = sum(sum(d.values()) for d in documents) / len(documents) or 1.0
    frequency = Counter(term for d in documents for term in set(d))
    total = len(documents)
    hits: list[Hit] = []
    for line, document in zip(lines, documents, strict=True):
        length = sum(document.values())
        score = 0.0
        for term in query & document.keys():
            idf = math.log(1 + (total - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = document[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))
        if score >= min_score:
            hits.append(Hit(line.n, round(score, 4)))
    hits.sort(key=lambda hit: (-hit.score, hit.n))
    if not hits:
        return []
    return [hit for hit in hits if hit.score >= hits[0].score / 2][:limit]
