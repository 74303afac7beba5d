"""Dependency layer built on the host with pip, without Docker.

`pip install --platform manylinux2014_aarch64 --only-binary=:all:` fetches the wheels the Lambda
runtime needs, whatever the host's own platform and Python version. The asset hash is computed from
the source (the requirements file and the pip options that select wheels), so a synth reuses the
bundle already in `cdk.out/asset.<hash>`; only a changed requirements file, runtime or platform
triggers a new pip run.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

# BundlingOptions requires an image; PipLayerBundling never falls back to Docker, so it is never pulled.
UNUSED_IMAGE = DockerImage.from_registry("unused-local-bundling-only")


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Installs `requirements` into `<output_dir>/python` for one Lambda platform and Python version."""

    def __init__(self, requirements: Path, *, python_version: str, platform: str) -> None:
        self.requirements = requirements
        self.wheel_selection = [
            "--platform",
            platform,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--python-version",
            python_version,
        ]

    def asset_hash(self) -> str:
        digest = hashlib.sha256(self.requirements.read_bytes())
        digest.update("\0".join(self.wheel_selection).encode())
        return digest.hexdigest()

    def command(self, output_dir: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-r",
            str(self.requirements),
            "--target",
            str(Path(output_dir) / "python"),
            *self.wheel_selection,
            "--upgrade",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
        ]

    def try_bundle(self, output_dir: str, *, image: DockerImage | None = None, **_options: Any) -> bool:
        # Raise rather than return False: False makes CDK fall back to Docker, which is not available.
        result = subprocess.run(self.command(output_dir), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not build the dependency layer from {self.requirements} "
                f"(exit {result.returncode}):\n{result.stderr.strip()}"
            )
        return True


def dependency_layer_code(requirements_dir: Path, runtime: lambda_.Runtime, platform: str) -> lambda_.Code:
    """Layer code with the third-party packages of `requirements_dir/requirements.txt`, built locally."""
    bundler = PipLayerBundling(
        requirements_dir / "requirements.txt",
        python_version=runtime.name.removeprefix("python"),
        platform=platform,
    )
    return lambda_.Code.from_asset(
        str(requirements_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundler.asset_hash(),
        bundling=BundlingOptions(image=UNUSED_IMAGE, local=bundler),
    )
