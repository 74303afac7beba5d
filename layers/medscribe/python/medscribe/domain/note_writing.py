"""Note writing: a clinical note from transcript lines, and answers about a transcript.

Domain logic, not a stage: no storage and no AWS (the documentation stage and the ask service read
the transcript and store the result). The only files it reads are the prompts shipped in the package
(`packaged_text`, as templates and term lists are read). The caller passes the engine (a
`LanguageModel` adapter, or the offline note engine, the default), the template name and optional
overrides as strings (template JSON, prompt texts), e.g. read from the artifacts bucket's `config/`
prefix, so prompts and templates change without a redeploy.

Model output is checked, never trusted (RELIABILITY.md): not JSON, schema mismatch, unknown sections,
claims without lines, cited lines that do not exist, or truncation (max tokens) each become a
`Problem`; the model gets ONE repair attempt with the problems fed back (twice the token budget when
it was truncated); if problems remain the note is NEEDS_REVIEW with the problems listed, keeping
only citations that resolve. Transcripts beyond `context_budget_chars` are chunked by lines with
their original numbers and the chunk notes merged in section order. The transcript always travels
as delimited data with a data-not-instructions rule; nothing in model output is executed.

`TransientError` / `PermanentError` from the model propagate: the caller's queue retries or records.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medscribe.domain.evidence import REASONS, check_claims, verify_claim
from medscribe.domain.llm import Generation, LanguageModel, first_json_object
from medscribe.domain.note_drafts import (
    check_citations,
    chunk_lines,
    drop_missing_lines,
    merge_sections,
    parse_sections,
    render_line,
    transcript_block,
)
from medscribe.domain.notes import (
    CLINICIAN,
    Note,
    NoteStatus,
    Problem,
    Section,
    Template,
    infer_roles,
    is_question,
    load_template,
    note_lines,
    packaged_text,
)
from medscribe.domain.offline_notes import OfflineNoteEngine, retrieve
from medscribe.domain.offline_visit import StatementNoteEngine
from medscribe.domain.transcript_lines import Line

NOTE_TOOL = "write_note"
ANSWER_TOOL = "answer_question"
DEFAULT_CONTEXT_BUDGET_CHARS = 60_000  # about 15k tokens of transcript per request
DEFAULT_MAX_TOKENS = 4096
MAX_REPAIR_TOKENS = 8192
PREVIOUS_ANSWER_CHARS = 12_000
DECLINE = "The transcript does not contain the answer to this question."
PROMPT_NAMES = ("note_system", "note_user", "note_repair", "ask_system", "ask_user")
# What the note prompt says about the consultation's language (a code such as "ko-KR" or "en"; the
# documentation stage passes the transcript's language): items in that language, section names as given.
NOTE_LANGUAGE_RULES = {
    "ko": "The consultation is in Korean: write every item in Korean (standard abbreviations such as MRI or CT "
          "may stay as written), but keep the section names exactly as given.",
    "en": "The consultation is in English: write every item in English.",
}
_REQUIRED = {"note_user": ("transcript",), "ask_user": ("transcript", "question"), "note_repair": ("problems",)}

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "lines": {"type": "array", "items": {"type": "integer"}},
        "found": {"type": "boolean"},
    },
    "required": ["answer", "lines", "found"],
    "additionalProperties": False,
}


class PromptError(ValueError):
    """A prompt override is unknown or lacks a placeholder the service fills."""


@dataclass(frozen=True)
class Prompts:
    """Prompt texts (`string.Template` syntax: $name) by name; packaged defaults, overridable."""

    texts: Mapping[str, str]

    @classmethod
    def load(cls, overrides: Mapping[str, str] | None = None) -> Prompts:
        texts = {name: packaged_text("prompts", f"{name}.txt") for name in PROMPT_NAMES}
        for name, text in (overrides or {}).items():
            if name not in texts:
                raise PromptError(f"unknown prompt {name!r}; known: {', '.join(PROMPT_NAMES)}")
            missing = [p for p in _REQUIRED.get(name, ()) if p not in string.Template(text).get_identifiers()]
            if missing:
                raise PromptError(f"prompt {name!r} must contain ${', $'.join(missing)}")
            texts[name] = text
        return cls(texts)

    def render(self, name: str, **values: object) -> str:
        return string.Template(self.texts[name]).safe_substitute({k: str(v) for k, v in values.items()})


# ------------------------------------------------------------------------------------------ notes


def write_note(
    lines: Sequence[Line],
    *,
    template: str = "HISTORY_AND_PHYSICAL",
    engine: LanguageModel | OfflineNoteEngine | None = None,
    repair_engine: LanguageModel | None = None,
    template_override: str | None = None,
    prompt_overrides: Mapping[str, str] | None = None,
    context_budget_chars: int = DEFAULT_CONTEXT_BUDGET_CHARS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    language: str | None = None,
) -> Note:
    """The note for `lines` using `template` (or `template_override`, template JSON).

    engine: a LanguageModel adapter, or None / OfflineNoteEngine for the offline engine.
    repair_engine: the model for the repair attempt (e.g. the long-context tier); default `engine`.
    language: the consultation's language ("ko-KR", "en-US", ...): a model is told to write the note in
    it (`NOTE_LANGUAGE_RULES`, also when a prompt override has no $language_rule); None: no rule.
    """
    spec = load_template(template, template_override)
    roles = infer_roles(lines)
    shown = note_lines(lines, roles)
    if not lines:
        return Note(spec.name, engine.engine if engine else OfflineNoteEngine.engine, shown,
                    tuple(Section(name) for name in spec.section_names),
                    (Problem("empty_transcript", "the transcript has no lines"),), NoteStatus.NEEDS_REVIEW)
    if engine is None or isinstance(engine, OfflineNoteEngine):
        offline = engine or OfflineNoteEngine()
        # a template may ask for rewritten, checked statements (VISIT) instead of filed verbatim lines
        drafter = StatementNoteEngine() if spec.offline == "statements" else offline
        sections = drafter.draft(spec, lines, roles)
        problems = check_citations(sections, [line.n for line in lines])
        problems += check_claims(sections, {line.n: line.text for line in lines})
        if not any(section.items for section in sections):
            problems.append(Problem("empty_note", "no transcript statement matched a section of the template"))
        return Note(spec.name, offline.engine, shown, sections, tuple(problems),
                    NoteStatus.NEEDS_REVIEW if problems else NoteStatus.DOCUMENTED,
                    unfilled=tuple(section.name for section in sections if not section.items))
    prompts = Prompts.load(prompt_overrides)
    chunks = chunk_lines(lines, roles, context_budget_chars)
    drafts: list[list[Section]] = []
    problems = []
    engines: list[str] = []
    repairs = 0
    for index, chunk in enumerate(chunks, start=1):
        label = f"chunk {index} of {len(chunks)} (lines {chunk[0].n}-{chunk[-1].n}): " if len(chunks) > 1 else ""
        draft = _draft_chunk(engine, repair_engine or engine, spec, chunk, roles, prompts, max_tokens,
                             part=(index, len(chunks)), language_rule=language_rule(language))
        drafts.append(draft.sections)
        problems += [Problem(p.code, label + p.message, p.section, p.item) for p in draft.problems]
        repairs += draft.repairs
        engines += [e for e in draft.engines if e not in engines]
    return Note(spec.name, "+".join(engines), shown, merge_sections(drafts, spec), tuple(problems),
                NoteStatus.NEEDS_REVIEW if problems else NoteStatus.DOCUMENTED, repairs)


@dataclass(frozen=True)
class _Draft:
    sections: list[Section]
    problems: list[Problem]
    repairs: int
    engines: list[str]


def _evaluate(generation: Generation, spec: Template, chunk: Sequence[Line]) -> tuple[list[Section], list[Problem]]:
    valid = [line.n for line in chunk]
    problems: list[Problem] = []
    data = generation.data if generation.data is not None else first_json_object(generation.text)
    if generation.truncated:
        problems.append(Problem("truncated", f"the output stopped at the token limit ({generation.stop_reason})"))
    if data is None:
        problems.append(Problem("not_json", "the output is not a JSON object"))
        return [], problems
    sections, shape = parse_sections(data, spec)
    problems += shape + check_citations(sections, valid)
    kept = drop_missing_lines(sections, valid)
    problems += check_claims(kept, {line.n: line.text for line in chunk})
    return kept, problems


def language_rule(language: str | None) -> str:
    """The note prompt's rule for a consultation in `language` (a code); "" for none or another language."""
    return NOTE_LANGUAGE_RULES.get((language or "").split("-")[0].lower(), "")


