"""Clinical notes: templates as data, the note model, speaker roles. Pure.

A note is a list of sections (fixed by a template) whose items are claims; every claim carries the
numbers of the transcript lines that support it. Nothing a model returns is trusted: its draft is
checked in `domain.note_drafts`, which reports `Problem`s (codes and numbers only, never transcript
or note text, so a problem may be logged).

Templates ship as JSON in `medscribe/templates/`, one file per catalogue name (`CATALOGUE`: AWS
HealthScribe's seven templates and SOAP; `hp` and `soap` are aliases of HISTORY_AND_PHYSICAL and SOAP),
and can be replaced by a JSON string (an override read from the artifacts bucket,
`config/templates/<name>.json`, which may also name a custom template). A template section has `name` and
`description` (what the model is told) and, for the offline engine: `cues` (words or phrases; a
trailing `*` matches any word starting so; `a|b` are alternatives counted as one cue), `roles`
(weight of a statement by speaker role), optional `pick: "first"` (one claim: the first matching
statement), `fallback: true` (substantive patient statements no other section claims),
`short_answers: true` (prefers a clinician question with the patient's short answer) and
`cues_from` (also use the words of another section's claims). A template with `"offline": "statements"`
(VISIT) is written offline by `domain.offline_visit` (rewritten, checked statements); its sections may list
`opens`: phrases with which the clinician starts dictating that section ("physical exam", "assessment and plan").
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any

from medscribe.domain.transcript_lines import Line

CLINICIAN = "clinician"
PATIENT = "patient"
OTHER = "other"  # a third party (relative, interpreter) or a speaker whose role cannot be told
ROLES = (CLINICIAN, PATIENT, OTHER)
# The shipped templates (medscribe/templates/<name>.json): AWS HealthScribe's note templates, SOAP, and VISIT
# (the section headings of the ACI-BENCH benchmark's reference notes, written by the offline statement engine).
CATALOGUE = ("HISTORY_AND_PHYSICAL", "SOAP", "PHYSICAL_SOAP", "BEHAVIORAL_SOAP", "GIRPP", "BIRP", "SIRP", "DAP",
             "VISIT")
OFFLINE_METHODS = ("sections", "statements")  # offline_notes (verbatim lines) / offline_visit (rewritten statements)
# Names of earlier releases, kept for existing deployments (cdk.json, config/templates/hp.json overrides).
TEMPLATE_ALIASES = {"hp": "HISTORY_AND_PHYSICAL", "soap": "SOAP"}
TEMPLATE_NAMES = CATALOGUE + tuple(TEMPLATE_ALIASES)
# A template name as an S3 key segment, a tag value or a config/templates/ file name can carry it.
TEMPLATE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_SECTIONS = 30
MAX_SECTION_NAME_CHARS = 80
MAX_DESCRIPTION_CHARS = 2000


def note_keys(encounter_id: str) -> dict[str, str]:
    """Where the documentation stage writes an encounter's note, EMR record, after-visit summary and review
    page (the entities stage draws the review page again at the same key)."""
    folder = f"notes/{encounter_id}"
    return {"note": f"{folder}/note.json", "emr": f"{folder}/emr.json", "summary": f"{folder}/summary.json",
            "review": f"{folder}/review.html"}


class NoteStatus(StrEnum):
    DOCUMENTED = "DOCUMENTED"
    NEEDS_REVIEW = "NEEDS_REVIEW"


class TemplateError(ValueError):
    """A template (shipped or overridden) is not valid template JSON."""


# ---------------------------------------------------------------------------------------------- words

_WORD = re.compile(r"\w+(?:'\w+)?")
FILLERS = frozenset({
    "okay", "ok", "yeah", "yes", "yep", "no", "nope", "um", "uh", "umm", "uhh", "mm", "hmm", "mhm", "mm-hmm",
    "right", "alright", "so", "sure", "well", "oh", "ah", "thanks", "thank", "you", "great", "good", "fine",
    "hi", "hello", "bye", "and", "the", "a", "an", "i", "it", "is", "that", "to", "of", "in", "just", "like",
    "kind", "sort", "really", "very", "gotcha", "cool", "perfect", "wow", "sorry", "hear", "got",
})
STOPWORDS = frozenset({
    "about", "after", "again", "all", "also", "am", "are", "as", "at", "be", "been", "before", "being", "but", "by",
    "can", "could", "did", "do", "does", "doing", "don't", "for", "from", "get", "go", "going", "had", "has", "have",
    "having", "he", "her", "here", "him", "his", "how", "i'm", "if", "into", "its", "it's", "kind", "know", "let",
    "me", "mean", "more", "most", "much", "my", "not", "now", "on", "one", "or", "our", "out", "over", "pretty",
    "she", "some", "something", "than", "their", "them", "then", "there", "these", "they", "thing", "things",
    "think", "this", "those", "through", "today", "too", "up", "was", "we", "were", "what", "when", "where",
    "which", "while", "who", "why", "will", "with", "would", "your", "feel", "feeling", "said", "say",
})
_QUESTION_MARKERS = ("do you", "did you", "have you", "are you", "were you", "is it", "is there", "does it",
                     "can you", "could you", "would you", "how about", "what about", "any", "how long", "how often",
                     "what", "when", "where", "which", "who", "why", "how")


def words(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes inside words are kept (we'll, i've)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def content_words(text: str) -> list[str]:
    """Words that are neither fillers nor function words."""
    return [w for w in words(text) if w not in FILLERS and w not in STOPWORDS]


def is_question(text: str) -> bool:
    """Mostly a question: most of its words sit in sentences ending with '?' (or, for unpunctuated ASR
    text, a short line with a question phrase)."""
    stripped = text.strip()
    if "?" in stripped:
        sentences = re.findall(r"[^.?!]+[.?!]*", stripped)
        asked = sum(len(s.split()) for s in sentences if s.rstrip().endswith("?"))
        return asked * 2 >= sum(len(s.split()) for s in sentences)
    if re.search(r"[.!]", stripped):
        return False
    tokens = words(stripped)
    joined = " " + " ".join(tokens) + " "
    return 0 < len(tokens) < 25 and any(f" {marker} " in joined for marker in _QUESTION_MARKERS)


# ------------------------------------------------------------------------------------------ templates


@dataclass(frozen=True)
class SectionSpec:
    name: str
    description: str
    cues: tuple[str, ...] = ()
    roles: Mapping[str, float] = field(default_factory=dict)
    pick: str | None = None  # "first": a single claim, the first matching patient statement
    fallback: bool = False
    short_answers: bool = False
    cues_from: str | None = None
    opens: tuple[str, ...] = ()  # statements engine: clinician phrases that start dictation of this section

    def weight(self, role: str) -> float:
        """A third party's statements weigh as the patient's."""
        return float(self.roles.get(role, self.roles.get(PATIENT, 0.0) if role == OTHER else 0.0))


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    sections: tuple[SectionSpec, ...]
    offline: str = "sections"  # one of OFFLINE_METHODS

    @property
    def section_names(self) -> tuple[str, ...]:
        return tuple(section.name for section in self.sections)

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the model's answer (the Bedrock tool input / OpenAI response format)."""
        claim = {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "One statement, supported by the cited lines."},
                "lines": {"type": "array", "items": {"type": "integer"},
                          "description": "Numbers of the transcript lines that support the statement."},
            },
            "required": ["text", "lines"],
            "additionalProperties": False,
        }
        section = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": list(self.section_names)},
                "items": {"type": "array", "items": claim},
            },
            "required": ["name", "items"],
            "additionalProperties": False,
        }
        return {
            "type": "object",
            "properties": {"sections": {"type": "array", "items": section}},
            "required": ["sections"],
            "additionalProperties": False,
        }


