"""Plain-text dialogues with speaker-prefixed turns -> (speaker, text) turns. Pure.

Accepted prefixes (case-insensitive): `D:`/`P:`, `Doctor:`/`Patient:`, `Clinician:`,
`[doctor]`/`[patient]`/`[patient_guest]`. A turn runs until the next prefixed line, so unprefixed
lines continue the current turn (Fareez transcripts do this), and a prefix letter followed by a space
instead of a colon (`P No.`) is still a turn when it alternates speakers. CRLF and LF may be mixed.

Also understood:
- a timestamp before the speaker, `[start-end] DOCTOR: text` (the PriMock57 derived dialogues); the
  times are kept on the turn, and PriMock's markup (`<UNSURE>..</UNSURE>`, `<UNIN/>`) is removed;
- bracket tags in the middle of a line (`... okay [patient] yes ...`: some ACI-BENCH ASR dialogues
  hold every turn on one line); a bracket tag always starts a new turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medscribe.domain.transcript_lines import Line

CLINICIAN = "clinician"
PATIENT = "patient"
GUEST = "guest"  # someone with the patient (ACI-BENCH `[patient_guest]`)

_TIMESTAMP = r"(?:\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]\s*)?"
_PREFIX = re.compile(
    r"^\s*" + _TIMESTAMP
    + r"(?:\[(?P<bracket>doctor|patient_guest|patient|clinician)\]|(?P<word>doctor|patient|clinician|dr|d|p)\s*:)\s*",
    re.IGNORECASE,
)
_LOOSE = re.compile(r"^\s*(?P<letter>[DP])\s+(?=\S)")  # "P No." (missing colon)
_INLINE_TAG = re.compile(r"(?<=\S)\s+(?=\[(?:doctor|patient_guest|patient|clinician)\])", re.IGNORECASE)
_MARKUP = re.compile(r"</?UNSURE>|<UNIN\s*/>", re.IGNORECASE)
_ROLES = {"d": CLINICIAN, "dr": CLINICIAN, "doctor": CLINICIAN, "clinician": CLINICIAN,
          "p": PATIENT, "patient": PATIENT, "patient_guest": GUEST}


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    start: float | None = None  # seconds, when the dialogue carries timestamps
    end: float | None = None


@dataclass
class _Open:
    speaker: str
    parts: list[str]
    start: float | None
    end: float | None


def _prefix(line: str, previous: str | None) -> tuple[str, str, float | None, float | None] | None:
    match = _PREFIX.match(line)
    if match:
        role = _ROLES[(match.group("bracket") or match.group("word")).lower()]
        start, end = match.group("start"), match.group("end")
        return (role, line[match.end():], float(start) if start else None, float(end) if end else None)
    loose = _LOOSE.match(line)
    if loose:
        role = _ROLES[loose.group("letter").lower()]
        if role != previous:  # only a speaker change makes a bare letter a prefix
            return role, line[loose.end():], None, None
    return None


def _physical_lines(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        cleaned = " ".join(_MARKUP.sub(" ", raw).split())
        if cleaned:
            lines.extend(_INLINE_TAG.split(cleaned))
    return lines


def parse_dialogue(text: str) -> list[Turn]:
    """Turns in order; text before the first prefix is ignored (titles, notes)."""
    turns: list[_Open] = []
    for line in _physical_lines(text):
        found = _prefix(line, turns[-1].speaker if turns else None)
        if found:
            speaker, rest, start, end = found
            turns.append(_Open(speaker, [rest.strip()] if rest.strip() else [], start, end))
        elif turns:
            turns[-1].parts.append(line)
    return [Turn(t.speaker, " ".join(t.parts), t.start, t.end) for t in turns if t.parts]


def dialogue_lines(text: str) -> list[Line]:
    """The dialogue as numbered transcript lines (one per turn), the shape Transcribe output becomes."""
    return [
        Line(n=index, speaker=turn.speaker, start=turn.start or 0.0, end=turn.end or turn.start or 0.0,
             text=turn.text, confidence=None)
        for index, turn in enumerate(parse_dialogue(text), start=1)
    ]


def looks_like_dialogue(text: str) -> bool:
    """True when at least two turns carry a speaker prefix."""
    return sum(1 for line in _physical_lines(text) if _PREFIX.match(line)) >= 2
