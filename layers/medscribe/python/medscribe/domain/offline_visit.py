"""The offline statement engine for templates with `"offline": "statements"` (VISIT). Deterministic, no model.

Where the section engine (`offline_notes`) files verbatim lines, this one writes note statements by the
checkable rewriting rules of `domain.note_statements` and keeps only those the project's claim checker
(`domain.evidence.verify_claim`) finds supported by their cited lines:

1. The conversation runs in phases. It starts in the history; a clinician sentence containing a section's
   `opens` phrase ("physical exam", "the x-ray", "assessment and plan") switches to dictation of that
   section, and the clinician's later sentences go there until another section opens. The last section
   that can be opened (ASSESSMENT AND PLAN) ends the visit: once open, it stays open.
2. History phase: a clinician's yes/no question and the patient's short reply become one statement
   ("Denies fever.", "He is still on his metformin."), filed under the `short_answers` section (REVIEW OF
   SYSTEMS) when it names a symptom from that section's cues, else under the `fallback` section (HISTORY
   OF PRESENT ILLNESS). The patient's own sentences (third person) with a history cue and enough content
   go to the fallback section; so do the clinician's statements about the patient ("57-year-old male with
   a history of ...").
3. Dictation phase: each clinician sentence with content goes to the open section (or to another
   dictation section whose cues it matches by `CLEARLY_BETTER` more than the open one's); a patient sentence
   with clear history cues still goes to the history.
4. The `pick: "first"` section (CHIEF COMPLAINT) gets the reason for the visit from the clinician's
   "presents (today) with/for ..." or "here (today) for ...", else the patient's first sentence that
   matches its cues.
5. Statements repeated (same words) are kept once; each section lists its statements in transcript order.
   A statement that fails the claim checker falls back to its sentence before the change of person, and
   is left out when that fails too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from medscribe.domain.evidence import verify_claim
from medscribe.domain.note_statements import (
    Statement,
    as_statement,
    line_statements,
    patient_gender,
    question_answer,
    tidy,
)
from medscribe.domain.notes import CLINICIAN, Claim, Section, SectionSpec, Template, content_words, is_question
from medscribe.domain.offline_notes import Cues
from medscribe.domain.transcript_lines import Line

MIN_CONTENT_WORDS = 2  # a statement needs this many content words
MIN_PATIENT_WORDS = 3  # ... and a patient statement in the history this many, with a cue
MIN_DICTATED_WORDS = 3  # a dictated sentence without a cue of its section needs this many (not "scary stuff")
MAX_COMPLAINT_WORDS = 8
CLEAR_HISTORY_CUES = 2  # history cues that file a clinician's history-phase sentence, or a patient's in dictation
CLEARLY_BETTER = 2  # cue matches by which a dictated sentence outscores the open section to be filed elsewhere
_PRESENTS = re.compile(r"\b(?:presents?|presenting|here|in|coming in|came in)"
                       r"(?:\s+(?:today\s+)?to\s+(?:establish care|be seen|follow up|get checked out))?"
                       r"\s+(?:today\s+)?(?:with|for)\s+"
                       r"(?:(?:a|an|the|his|her|some|evaluation of|follow-up of|follow up of)\s+)*"
                       r"(?P<what>[^.,;?!]+?)(?:\s+(?:and|that|which|who)\b|[.,;?!]|$)")


class _Sections:
    """The template's sections in the roles the engine gives them."""

    def __init__(self, template: Template) -> None:
        self.specs = template.sections
        self.cues = {spec.name: Cues(spec.cues) for spec in template.sections}
        self.opens = {spec.name: Cues(spec.opens) for spec in template.sections if spec.opens}
        self.complaint = next((s for s in self.specs if s.pick == "first"), None)
        self.history = next((s for s in self.specs if s.fallback), self.specs[0])
        self.pertinent = next((s for s in self.specs if s.short_answers), self.history)
        # the last section the clinician can open (the plan) is the end of the visit: nothing reopens another
        self.final = next((s for s in reversed(self.specs) if s.opens), None)

    def opened(self, sentence: str) -> SectionSpec | None:
        """The dictation section a clinician sentence opens (the last-listed match wins)."""
        found = None
        for spec in self.specs:
            if spec.name in self.opens and self.opens[spec.name].count(sentence):
                found = spec
        return found

    def dictated(self, dictating: SectionSpec, sentence: str) -> SectionSpec:
        """The open section, or another dictation section whose cues the sentence matches clearly better."""
        own = self.cue_count(dictating, sentence)
        best = max((s for s in self.specs if s.name in self.opens), key=lambda s: self.cue_count(s, sentence))
        return best if self.cue_count(best, sentence) >= own + CLEARLY_BETTER else dictating

    def cue_count(self, spec: SectionSpec, text: str) -> int:
        return self.cues[spec.name].count(text)


