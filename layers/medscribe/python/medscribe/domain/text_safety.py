"""Text from uploads made safe for where it is shown: spreadsheet cells and terminals. Pure.

Transcripts, notes and object keys come from users: a key may hold terminal control sequences
(`ESC ] 0 ; title BEL` renames a terminal window; others move the cursor or rewrite the screen),
and a transcript line may start with `=`, which spreadsheet programs run as a formula when the CSV
is opened (`=HYPERLINK(...)` sends data elsewhere on a click; OWASP, "CSV Injection").
- `csv_cell`: a text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
  leading `'`, which spreadsheets show as text; numbers (`-0.5`) stay numbers.
- `printable`: C0 and C1 control characters (ESC, BEL, CSI...) but tab and newline are shown as
  `\\xNN` instead of being sent to the terminal.
"""

from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def csv_cell(value: object) -> object:
    """`value` as a CSV cell no spreadsheet runs as a formula (non-strings are returned unchanged)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def printable(text: str) -> str:
    """`text` with control characters (but tab and newline) shown as `\\xNN`."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
