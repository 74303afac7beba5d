"""Versions of a clinical note in the clinician workspace: an edit checked, compared and verified. Pure.

Version 0 is the note the pipeline wrote; every save makes the next version, DRAFT until a clinician
signs it, and a SIGNED version never changes (an amendment is a new DRAFT that needs signing again).
An edit keeps the template's sections (the pipeline's `parse_sections` checks its shape against the
sections of the note it edits), and its claims are verified against the transcript lines with the
pipeline's own checks (`check_citations`, `check_claims`), so a problem shows next to its claim.

What changed is summarised per claim by section name and 1-based item number (`Change`): added,
removed, edited (its text) or re-cited (its line numbers); never the text itself, so the summary may
sit in the table's version item and in logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from enum import StrEnum
from typing import Any

from medscribe.domain.evidence import check_claims
from medscribe.domain.note_drafts import check_citations, parse_sections
from medscribe.domain.notes import Claim, Problem, Section, SectionSpec, Template

# The sort key of an encounter's note head (current and signed version) in the single table: the search
# index's stream route passes these items too, so a save or a signature re-indexes the encounter.
HEAD_SORT_KEY = "NOTE"
PIPELINE_ACTOR, PIPELINE_ROLE = "pipeline", "system"  # who makes the pipeline's versions
MAX_CLAIMS = 500  # claims in one saved note (a note is a page or two; this bounds a request's work)
MAX_CLAIM_CHARS = 4000
MAX_AMEND_REASON_CHARS = 1000


class VersionState(StrEnum):
    DRAFT = "DRAFT"
    SIGNED = "SIGNED"


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"  # `item` is the claim's number in the base version
    EDITED = "edited"  # its text changed
    RECITED = "recited"  # its cited line numbers changed


class InvalidEdit(ValueError):
    """A saved note that is not a note of this template; the message holds names and numbers only."""


@dataclass(frozen=True)
class Change:
    change: ChangeKind
    section: str
    item: int  # 1-based, in the new version (in the base version for a removal)

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change.value, "section": self.section, "item": self.item}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(ChangeKind(str(data["change"])), str(data["section"]), int(data["item"]))


@dataclass(frozen=True)
class NoteVersion:
    """One version's metadata (no note text: the text is in the artifacts bucket under `note_key`)."""

    encounter_id: str
    version: int
    state: VersionState
    actor_id: str
    role: str
    created_at: str
    base_version: int | None  # None for version 0 (the pipeline's note)
    note_key: str
    changes: tuple[Change, ...] = ()
    problem_count: int = 0
    amended: bool = False  # made from a signed version (its reason is stored with the text)
    signed_by: str | None = None
    signed_role: str | None = None
    signed_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"encounter_id": self.encounter_id, "version": self.version, "state": self.state.value,
                "actor_id": self.actor_id, "role": self.role, "created_at": self.created_at,
                "base_version": self.base_version, "note_key": self.note_key,
                "changes": [c.to_dict() for c in self.changes], "problem_count": self.problem_count,
                "amended": self.amended, "signed_by": self.signed_by, "signed_role": self.signed_role,
                "signed_at": self.signed_at}


def parse_edit(data: Any, section_names: Sequence[str]) -> tuple[Section, ...]:
    """The sections of a saved note (`{"sections": [{"name", "items": [{"text", "lines"}]}]}`), in
    template order; raises InvalidEdit for anything the pipeline's parser reports or over the limits."""
    template = Template("edit", "edit", "", tuple(SectionSpec(name, "") for name in section_names))
    sections, problems = parse_sections(data, template)
    if problems:
        raise InvalidEdit("; ".join(problem.message for problem in problems[:5]))
    claims = [claim for section in sections for claim in section.items]
    if len(claims) > MAX_CLAIMS:
        raise InvalidEdit(f"a note holds at most {MAX_CLAIMS} claims, not {len(claims)}")
    for section in sections:
        for index, claim in enumerate(section.items, start=1):
            if len(claim.text) > MAX_CLAIM_CHARS:
                raise InvalidEdit(f"{section.name} item {index} is longer than {MAX_CLAIM_CHARS} characters")
    return tuple(sections)


def verify(sections: Sequence[Section], lines: Mapping[int, str]) -> list[Problem]:
    """The pipeline's checks on every claim (cites a line, cites existing lines, is supported by
    them), each problem carrying its claim's section and item number."""
    problems: list[Problem] = []
    for section in sections:
        for index, claim in enumerate(section.items, start=1):
            for problem in check_citations([Section(section.name, (claim,))], lines):
                message = problem.message.replace(f"{section.name} item 1 ", f"{section.name} item {index} ", 1)
                problems.append(Problem(problem.code, message, section.name, index))
    return problems + check_claims(sections, lines)


