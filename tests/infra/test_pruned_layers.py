"""The layer pruning rules (stacks.bundling.LAYER_PRUNING) keep everything the functions import.

The Lambda layers hold aarch64 wheels for CPython 3.14, which this host cannot load. So each
dependency layer is built here again by the same bundler, from the same requirements files and with
the same pruning, only with wheels for this host's platform and Python; the pins are exact, so the
packages and the files pruned are the ones Lambda gets (a transitive dependency without a pin may
differ with the Python version: numpy 2.5 on 3.14, 2.4 on 3.11). Then a fresh interpreter that sees
nothing but that pruned layer and the code layer (`-S`: no site-packages, hence not this virtualenv)
- imports each handler, as the Lambda runtime does at a cold start (index: also the OpenSearch
  adapter, which its AWS configuration loads), and
- renders a Transcribe output with tscribe (medscribe.adapters.tscribe_files: pandas for the CSV,
  python-docx and a matplotlib/Agg confidence chart for the DOCX), as the transcript and reconcile
  functions do for every completed job.

Needs PyPI (pip fetches the wheels: about 10 s per layer with a warm pip cache).
"""

from __future__ import annotations

import base64
import io
import json
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from medscribe.routes import ENDPOINTS, ROUTES, Endpoint, Route
from medscribe.settings import function_env, load_settings
from stacks.bundling import LAYER_PRUNING, PipLayerBundling
from tests import FIXTURES
from tests.infra.helpers import ROOT

pytestmark = pytest.mark.infra

CODE_LAYER = ROOT / "layers" / "medscribe" / "python"
HOST_PLATFORMS = (f"manylinux2014_{platform.machine()}", f"manylinux_2_28_{platform.machine()}")
ARTIFACTS = "layers/artifacts/requirements.txt"
# Modules a handler imports only in its AWS configuration, after the cold start.
AWS_ONLY_IMPORTS = {"index": "medscribe.adapters.search_opensearch"}


@pytest.fixture(scope="session")
def host_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """requirements file -> its layer's `python/` folder, built for this host and pruned."""
    layers = {}
    for requirements in sorted({handler.requirements for handler in (*ROUTES, *ENDPOINTS)}):
        bundler = PipLayerBundling(
            ROOT / requirements, python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
            platforms=HOST_PLATFORMS,
        )
        assert bundler.prune == LAYER_PRUNING
        output = tmp_path_factory.mktemp(Path(requirements).parent.name)
        bundler.try_bundle(str(output))
        layers[requirements] = output / "python"
    return layers


def run_isolated(code: str, layer: Path, tmp_path: Path) -> str:
    """Run `code` in a fresh interpreter whose only packages are `layer` and the code layer."""
    env = function_env(
        table="t", input_bucket="input", artifacts_bucket="artifacts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:t", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        settings=load_settings(), search_url=f"sqlite:///{tmp_path / 'search.db'}",
    )
    env |= {"PYTHONPATH": f"{layer}:{CODE_LAYER}", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_TRACE_DISABLED": "true"}
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_artifacts_layer_is_pruned(host_layers: dict[str, Path]) -> None:
    layer = host_layers[ARTIFACTS]
    assert (layer / "pandas" / "_libs").is_dir()
    assert not list(layer.rglob("tests"))
    assert not list(layer.rglob("*.pyi"))
    assert not list((layer / "fontTools").rglob("*.so"))
    assert (layer / "fontTools" / "misc" / "bezierTools.py").is_file()
    assert not (layer / "bin").exists()


@pytest.mark.parametrize("handler", [*ROUTES, *ENDPOINTS], ids=lambda handler: handler.name)
def test_each_handler_imports_with_its_pruned_layer_alone(
    handler: Route | Endpoint, host_layers: dict[str, Path], tmp_path: Path
) -> None:
    extra = AWS_ONLY_IMPORTS.get(handler.name)
    code = (
        "import importlib, importlib.util, sys\n"
        "assert not any('site-packages' in entry for entry in sys.path), sys.path\n"
        f"spec = importlib.util.spec_from_file_location('handler', {str(ROOT / handler.handler_path)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        f"{f'importlib.import_module({extra!r})' if extra else ''}\n"
        "print('imported')\n"
    )
    assert run_isolated(code, host_layers[handler.requirements], tmp_path).strip() == "imported"


def test_tscribe_writes_the_csv_and_the_docx_with_its_chart_from_the_pruned_layer(
    host_layers: dict[str, Path], tmp_path: Path
) -> None:
    assert all(route.requirements == ARTIFACTS for route in ROUTES if route.name in ("transcript", "reconcile"))
    output = FIXTURES / "transcribe-output" / "tscribe" / "03-speaker-identification.json"
    code = (
        "import base64, json, sys\n"
        "from medscribe.adapters.tscribe_files import render\n"
        f"files = render(json.loads(open({str(output)!r}, encoding='utf-8').read()))\n"
        "import matplotlib\n"
        "print(json.dumps({'files': {name: base64.b64encode(data).decode() for name, data in files.items()},\n"
        "                  'backend': matplotlib.get_backend(),\n"
        "                  'modules': sorted({name.split('.')[0] for name in sys.modules})}))\n"
    )
    result = json.loads(run_isolated(code, host_layers[ARTIFACTS], tmp_path))
    files = {name: base64.b64decode(data) for name, data in result["files"].items()}
    assert files["csv"].startswith(b",start_time,end_time,speaker,comment\n")
    assert files["csv"].count(b"\n") > 10
    with zipfile.ZipFile(io.BytesIO(files["docx"])) as docx:
        charts = [name for name in docx.namelist() if name.startswith("word/media/")]
        assert charts, "the DOCX has no chart"
        assert docx.read(charts[0]).startswith(b"\x89PNG")
        assert "Confidence" in docx.read("word/document.xml").decode()  # tscribe's statistics table
    assert result["backend"].lower() == "agg"
    assert {"tscribe", "pandas", "matplotlib", "docx", "fontTools"} <= set(result["modules"])