def _draft_chunk(model: LanguageModel, repair_model: LanguageModel, spec: Template, chunk: Sequence[Line],
                 roles: Mapping[str, str], prompts: Prompts, max_tokens: int, part: tuple[int, int],
                 language_rule: str = "") -> _Draft:
    first, last = chunk[0].n, chunk[-1].n
    system = prompts.render("note_system", template_title=spec.title, tool_name=NOTE_TOOL,
                            section_names=", ".join(f'"{name}"' for name in spec.section_names))
    chunk_note = (f"This is part {part[0]} of {part[1]} of a long consultation: document what this part says."
                  if part[1] > 1 else "")
    prompt = prompts.render(
        "note_user", template_title=spec.title, template_description=spec.description,
        sections="\n".join(f"- {s.name}: {s.description}" for s in spec.sections), chunk_note=chunk_note,
        first_line=first, last_line=last, transcript=transcript_block(chunk, roles), language_rule=language_rule,
    )
    if language_rule and "language_rule" not in string.Template(prompts.texts["note_user"]).get_identifiers():
        prompt = f"{prompt}\n\n{language_rule}"  # an override written before the rule existed
    schema = spec.json_schema()
    generation = model.generate_json(system=system, prompt=prompt, schema=schema, tool_name=NOTE_TOOL,
                                     max_tokens=max_tokens)
    sections, problems = _evaluate(generation, spec, chunk)
    if not problems:
        return _Draft(sections, [], 0, [generation.engine])
    previous = json.dumps(generation.data, ensure_ascii=False) if generation.data is not None else generation.text
    repair = prompts.render(
        "note_repair", problems="\n".join(f"- {p.message}" for p in problems),
        previous_answer=previous[:PREVIOUS_ANSWER_CHARS], first_line=first, last_line=last,
    )
    budget = min(max_tokens * 2, MAX_REPAIR_TOKENS) if generation.truncated else max_tokens
    repaired = repair_model.generate_json(system=system, prompt=f"{prompt}\n\n{repair}", schema=schema,
                                          tool_name=NOTE_TOOL, max_tokens=max(budget, max_tokens))
    sections2, problems2 = _evaluate(repaired, spec, chunk)
    if len(problems2) <= len(problems):
        return _Draft(sections2, problems2, 1, [repaired.engine])
    return _Draft(sections, problems, 1, [generation.engine])


