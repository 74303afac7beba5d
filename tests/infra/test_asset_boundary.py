"""The deploy boundary: no local-runtime code in any synthesized Lambda asset.

`medscribe` (layers/medscribe/python) is the code layer; the development package `medscribe_local`
(layers/local: the AWS emulator, the local Transcribe service and speech engine, the report, the CLI)
is installed by `make install` and must never reach Lambda. This reads every asset the template's
functions and layers point at - the files `cdk deploy` would upload - and checks that none of them
holds that package, imports it, or carries the engines only it uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.helpers import ROOT, Synth

pytestmark = pytest.mark.infra

CODE_PACKAGE = ROOT / "layers" / "medscribe" / "python" / "medscribe"
LOCAL_PACKAGE = ROOT / "layers" / "local" / "medscribe_local"
# distributions only the local runtime uses (requirements-dev.txt), by their import names
LOCAL_ONLY_DISTRIBUTIONS = ("moto", "faster_whisper", "ctranslate2", "av", "onnxruntime", "tokenizers")
LOCAL_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:medscribe_local|medscribe\.local|medscribe\.cli)\b", re.M)


def asset_dirs(synth: Synth) -> dict[str, Path]:
    """construct id -> the asset folder of every function's code and every layer's content."""
    found: dict[str, Path] = {}
    for logical_id, resource in synth.template["Resources"].items():
        properties: dict[str, Any] = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            location = properties["Code"]
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            location = properties["Content"]
        else:
            continue
        key = location.get("S3Key")
        if isinstance(key, str) and key.endswith(".zip"):
            found[logical_id] = synth.template_path.parent / f"asset.{key.removesuffix('.zip')}"
    return found


def local_code_in(folder: Path) -> Iterator[str]:
    """What in `folder` is local-runtime code: the package's folder, a module of the CLI, a local-only
    distribution, or a Python file importing any of them."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if is_local_code(relative, path):
            yield relative


def is_local_code(relative: str, path: Path) -> bool:
    parts = relative.split("/")
    local_package = "medscribe_local" in parts or relative.startswith("python/medscribe/local/")
    cli = relative.startswith("python/medscribe/cli") or relative == "python/medscribe/__main__.py"
    engine = len(parts) >= 2 and parts[0] == "python" and parts[1].split("-")[0] in LOCAL_ONLY_DISTRIBUTIONS
    return local_package or cli or engine or (
        path.suffix == ".py" and LOCAL_IMPORT.search(path.read_text(encoding="utf-8", errors="replace")) is not None
    )


def test_every_function_and_layer_asset_was_found(synth: Synth) -> None:
    assets = asset_dirs(synth)
    functions = synth.resources("AWS::Lambda::Function")
    layers = synth.resources("AWS::Lambda::LayerVersion")
    inline = {logical_id for logical_id, function in functions.items() if "ZipFile" in function["Properties"]["Code"]}
    assert set(assets) == set(layers) | (set(functions) - inline)
    assert len(assets) >= 8 + 5  # the routes' and endpoints' functions, the code layer and four dependency layers
    assert all(folder.is_dir() for folder in assets.values())


def test_no_asset_holds_local_runtime_code(synth: Synth) -> None:
    offending = {
        logical_id: found for logical_id, folder in asset_dirs(synth).items() if (found := list(local_code_in(folder)))
    }
    assert offending == {}


def test_the_code_layer_is_exactly_the_medscribe_package(synth: Synth) -> None:
    (code_id,) = [
        logical_id for logical_id, folder in asset_dirs(synth).items() if (folder / "python" / "medscribe").is_dir()
    ]
    shipped = {
        path.relative_to(asset_dirs(synth)[code_id] / "python" / "medscribe").as_posix()
        for path in (asset_dirs(synth)[code_id] / "python" / "medscribe").rglob("*") if path.is_file()
    }
    source = {
        path.relative_to(CODE_PACKAGE).as_posix()
        for path in CODE_PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert shipped == source
    assert "handlers.py" in shipped
    assert "messages.py" in shipped


def test_the_scan_finds_planted_local_code(tmp_path: Path) -> None:
    """The checks above can fail: each kind of local code planted in a copy of a layer is found."""
    (tmp_path / "python" / "medscribe").mkdir(parents=True)
    (tmp_path / "python" / "medscribe" / "routes.py").write_text("ROUTES = ()\n")
    assert list(local_code_in(tmp_path)) == []
    (tmp_path / "python" / "medscribe_local").mkdir()
    (tmp_path / "python" / "medscribe_local" / "runtime.py").write_text("")
    (tmp_path / "python" / "medscribe" / "cli.py").write_text("")
    (tmp_path / "python" / "moto").mkdir()
    (tmp_path / "python" / "moto" / "server.py").write_text("")
    (tmp_path / "python" / "medscribe" / "sneaky.py").write_text("def f():\n    from medscribe_local import cli\n")
    assert list(local_code_in(tmp_path)) == [
        "python/medscribe/cli.py", "python/medscribe/sneaky.py", "python/medscribe_local",
        "python/medscribe_local/runtime.py", "python/moto", "python/moto/server.py",
    ]


def test_the_development_package_is_outside_every_asset_source() -> None:
    """The local package is not under the code layer's asset folder, so no exclude rule is needed to keep it out."""
    assert LOCAL_PACKAGE.is_dir()
    assert (ROOT / "layers" / "medscribe") not in LOCAL_PACKAGE.parents
