"""No source file outside tests/ is over 500 lines (issue 15): a module that long holds more than one
concern, and is split along its seams instead."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500
SOURCE_TREES = ("layers", "lambdas", "stacks", "bench", "scripts")


def source_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for tree in SOURCE_TREES:
        files += [path for path in (ROOT / tree).rglob("*.py") if "__pycache__" not in path.parts]
    return sorted(files)


def test_the_scan_sees_both_packages_and_the_stack() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in source_files()}
    assert {"app.py", "stacks/medscribe_stack.py", "layers/medscribe/python/medscribe/routes.py",
            "layers/local/medscribe_local/runtime.py", "bench/coldstart.py"} <= names


def test_no_source_file_is_over_500_lines() -> None:
    lengths = {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in source_files()}
    assert {name: lines for name, lines in lengths.items() if lines > LIMIT} == {}
