"""Plain-text dialogues with speaker-prefixed turns -> (speaker, text) turns. Pure.

Accepted prefixes (case-insensitive): `D:`/`P:`, `Doctor:`/`Patient:`, `Clinician:`,
`[doctor]`/`[patient]`. A turn runs until the next prefixed line, so unprefixed lines continue the
current turn (Fareez transcripts do this), and a prefix letter followed by a space instead of a
colon (`P No.`) is still a turn when it alternates speakers. CRLF and LF may be mixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLINICIAN = "clinician"
PATIENT = "patient"

_PREFIX = re.compile(
    r"^\s*(?:\[(?P<bracket>doctor|patient|clinician)\]|(?P<word>doctor|patient|clinician|dr|d|p)\s*:)\s*",
    re.IGNORECASE,
)
_LOOSE = re.compile(r"^\s*(?P<letter>[DP])\s+(?=\S)")  # "P No." (missing colon)
_ROLES = {"d": CLINICIAN, "dr": CLINICIAN, "doctor": CLINICIAN, "clinician": CLINICIAN,
          "p": PATIENT, "patient": PATIENT}


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


def _prefix(line: str, previous: str | None) -> tuple[str, str] | None:
    match = _PREFIX.match(line)
    if match:
        role = _ROLES[(match.group("bracket") or match.group("word")).lower()]
        return role, line[match.end():]
    loose = _LOOSE.match(line)
    if loose:
        role = _ROLES[loose.group("letter").lower()]
        if role != previous:  # only a speaker change makes a bare letter a prefix
            return role, line[loose.end():]
    return None


def parse_dialogue(text: str) -> list[Turn]:
    """Turns in order; text before the first prefix is ignored (titles, notes)."""
    turns: list[tuple[str, list[str]]] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        found = _prefix(line, turns[-1][0] if turns else None)
        if found:
            turns.append((found[0], [found[1].strip()] if found[1].strip() else []))
        elif turns:
            turns[-1][1].append(line)
    return [Turn(speaker, " ".join(parts)) for speaker, parts in turns if parts]


def looks_like_dialogue(text: str) -> bool:
    """True when at least two lines carry a speaker prefix."""
    lines = text.replace("\r\n", "\n").split("\n")
    return sum(1 for line in lines if _PREFIX.match(line)) >= 2