def _verified(statement: Statement, texts: Mapping[int, str]) -> Statement | None:
    cited = [texts[n] for n in statement.lines]
    if verify_claim(statement.text, cited).ok:
        return statement
    plain = as_statement(statement.source)
    if plain and plain != statement.text and verify_claim(plain, cited).ok:
        return Statement(plain, statement.lines, statement.role, statement.kind, statement.source)
    return None


def _complaint(lines: Sequence[Line], roles: Mapping[str, str], sections: _Sections) -> Statement | None:
    spec = sections.complaint
    if spec is None:
        return None
    for line in lines:
        if roles.get(line.speaker) != CLINICIAN:
            continue
        match = _PRESENTS.search(tidy(line.text).lower())
        if match and 0 < len(match.group("what").split()) <= MAX_COMPLAINT_WORDS:
            what = match.group("what")
            return Statement(as_statement(what), (line.n,), CLINICIAN, "said", what)
    for line in lines:
        if roles.get(line.speaker) == CLINICIAN:
            continue
        for statement in line_statements(line, roles.get(line.speaker, "other"), "unknown"):
            if (sections.cue_count(spec, statement.source)
                    and len(statement.source.split()) <= MAX_COMPLAINT_WORDS * 2):
                return Statement(as_statement(statement.source), statement.lines, statement.role, "said",
                                 statement.source)
    return None


class StatementNoteEngine:
    """Writes a `"offline": "statements"` template's sections (see the module docstring)."""

    def draft(self, template: Template, lines: Sequence[Line], roles: Mapping[str, str]) -> tuple[Section, ...]:
        sections = _Sections(template)
        texts = {line.n: line.text for line in lines}
        chosen: dict[str, list[Statement]] = {spec.name: [] for spec in template.sections}
        complaint = _complaint(lines, roles, sections)
        if complaint is not None and sections.complaint is not None:
            kept = _verified(complaint, texts)
            if kept is not None:
                chosen[sections.complaint.name].append(kept)
        for spec, statement in self._statements(lines, roles, sections):
            kept = _verified(statement, texts)
            if kept is not None:
                chosen[spec.name].append(kept)
        return tuple(Section(spec.name, _deduplicated(chosen[spec.name])) for spec in template.sections)

    @staticmethod
    def _statements(lines: Sequence[Line], roles: Mapping[str, str],
                    sections: _Sections) -> list[tuple[SectionSpec, Statement]]:
        gender = patient_gender(lines, roles)
        found: list[tuple[SectionSpec, Statement]] = []
        dictating: SectionSpec | None = None
        answered: set[int] = set()
        for index, line in enumerate(lines):
            role = roles.get(line.speaker, "other")
            reply = lines[index + 1] if index + 1 < len(lines) else None
            if role == CLINICIAN:
                if dictating is None and reply is not None and roles.get(reply.speaker) != CLINICIAN \
                        and is_question(line.text):
                    pair = question_answer(line, reply, gender)
                    if pair is not None:
                        answered.add(reply.n)
                        target = sections.pertinent if sections.cue_count(sections.pertinent, pair.source) \
                            else sections.history
                        found.append((target, pair))
                        continue
                for statement in line_statements(line, role, gender):
                    if dictating is None or dictating is not sections.final:
                        dictating = sections.opened(statement.source) or dictating
                    size = len(content_words(statement.source))
                    if size < MIN_CONTENT_WORDS:
                        continue
                    if dictating is not None:
                        target = sections.dictated(dictating, statement.source)
                        if size >= MIN_DICTATED_WORDS or sections.cue_count(target, statement.source):
                            found.append((target, statement))
                    elif sections.cue_count(sections.history, statement.source) >= CLEAR_HISTORY_CUES:
                        found.append((sections.history, statement))
                continue
            if line.n in answered:
                continue
            for statement in line_statements(line, role, gender):
                cues = sections.cue_count(sections.history, statement.source)
                if (len(content_words(statement.source)) >= MIN_PATIENT_WORDS
                        and cues >= (1 if dictating is None else CLEAR_HISTORY_CUES)):
                    found.append((sections.history, statement))
        return found


def _deduplicated(statements: Sequence[Statement]) -> tuple[Claim, ...]:
    seen: set[str] = set()
    claims: list[Claim] = []
    for statement in sorted(statements, key=lambda s: s.lines):
        key = " ".join(content_words(statement.text))
        if key in seen:
            continue
        seen.add(key)
        claims.append(Claim(statement.text, statement.lines))
    return tuple(claims)