def _section_spec(raw: Any, index: int) -> SectionSpec:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise TemplateError(f"section {index} needs a non-empty 'name'")
    name = raw["name"].strip()
    if len(name) > MAX_SECTION_NAME_CHARS or not name.isprintable():
        raise TemplateError(f"section {index}: 'name' must be printable text of at most {MAX_SECTION_NAME_CHARS} "
                            "characters")
    if not isinstance(raw.get("description", ""), str) or len(raw.get("description", "")) > MAX_DESCRIPTION_CHARS:
        raise TemplateError(f"section {index}: 'description' must be text of at most {MAX_DESCRIPTION_CHARS} "
                            "characters")
    cues = raw.get("cues", [])
    roles = raw.get("roles", {})
    if not isinstance(cues, list) or not all(isinstance(c, str) and c.strip() for c in cues):
        raise TemplateError(f"section {index}: 'cues' must be a list of non-empty strings")
    if not isinstance(roles, Mapping) or not all(
        role in ROLES and isinstance(weight, int | float) and weight >= 0 for role, weight in roles.items()
    ):
        raise TemplateError(f"section {index}: 'roles' maps {'/'.join(ROLES)} to non-negative weights")
    pick = raw.get("pick")
    if pick not in (None, "first"):
        raise TemplateError(f"section {index}: 'pick' can only be \"first\"")
    opens = raw.get("opens", [])
    if not isinstance(opens, list) or not all(isinstance(c, str) and c.strip() for c in opens):
        raise TemplateError(f"section {index}: 'opens' must be a list of non-empty strings")
    for flag in ("fallback", "short_answers"):
        if not isinstance(raw.get(flag, False), bool):
            raise TemplateError(f"section {index}: {flag!r} must be true or false")
    return SectionSpec(
        name=name, description=str(raw.get("description", "")).strip(),
        cues=tuple(c.strip().lower() for c in cues), roles={k: float(v) for k, v in roles.items()},
        pick=pick, fallback=bool(raw.get("fallback", False)), short_answers=bool(raw.get("short_answers", False)),
        cues_from=raw.get("cues_from"), opens=tuple(c.strip().lower() for c in opens),
    )