def _key(claim: Claim) -> tuple[str, tuple[int, ...]]:
    return " ".join(claim.text.split()), claim.lines


def diff(base: Sequence[Section], new: Sequence[Section]) -> list[Change]:
    """Claim-level changes from `base` to `new`, section by section (sections matched by name).

    Unchanged claims are aligned first (longest matching runs); inside a replaced run claims pair
    up in order, a pair being edited (text) and/or re-cited (lines), and the rest are added or removed."""
    old_items = {section.name: section.items for section in base}
    changes: list[Change] = []
    for section in new:
        before = old_items.pop(section.name, ())
        matcher = SequenceMatcher(a=[_key(c) for c in before], b=[_key(c) for c in section.items], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            pairs = min(i2 - i1, j2 - j1)
            for offset in range(pairs):
                old, now = before[i1 + offset], section.items[j1 + offset]
                item = j1 + offset + 1
                if _key(old)[0] != _key(now)[0]:
                    changes.append(Change(ChangeKind.EDITED, section.name, item))
                if old.lines != now.lines:
                    changes.append(Change(ChangeKind.RECITED, section.name, item))
            changes += [Change(ChangeKind.REMOVED, section.name, i + 1) for i in range(i1 + pairs, i2)]
            changes += [Change(ChangeKind.ADDED, section.name, j + 1) for j in range(j1 + pairs, j2)]
    for name, items in old_items.items():
        changes += [Change(ChangeKind.REMOVED, name, i) for i in range(1, len(items) + 1)]
    return changes


def check_amend_reason(reason: str | None) -> str | None:
    """The amendment reason stripped (None when blank); raises InvalidEdit when it is too long."""
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_AMEND_REASON_CHARS:
        raise InvalidEdit(f"an amendment reason is at most {MAX_AMEND_REASON_CHARS} characters")
    return reason.strip()


# --- a deliberate re-run of the pipeline (services/reprocess.py) ----------------------------------------

def version_key(encounter_id: str, version: int, event_id: str) -> str:
    """Where a version's note object lives in the artifacts bucket (never overwritten: the event id is new)."""
    return f"notes/{encounter_id}/versions/{version}-{event_id}.json"


def pipeline_version(versions: Sequence[NoteVersion], pipeline_note_key: str) -> int:
    """The version that is the pipeline's live note (its object is the encounter's note key, which a re-run
    overwrites): version 0, or the draft a re-run over clinician work started (`superseding`)."""
    return max((v.version for v in versions if v.note_key == pipeline_note_key), default=0)


def clinician_work(versions: Sequence[NoteVersion], current: int, signed: int | None,
                   pipeline_note_key: str) -> str | None:
    """What a re-run of the pipeline would silently replace, in words without note text; None when the
    current version is the pipeline's own unsigned note."""
    if signed is not None:
        return f"version {signed} is signed"
    if current > pipeline_version(versions, pipeline_note_key):
        return f"version {current} was saved by a clinician"
    return None


@dataclass(frozen=True)
class Superseding:
    """The version records a re-run over clinician work writes: the pipeline's previous note moved to its
    own copy (`archived`: its object is about to be overwritten), and the re-run's note as a new unsigned
    DRAFT after every existing version (`draft`), which the head then names; no signature carries over."""

    archived: NoteVersion
    draft: NoteVersion


def superseding(versions: Sequence[NoteVersion], current: int, pipeline_note_key: str, *, archive_key: str,
                at: str) -> Superseding:
    """`versions` as stored (version 0 has an item only once signed; `pipeline_stub` stands in for it)."""
    number = pipeline_version(versions, pipeline_note_key)
    previous = next(v for v in versions if v.version == number)
    draft = NoteVersion(encounter_id=previous.encounter_id, version=current + 1, state=VersionState.DRAFT,
                        actor_id=PIPELINE_ACTOR, role=PIPELINE_ROLE, created_at=at, base_version=None,
                        note_key=pipeline_note_key)
    return Superseding(archived=replace(previous, note_key=archive_key), draft=draft)


def pipeline_stub(encounter_id: str, note_key: str, created_at: str, problem_count: int) -> NoteVersion:
    """Version 0 as the workspace shows it before it has an item: the pipeline's note, unsigned."""
    return NoteVersion(encounter_id=encounter_id, version=0, state=VersionState.DRAFT, actor_id=PIPELINE_ACTOR,
                       role=PIPELINE_ROLE, created_at=created_at, base_version=None, note_key=note_key,
                       problem_count=problem_count)