# ---------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    answer: str
    lines: tuple[int, ...]
    found: bool
    engine: str
    problems: tuple[Problem, ...] = ()
    verified: bool = True  # False: the cited lines do not support the answer (see `problems`)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "lines": list(self.lines), "found": self.found, "engine": self.engine,
                "verified": self.verified, "problems": [p.to_dict() for p in self.problems]}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


def answer_question(
    lines: Sequence[Line],
    question: str,
    model: LanguageModel | OfflineNoteEngine | None = None,
    *,
    repair_model: LanguageModel | None = None,
    prompt_overrides: Mapping[str, str] | None = None,
    context_budget_chars: int = DEFAULT_CONTEXT_BUDGET_CHARS,
) -> Answer:
    """Answer `question` from the transcript with cited lines, or decline (found=False).

    Offline (no model): the answer is the best-matching lines themselves (BM25), with the patient's
    reply when the best match is a clinician's question. With a model: a JSON answer whose citations
    are checked; an answer without a resolving citation is declined.
    """
    roles = infer_roles(lines)
    if model is None or isinstance(model, OfflineNoteEngine):
        return _answer_offline(lines, question, roles)
    prompts = Prompts.load(prompt_overrides)
    shown = _lines_for_question(lines, question, roles, context_budget_chars)
    if not shown:
        return Answer(DECLINE, (), False, model.engine)
    prompt = prompts.render("ask_user", question=" ".join(question.split()), first_line=shown[0].n,
                            last_line=shown[-1].n, transcript=transcript_block(shown, roles))
    valid = {line.n for line in shown}
    problems: list[Problem] = []
    data: Any = None
    for attempt, asked in ((1, model), (2, repair_model or model)):  # one retry when the answer is not JSON
        generation = asked.generate_json(system=prompts.render("ask_system"), prompt=prompt, schema=ANSWER_SCHEMA,
                                         tool_name=ANSWER_TOOL, max_tokens=1024)
        data = generation.data if generation.data is not None else first_json_object(generation.text)
        if _is_answer(data):
            break
        problems.append(Problem("schema", f"attempt {attempt}: the answer is not the expected JSON object"))
    if not _is_answer(data):
        return Answer(DECLINE, (), False, model.engine, tuple(problems))
    problems = []
    cited = [int(n) for n in data["lines"]]
    missing = [n for n in cited if n not in valid]
    if missing:
        problems.append(Problem("line_not_found", f"the answer cites line(s) {', '.join(map(str, missing))}, "
                                                  "which are not in the transcript"))
    kept = tuple(sorted({n for n in cited if n in valid}))
    if not data["found"] or not kept:
        if data["found"]:
            problems.append(Problem("uncited_claim", "the answer cites no existing transcript line"))
        return Answer(DECLINE, (), False, generation.engine, tuple(problems))
    answer = str(data["answer"]).strip()
    texts = {line.n: line.text for line in shown}
    verdict = verify_claim(answer, [texts[n] for n in kept])
    if not verdict.ok:
        problems.append(Problem(f"{verdict.status}_answer",
                                f"the answer is {verdict.status} by its cited line(s) {', '.join(map(str, kept))}: "
                                f"it {'; it '.join(REASONS[r] for r in verdict.reasons)}"))
    return Answer(answer, kept, True, generation.engine, tuple(problems), verified=verdict.ok)


