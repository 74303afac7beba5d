"""Dependency layers built on the host with pip, without Docker.

`pip install --platform <platforms> --only-binary=:all:` fetches the wheels the Lambda runtime
needs, whatever the host's own platform and Python version. Lambda's python3.14 runtime runs on
Amazon Linux 2023 (glibc 2.34), so `manylinux_2_28` wheels are accepted next to `manylinux2014`
ones (matplotlib publishes no manylinux2014 aarch64 wheel for CPython 3.14).

The asset hash is computed from the source: the requirements file, every file it includes with
`-r`/`-c` (resolved relative to the including file, as pip does), and the pip options that select
wheels. A synth therefore reuses the bundle already in `cdk.out/asset.<hash>`; only a changed
requirement, runtime or platform triggers a new pip run.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

# BundlingOptions requires an image; PipLayerBundling never falls back to Docker, so it is never pulled.
UNUSED_IMAGE = DockerImage.from_registry("unused-local-bundling-only")
INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


def requirement_files(requirements: Path) -> list[Path]:
    """`requirements` and, depth first, every file it includes (`-r`/`-c`), each listed once."""
    seen: list[Path] = []

    def visit(path: Path) -> None:
        path = path.resolve()
        if path in seen:
            return
        if not path.is_file():
            raise FileNotFoundError(f"requirements file {path} is missing")
        seen.append(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            words = shlex.split(line, comments=True)
            for index, word in enumerate(words):
                option, _, value = word.partition("=")
                if word in INCLUDE_OPTIONS and index + 1 < len(words):
                    visit(path.parent / words[index + 1])
                elif option in INCLUDE_OPTIONS and value:
                    visit(path.parent / value)

    visit(requirements)
    return seen


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Installs `requirements` into `<output_dir>/python` for one Lambda architecture and Python version."""

    def __init__(self, requirements: Path, *, python_version: str, platforms: Sequence[str]) -> None:
        self.requirements = requirements.resolve()
        self.wheel_selection = [
            *(option for platform in platforms for option in ("--platform", platform)),
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--python-version",
            python_version,
        ]

    def asset_hash(self) -> str:
        digest = hashlib.sha256()
        for path in requirement_files(self.requirements):
            digest.update(path.read_bytes() + b"\0")
        digest.update("\0".join(self.wheel_selection).encode())
        return digest.hexdigest()

    def command(self, output_dir: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-r",
            self.requirements.name,
            "--target",
            str(Path(output_dir).resolve() / "python"),
            *self.wheel_selection,
            "--upgrade",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
        ]

    def try_bundle(self, output_dir: str, *, image: DockerImage | None = None, **_options: Any) -> bool:
        # Raise rather than return False: False makes CDK fall back to Docker, which is not available.
        # cwd = the file's folder, so its `-r ../deps/requirements.txt` lines resolve as written.
        result = subprocess.run(
            self.command(output_dir), cwd=self.requirements.parent, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not build the dependency layer from {self.requirements} "
                f"(exit {result.returncode}):\n{result.stderr.strip()}"
            )
        return True


def dependency_layer_code(requirements: Path, runtime: lambda_.Runtime, platforms: Sequence[str]) -> lambda_.Code:
    """Layer code with the third-party packages of `requirements`, built locally."""
    bundler = PipLayerBundling(
        requirements,
        python_version=runtime.name.removeprefix("python"),
        platforms=platforms,
    )
    return lambda_.Code.from_asset(
        str(requirements.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundler.asset_hash(),
        bundling=BundlingOptions(image=UNUSED_IMAGE, local=bundler),
    )
