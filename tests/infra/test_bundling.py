"""The dependency-layer bundler: included requirement files, asset hash, the pip command, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.bundling import LAYER_PRUNING, PipLayerBundling, PruneRules, requirement_files
from stacks.layers import LAYER_PLATFORMS
from tests.infra.helpers import ROOT

pytestmark = pytest.mark.infra


def bundler(requirements: Path) -> PipLayerBundling:
    return PipLayerBundling(requirements, python_version="3.14", platforms=LAYER_PLATFORMS)


@pytest.fixture
def layers(tmp_path: Path) -> Path:
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "requirements.txt").write_text("pydantic==2.14.3\n")
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "requirements.txt").write_text(
        "# heavy routes\n-r ../deps/requirements.txt\n--constraint=constraints.txt\ntscribe==1.3.1\n"
    )
    (tmp_path / "artifacts" / "constraints.txt").write_text("numpy<3\n")
    return tmp_path


def test_included_files_are_resolved_relative_to_the_including_file(layers: Path) -> None:
    assert requirement_files(layers / "artifacts" / "requirements.txt") == [
        (layers / "artifacts" / "requirements.txt").resolve(),
        (layers / "deps" / "requirements.txt").resolve(),
        (layers / "artifacts" / "constraints.txt").resolve(),
    ]


def test_a_missing_included_file_fails_synth(layers: Path) -> None:
    (layers / "deps" / "requirements.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"requirements\.txt is missing"):
        requirement_files(layers / "artifacts" / "requirements.txt")


def test_the_asset_hash_follows_included_files(layers: Path) -> None:
    top = layers / "artifacts" / "requirements.txt"
    before = bundler(top).asset_hash()
    assert bundler(top).asset_hash() == before
    (layers / "deps" / "requirements.txt").write_text("pydantic==2.14.4\n")
    assert bundler(top).asset_hash() != before


def test_the_asset_hash_follows_the_wheel_selection(layers: Path) -> None:
    top = layers / "deps" / "requirements.txt"
    only_2014 = PipLayerBundling(top, python_version="3.14", platforms=["manylinux2014_aarch64"])
    assert only_2014.asset_hash() != bundler(top).asset_hash()


def test_the_asset_hash_follows_the_pruning_rules(layers: Path) -> None:
    top = layers / "deps" / "requirements.txt"
    keep_tests = PruneRules(directories=("*-stubs",), suffixes=LAYER_PRUNING.suffixes, paths=LAYER_PRUNING.paths)
    assert bundler(top).prune == LAYER_PRUNING
    assert PipLayerBundling(top, python_version="3.14", platforms=LAYER_PLATFORMS, prune=keep_tests).asset_hash() != (
        bundler(top).asset_hash()
    )


def test_pruning_removes_what_the_rules_name_and_nothing_else(tmp_path: Path) -> None:
    files = {
        "pandas/__init__.py": "kept", "pandas/testing.py": "kept", "pandas/tests/test_frame.py": "x" * 10,
        "pandas/_libs/lib.pyi": "x" * 3, "pandas/_libs/lib.cpython-314-aarch64-linux-gnu.so": "kept",
        "numpy/_core/include/numpy/ndarrayobject.h": "x" * 4, "numpy/_core/tests/data/umath.csv": "x" * 5,
        "lxml/etree.pyx": "x", "lxml/includes/tree.pxd": "x", "lxml/includes/__init__.py": "kept",
        "wrapt-stubs/__init__.pyi": "x", "bin/ttx": "x" * 2, "share/man/man1/ttx.1": "x",
        "matplotlib/mpl-data/sample_data/goog.npz": "x", "matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf": "kept",
        "fontTools/misc/bezierTools.py": "kept", "fontTools/misc/bezierTools.c": "x",
        "fontTools/misc/bezierTools.cpython-314-aarch64-linux-gnu.so": "x" * 6, "fontTools/agl.py": "kept",
        "docx/templates/default.docx": "kept",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    removed = LAYER_PRUNING.apply(tmp_path)
    left = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file()}
    assert left == {name for name, content in files.items() if content == "kept"}
    assert removed == sum(len(content) for content in files.values() if content != "kept")


def test_pip_accepts_manylinux_2_28_wheels_and_runs_next_to_the_file(layers: Path) -> None:
    top = layers / "artifacts" / "requirements.txt"
    command = bundler(top).command("/tmp/out")
    assert command[command.index("-r") + 1] == "requirements.txt"  # resolved from cwd, like its -r lines
    platforms = [command[i + 1] for i, word in enumerate(command) if word == "--platform"]
    assert platforms == ["manylinux2014_aarch64", "manylinux_2_28_aarch64"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == "3.14"


def test_the_real_requirement_files_resolve() -> None:
    artifacts = requirement_files(ROOT / "layers" / "artifacts" / "requirements.txt")
    assert (ROOT / "layers" / "deps" / "requirements.txt").resolve() in artifacts
