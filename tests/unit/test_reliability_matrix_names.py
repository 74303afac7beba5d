"""The reliability matrix (the docstring of tests/e2e/test_reliability_matrix.py) names tests that exist:
every `path.py::name`, every continued `::name` (same file as the path before it) and every `here: name`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MATRIX = TESTS / "e2e" / "test_reliability_matrix.py"


def named_tests() -> list[tuple[Path, str]]:
    docstring = ast.get_docstring(ast.parse(MATRIX.read_text(encoding="utf-8"))) or ""
    found: list[tuple[Path, str]] = []
    current: Path | None = None
    for token in re.finditer(r"(?P<path>[\w/]+\.py)(?:::(?P<name>\w+))?|::(?P<more>\w+)|here: (?P<here>test_\w+)",
                             docstring):
        if token.group("path"):
            path = token.group("path").removeprefix("tests/")
            current = None if path.startswith("bench/") else TESTS / path
            if token.group("name") and current is not None:
                found.append((current, token.group("name")))
            elif current is not None:
                found.append((current, ""))
        elif token.group("more") and current is not None:
            found.append((current, token.group("more")))
        elif token.group("here"):
            found.append((MATRIX, token.group("here")))
    return found


def test_every_test_the_matrix_names_exists() -> None:
    named = named_tests()
    assert len(named) > 60
    missing = []
    for path, name in named:
        if not path.exists():
            missing.append(str(path.relative_to(TESTS)))
        elif name and not re.search(rf"^(?:async )?def {name}\b", path.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(f"{path.relative_to(TESTS)}::{name}")
    assert missing == []