def parse_template(text: str) -> Template:
    """A template from its JSON text (shipped or an override); raises TemplateError when invalid."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"template is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise TemplateError("template needs a 'name'")
    if not raw["name"].strip() or len(raw["name"]) > MAX_SECTION_NAME_CHARS or not raw["name"].isprintable():
        raise TemplateError(f"template 'name' must be printable text of 1-{MAX_SECTION_NAME_CHARS} characters")
    sections_raw = raw.get("sections")
    if not isinstance(sections_raw, list) or not sections_raw:
        raise TemplateError("template needs a non-empty 'sections' list")
    if len(sections_raw) > MAX_SECTIONS:
        raise TemplateError(f"template has {len(sections_raw)} sections; at most {MAX_SECTIONS}")
    sections = tuple(_section_spec(s, i) for i, s in enumerate(sections_raw))
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise TemplateError("section names must be unique")
    for spec in sections:
        if spec.cues_from is not None and spec.cues_from not in names:
            raise TemplateError(f"section {spec.name!r}: cues_from names no section")
    offline = raw.get("offline", "sections")
    if offline not in OFFLINE_METHODS:
        raise TemplateError(f"template 'offline' must be one of {', '.join(OFFLINE_METHODS)}")
    return Template(name=raw["name"], title=str(raw.get("title", raw["name"])),
                    description=str(raw.get("description", "")), sections=sections, offline=offline)


def packaged_text(folder: str, filename: str) -> str:
    """A data file shipped inside the package (templates/, prompts/)."""
    return resources.files("medscribe").joinpath(folder, filename).read_text(encoding="utf-8")


def catalogue_name(name: str) -> str | None:
    """The catalogue name `name` stands for (a catalogue name or an alias, in any letter case), or None
    for a name outside the catalogue (a custom template's)."""
    if name.lower() in TEMPLATE_ALIASES:
        return TEMPLATE_ALIASES[name.lower()]
    return name.upper() if name.upper() in CATALOGUE else None


def override_names(name: str) -> tuple[str, ...]:
    """The config/templates/<name>.json file names that may override template `name`, first found wins:
    the name as given, then its catalogue name and that name's aliases (an override saved as hp.json
    still applies when a deployment or an upload says HISTORY_AND_PHYSICAL)."""
    canonical = catalogue_name(name)
    if canonical is None:
        return (name,)
    aliases = [alias for alias, target in TEMPLATE_ALIASES.items() if target == canonical]
    return tuple(dict.fromkeys([name, canonical, *aliases]))


def load_template(name: str, override: str | None = None) -> Template:
    """The named catalogue template (or alias), or `override` (template JSON) when one is given."""
    if override is not None:
        return parse_template(override)
    canonical = catalogue_name(name)
    if canonical is None:
        raise TemplateError(f"unknown template {name!r}: not in the catalogue ({', '.join(CATALOGUE)}) and no "
                            f"custom template config/templates/{name}.json")
    return parse_template(packaged_text("templates", f"{canonical}.json"))


# ------------------------------------------------------------------------------------------ the note


@dataclass(frozen=True)
class Claim:
    text: str
    lines: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "lines": list(self.lines)}


@dataclass(frozen=True)
class Section:
    name: str
    items: tuple[Claim, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "items": [item.to_dict() for item in self.items]}


@dataclass(frozen=True)
class Problem:
    """Something wrong with a draft. `message` holds names and numbers only (no PHI)."""

    code: str  # not_json | schema | truncated | unknown_section | uncited_claim | line_not_found | ...
    message: str
    section: str = ""  # the claim a claim-level problem is about: its section and 1-based item number
    item: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.section:
            data.update(section=self.section, item=self.item)
        return data


@dataclass(frozen=True)
class NoteLine:
    n: int
    speaker: str
    role: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "speaker": self.speaker, "role": self.role, "text": self.text}


