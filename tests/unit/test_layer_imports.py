"""Each handler imports only what its route's dependency layer holds: importing a handler in a fresh
process must not pull a library that the route's requirements file does not list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medscribe.routes import ENDPOINTS, ROUTES

ROOT = Path(__file__).resolve().parents[2]
# distribution -> the module it installs, for the libraries only some layers carry
HEAVY = {"jiwer": "jiwer", "whisper-normalizer": "whisper_normalizer", "requests": "requests",
         "opensearch-py": "opensearchpy", "tscribe": "tscribe"}


def _layer_packages(requirements: str, seen: frozenset[str] = frozenset()) -> set[str]:
    path = (ROOT / requirements).resolve()
    names: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            included = (path.parent / line[3:].strip()).resolve()
            if str(included) not in seen:
                names |= _layer_packages(str(included.relative_to(ROOT)), seen | {str(path)})
        elif line:
            names.add(line.split("==")[0].split("[")[0].lower())
    return names


@pytest.mark.parametrize("handler", [*ROUTES, *ENDPOINTS], ids=lambda h: h.name)
def test_handler_imports_only_what_its_layer_holds(handler, tmp_path) -> None:  # type: ignore[no-untyped-def]
    requirements = getattr(handler, "requirements", "layers/deps/requirements.txt")
    allowed = _layer_packages(requirements)
    probe = (
        "import importlib.util, json, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('h', {str(ROOT / handler.handler_path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "try:\n"
        "    spec.loader.exec_module(module)\n"
        "except Exception as exc:\n"
        "    pass  # missing AWS resources at import are fine here; only the imports matter\n"
        f"print(json.dumps(sorted(m for m in {sorted(HEAVY.values())!r} if m in sys.modules)))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
           "MEDSCRIBE_SEARCH_URL": f"sqlite:///{tmp_path}/s.db", "POWERTOOLS_TRACE_DISABLED": "true"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    forbidden = {module for dist, module in HEAVY.items() if dist not in allowed}
    assert not imported & forbidden, f"{handler.name} imports {sorted(imported & forbidden)} not in {requirements}"
