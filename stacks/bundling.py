"""Dependency layers built on the host with pip, without Docker.

`pip install --platform <platforms> --only-binary=:all:` fetches the wheels the Lambda runtime
needs, whatever the host's own platform and Python version. Lambda's python3.14 runtime runs on
Amazon Linux 2023 (glibc 2.34), so `manylinux_2_28` wheels are accepted next to `manylinux2014`
ones (matplotlib publishes no manylinux2014 aarch64 wheel for CPython 3.14).

After pip, `LAYER_PRUNING` removes what no function imports at run time (test suites, C/Cython
sources and headers, type stubs, console scripts, fontTools' optional compiled modules). Lambda
counts a function's code and all its layers, unzipped, against 262,144,000 bytes; unpruned, the
tscribe layer (pandas, matplotlib) filled 87% of that. tests/contract/test_package_size.py keeps a
quarter free; tests/infra/test_pruned_layers.py imports the handlers and runs tscribe's DOCX writer
on pruned layers.

The asset hash is computed from the source: the requirements file, every file it includes with
`-r`/`-c` (resolved relative to the including file, as pip does), the pip options that select
wheels and the pruning rules. A synth therefore reuses the bundle already in `cdk.out/asset.<hash>`;
only a changed requirement, runtime, platform or pruning rule triggers a new pip run.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PruneRules:
    """What a dependency layer leaves out after pip has installed it into `root` (the layer's `python/`).

    - `directories`: folder names (glob patterns) removed wherever they occur;
    - `suffixes`: files removed wherever they occur;
    - `paths`: files or folders matching these glob patterns relative to `root`.
    """

    directories: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def fingerprint(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    def apply(self, root: Path) -> int:
        """Remove what the rules name from `root`; returns the bytes removed."""
        doomed = {path for pattern in self.paths for path in root.glob(pattern)}
        doomed.update(
            path for path in root.rglob("*")
            if (path.is_dir() and any(fnmatch.fnmatchcase(path.name, pattern) for pattern in self.directories))
            or (path.is_file() and path.name.endswith(self.suffixes))
        )
        removed = 0
        for path in sorted(doomed, key=lambda p: len(p.parts)):  # a folder before what is inside it
            if path.is_dir() and not path.is_symlink():
                removed += sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
                shutil.rmtree(path)
            elif path.is_file() or path.is_symlink():
                removed += path.lstat().st_size
                path.unlink()
        return removed


# Nothing here is imported on the functions' code paths (tests/infra/test_pruned_layers.py imports every
# handler and runs tscribe's DOCX writer on layers pruned by these rules):
LAYER_PRUNING = PruneRules(
    # the packages' own test suites (pandas 16 MB, numpy 7 MB, matplotlib 2 MB; the `testing` modules
    # that pandas and numpy import stay) and stub-only packages (read by type checkers, not by Python)
    directories=("tests", "*-stubs"),
    # C and Cython sources and headers (for building extensions against numpy or lxml, and the .c of
    # fontTools' compiled modules) and type stubs
    suffixes=(".c", ".h", ".pyx", ".pxd", ".pxi", ".pyi"),
    paths=(
        # console scripts (their shebang names the build host's interpreter; nothing runs them) and man pages
        "bin",
        "share",
        # the data of matplotlib's examples (`cbook.get_sample_data`)
        "matplotlib/mpl-data/sample_data",
        # fontTools' optional compiled speed-ups (13 MB, built with debug info), each beside the .py it is
        # compiled from; Python falls back to the .py, as with fontTools' pure-Python wheel. matplotlib
        # imports fontTools.agl for every chart (via dviread) and the rest only for PDF/PS output.
        "fontTools/**/*.so",
    ),
)


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Installs `requirements` into `<output_dir>/python` for one Lambda architecture and Python version,
    then removes what `prune` names."""

    def __init__(
        self,
        requirements: Path,
        *,
        python_version: str,
        platforms: Sequence[str],
        prune: PruneRules = LAYER_PRUNING,
    ) -> None:
        self.requirements = requirements.resolve()
        self.prune = prune
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
        digest.update("\0".join(self.wheel_selection).encode() + b"\0")
        digest.update(self.prune.fingerprint())
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
        self.prune.apply(Path(output_dir) / "python")
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