@dataclass(frozen=True)
class Note:
    template: str
    engine: str  # "offline", "bedrock:<model id>", "openai:<model>"
    lines: tuple[NoteLine, ...]
    sections: tuple[Section, ...]
    problems: tuple[Problem, ...] = ()
    status: NoteStatus = NoteStatus.DOCUMENTED
    repairs: int = 0  # repair attempts the model needed
    # Sections the offline engine left empty: no transcript statement matched their cues (it does not
    # infer). Names only, so the list may be logged; a model's empty sections are not listed.
    unfilled: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template, "engine": self.engine,
            "lines": [line.to_dict() for line in self.lines],
            "sections": [section.to_dict() for section in self.sections],
            "problems": [problem.to_dict() for problem in self.problems],
            "status": self.status.value, "repairs": self.repairs, "unfilled": list(self.unfilled),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Note:
        return cls(
            template=str(data["template"]), engine=str(data["engine"]),
            lines=tuple(NoteLine(int(x["n"]), str(x["speaker"]), str(x["role"]), str(x["text"]))
                        for x in data["lines"]),
            sections=tuple(Section(str(s["name"]), tuple(Claim(str(i["text"]), tuple(int(n) for n in i["lines"]))
                                                         for i in s["items"])) for s in data["sections"]),
            problems=tuple(Problem(str(p["code"]), str(p["message"]), str(p.get("section", "")), int(p.get("item", 0)))
                           for p in data.get("problems", [])),
            status=NoteStatus(data.get("status", NoteStatus.DOCUMENTED)), repairs=int(data.get("repairs", 0)),
            unfilled=tuple(str(name) for name in data.get("unfilled", [])),
        )

    def claims(self) -> Iterable[tuple[str, Claim]]:
        for section in self.sections:
            for item in section.items:
                yield section.name, item


def note_lines(lines: Sequence[Line], roles: Mapping[str, str]) -> tuple[NoteLine, ...]:
    return tuple(NoteLine(line.n, line.speaker, roles.get(line.speaker, OTHER), line.text) for line in lines)


# ---------------------------------------------------------------------------------------- speaker roles

_LABELS = {
    "clinician": CLINICIAN, "doctor": CLINICIAN, "dr": CLINICIAN, "d": CLINICIAN, "physician": CLINICIAN,
    "nurse": CLINICIAN, "provider": CLINICIAN,
    "patient": PATIENT, "p": PATIENT,
    "guest": OTHER, "patient_guest": OTHER, "relative": OTHER, "interpreter": OTHER,
}
_CLINICIAN_CUES = ("what brings you", "tell me", "let me", "any other", "have you", "do you", "did you", "we'll",
                   "i'll", "i'm going to", "examine", "prescribe", "recommend", "how long", "how often",
                   "your symptoms", "on a scale", "follow up", "any questions")
_PATIENT_CUES = ("i've been", "i have been", "i've had", "i feel", "i felt", "my", "it hurts", "i get", "i had",
                 "i was", "i don't know", "i think it", "i noticed", "i've noticed", "i take")


def _phrase_count(text: str, phrases: Sequence[str]) -> int:
    joined = " " + " ".join(words(text)) + " "
    return sum(joined.count(" " + " ".join(words(phrase)) + " ") for phrase in phrases)


def infer_roles(lines: Sequence[Line]) -> dict[str, str]:
    """Speaker label -> clinician | patient | other.

    Explicit labels win (`clinician`/`doctor`/`D`, `patient`/`P`, `guest`). Among the other speakers
    the clinician is the one whose lines are most often questions or clinician phrases ("what brings
    you", "let me", "we'll") rather than first-person statements ("i've been", "my"); the patient is
    the remaining speaker with the most lines; anyone else is `other`. A lone unlabelled speaker is
    `other` (nothing to compare with).
    """
    roles: dict[str, str] = {}
    unlabelled: list[str] = []
    for line in lines:
        if line.speaker in roles or line.speaker in unlabelled:
            continue
        label = _LABELS.get(line.speaker.strip().lower())
        if label:
            roles[line.speaker] = label
        else:
            unlabelled.append(line.speaker)
    if len(unlabelled) == 1 and not roles:
        return {unlabelled[0]: OTHER}
    score: dict[str, float] = dict.fromkeys(unlabelled, 0.0)
    count: Counter[str] = Counter()
    for line in lines:
        if line.speaker in unlabelled:
            count[line.speaker] += 1
            score[line.speaker] += ((1.0 if is_question(line.text) else 0.0)
                                    + 0.5 * _phrase_count(line.text, _CLINICIAN_CUES)
                                    - 0.5 * _phrase_count(line.text, _PATIENT_CUES))
    remaining = list(unlabelled)
    if remaining and CLINICIAN not in roles.values():
        clinician = max(remaining, key=lambda s: (score[s] / count[s], -remaining.index(s)))
        roles[clinician] = CLINICIAN
        remaining.remove(clinician)
    if remaining and PATIENT not in roles.values():
        patient = max(remaining, key=lambda s: (count[s], -remaining.index(s)))
        roles[patient] = PATIENT
        remaining.remove(patient)
    roles.update(dict.fromkeys(remaining, OTHER))
    return roles
