"""The signed note as Markdown (GET /api/encounters/{id}/export?format=markdown): a heading with the
encounter, then who signed which version and when, then each section with its claims and the
transcript lines each claim cites; an EMR record (a text note that is not a dialogue) as its fields.

The text is the clinicians' and the transcript's: it is escaped so that it reads as written in any
Markdown viewer (no heading, link, image, table or raw HTML can come out of a claim) and kept on one
line per claim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from medscribe.domain.emr import FIELDS, LIST_FIELDS

FORMATS = ("json", "markdown")
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")  # emphasis, code, links and images, HTML, entities, tables
_LEADING_MARKER = re.compile(r"^([-+=]|\d+(?=[.)]))")  # a list item or a heading underline at the start
_SPACE = re.compile(r"\s+")


def inline(value: Any) -> str:
    """`value` as one line of Markdown text that renders literally."""
    text = _SPECIAL.sub(r"\\\1", _SPACE.sub(" ", str(value)).strip())
    return _LEADING_MARKER.sub(_escaped_marker, text, count=1)


def _escaped_marker(match: re.Match[str]) -> str:
    marker = match.group(0)
    return f"{marker}\\" if marker.isdigit() else f"\\{marker}"  # "1\." is an ordered list's escape


def _cited(lines: Any) -> str:
    numbers = [str(int(n)) for n in lines or []]
    if not numbers:
        return " *(uncited)*"
    return f" *(line{'s' if len(numbers) > 1 else ''} {', '.join(numbers)})*"


def _sections(note: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for section in note.get("sections") or []:
        out += ["", f"## {inline(section.get('name', ''))}", ""]
        items = section.get("items") or []
        out += [f"- {inline(item.get('text', ''))}{_cited(item.get('lines'))}" for item in items]
        if not items:
            out.append("*Nothing documented.*")
    return out


def _emr(note: Mapping[str, Any]) -> list[str]:
    record = note.get("record", note)
    out = ["", "## EMR record", ""]
    for name in FIELDS:
        value = record.get(name) if isinstance(record, Mapping) else None
        if name in LIST_FIELDS and isinstance(value, list):
            out.append(f"- **{inline(name)}**:" + ("" if value else " —"))
            out += [f"  - {inline(entry)}" for entry in value]
        else:
            out.append(f"- **{inline(name)}**: {inline(value) if value not in (None, '') else '—'}")
    return out


def signed_markdown(export: Mapping[str, Any]) -> str:
    """`export` is WorkspacePort.export's answer: {"encounter_id", "version": {...}, "note": {...}}."""
    version: Mapping[str, Any] = export["version"]
    note: Mapping[str, Any] = export["note"]
    head = [
        f"# Signed note {inline(export['encounter_id'])}",
        "",
        f"- Version: {int(version['version'])}",
        f"- Signed by: {inline(version.get('signed_by') or '')} ({inline(version.get('signed_role') or '')})",
        f"- Signed at: {inline(version.get('signed_at') or '')}",
    ]
    if note.get("template"):
        head.append(f"- Template: {inline(note['template'])}")
    if note.get("amend_reason"):
        head.append(f"- Amendment reason: {inline(note['amend_reason'])}")
    body = _sections(note) if "sections" in note else _emr(note)
    return "\n".join([*head, *body]) + "\n"
