"""The repository is self-contained: no code, test, benchmark, build or CI file reaches for a `shared`
folder beside the checkout (where the project's original test material came from). A clone has no
such folder; test material lives in tests/fixtures, each source with its SOURCE.txt and licence.

Scanned: every file under tests/, bench/, layers/, lambdas/, stacks/ and .ci/, and app.py and the
Makefile. Not scanned: tests/fixtures (third-party data, not code) and this module (it names the
patterns). The scan walks the folders rather than asking git, so it also runs in CI's copy of the
checkout, which has no .git."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench", "layers", "lambdas", "stacks", ".ci", "app.py", "Makefile")
SKIPPED_DIRS = {"__pycache__", "node_modules", "cdk.out", "build", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

# The spellings a path to the outside folder has taken: a "shared" path component in Python
# (`parent / "shared"`, `"shared" / "data"`, `os.path.join(.., "shared")`), or a relative or absolute
# path through it in any text (`../shared/data/events`, `$(CURDIR)/../shared`, `/work/shared/docs`).
OUTSIDE_SHARED = re.compile(
    r"""/\s*["']shared["']"""          # parent / "shared"
    r"""|["']shared["']\s*/"""         # "shared" / "data"
    r"""|,\s*["']shared["']\s*[,)]"""  # os.path.join(root, "..", "shared", ...)
    r"""|\.\./shared\b"""              # ../shared, ../../shared
    r"""|/shared/(data|docs)\b"""      # any path into the shared data or docs
)


def scanned_files() -> Iterator[Path]:
    for name in SCANNED:
        top = ROOT / name
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in candidates:
            parts = path.relative_to(ROOT).parts
            if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in parts) or not path.is_file():
                continue
            if path.is_relative_to(FIXTURES) or path == Path(__file__).resolve():
                continue
            yield path


def offending_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if OUTSIDE_SHARED.search(line)]


def test_nothing_reads_a_shared_folder_outside_the_repository() -> None:
    found = []
    for path in scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (mp3, model files): no paths to check
        found += [f"{path.relative_to(ROOT)}:{n}: {line}" for n, line in offending_lines(text)]
    assert not found, "paths outside the repository (copy the material into tests/fixtures):\n" + "\n".join(found)


def test_the_scan_covers_the_trees_that_read_test_material() -> None:
    scanned = {path.relative_to(ROOT).as_posix() for path in scanned_files()}
    assert {"tests/dialogues.py", "tests/handlers/conftest.py", "bench/notes.py", "Makefile", ".ci/run",
            "layers/local/medscribe_local/sample_audio.py"} <= scanned
    assert not any(name.startswith("tests/fixtures/") for name in scanned)


@pytest.mark.parametrize("line", [
    'EVENTS = ROOT.parent / "shared" / "data" / "events"',
    'DIALOGUES = Path(__file__).resolve().parents[2] / "shared" / "data" / "dialogues"',
    'SOURCE = project_root().parent / "shared" / "data" / "dialogues" / "fareez-osce"',
    "DATA = os.path.join(ROOT, '..', 'shared', 'data')",
    '"""A payload from ../shared/data/events (see its SOURCE.txt)."""',
    "\tcp -r $(CURDIR)/../shared/data tests/",
    'DOCS = "/work/shared/docs/RELIABILITY.md"',
])
def test_the_spellings_that_were_used_are_caught(line: str) -> None:
    assert offending_lines(line)


@pytest.mark.parametrize("line", [
    'EVENTS = FIXTURES / "events"',
    'def shared_event(path: str) -> dict[str, Any]:',
    '"""A shared client for `service` (thread-safe creation)."""',
    "copied from the shared data set (see tests/fixtures/events/SOURCE.txt)",
])
def test_mentions_that_are_not_paths_pass(line: str) -> None:
    assert not offending_lines(line)
