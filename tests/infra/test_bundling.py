"""The dependency-layer bundler: included requirement files, asset hash, the pip command."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.bundling import PipLayerBundling, requirement_files
from stacks.functions import LAYER_PLATFORMS
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