def _is_answer(data: Any) -> bool:
    return (isinstance(data, Mapping) and isinstance(data.get("answer"), str) and isinstance(data.get("found"), bool)
            and isinstance(data.get("lines"), list)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in data["lines"]))


def _answer_offline(lines: Sequence[Line], question: str, roles: Mapping[str, str]) -> Answer:
    hits = retrieve(lines, question)
    if not hits:
        return Answer(DECLINE, (), False, OfflineNoteEngine.engine)
    by_number = {line.n: index for index, line in enumerate(lines)}
    cited: set[int] = set()
    for hit in hits:
        cited.add(hit.n)
        index = by_number[hit.n]
        line = lines[index]
        if roles.get(line.speaker) == CLINICIAN and is_question(line.text) and index + 1 < len(lines):
            reply = lines[index + 1]
            if roles.get(reply.speaker) != CLINICIAN:
                cited.add(reply.n)
    ordered = [lines[by_number[n]] for n in sorted(cited)]
    return Answer("\n".join(render_line(line, roles) for line in ordered), tuple(sorted(cited)), True,
                  OfflineNoteEngine.engine)


def _lines_for_question(lines: Sequence[Line], question: str, roles: Mapping[str, str],
                        budget_chars: int) -> list[Line]:
    """All lines when they fit the budget; else windows around the best-matching lines (original numbers)."""
    chunks = chunk_lines(lines, roles, budget_chars, overlap=0)
    if len(chunks) <= 1:
        return list(lines)
    hits = retrieve(lines, question, limit=20, min_score=0.0)
    wanted = {n + offset for hit in hits for n in (hit.n,) for offset in range(-3, 4)}
    selected = [line for line in lines if line.n in wanted]
    return chunk_lines(selected, roles, budget_chars, overlap=0)[0] if selected else []
