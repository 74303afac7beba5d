"""Each handler imports, in a fresh process with the environment the stack gives its function, without
any error, and only what its route's dependency layer holds: importing a handler must not pull a
library that the route's requirements file does not list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medscribe.routes import ENDPOINTS, ROUTES, WORKSPACE, WORKSPACE_AUTHORIZER
from medscribe.settings import function_env, load_settings

ROOT = Path(__file__).resolve().parents[2]
# distribution -> the module it installs, for the libraries only some layers carry
HEAVY = {"jiwer": "jiwer", "whisper-normalizer": "whisper_normalizer", "requests": "requests",
         "opensearch-py": "opensearchpy", "tscribe": "tscribe", "pyjwt": "jwt", "cryptography": "cryptography"}


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


@pytest.mark.parametrize("handler", [*ROUTES, *ENDPOINTS, WORKSPACE, WORKSPACE_AUTHORIZER], ids=lambda h: h.name)
def test_handler_imports_only_what_its_layer_holds(handler, tmp_path) -> None:  # type: ignore[no-untyped-def]
    requirements = handler.requirements
    allowed = _layer_packages(requirements)
    probe = (
        "import importlib.util, json, os, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'layers' / 'medscribe' / 'python')!r})  # this checkout's code layer\n"
        f"spec = importlib.util.spec_from_file_location('h', {str(ROOT / handler.handler_path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)  # any error at import fails the test\n"
        f"print(json.dumps(sorted(m for m in {sorted(HEAVY.values())!r} if m in sys.modules)))\n"
    )
    # the function's environment as stacks/ builds it (names are placeholders: importing calls no AWS API)
    env = function_env(table="medscribe-dev-table", input_bucket="medscribe-dev-input",
                       artifacts_bucket="medscribe-dev-artifacts", topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                       kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k", settings=load_settings(),
                       search_url=f"sqlite:///{tmp_path}/s.db")
    env |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": f"medscribe-dev-{handler.name}",
            "POWERTOOLS_SERVICE_NAME": f"medscribe-{handler.name}", "POWERTOOLS_METRICS_NAMESPACE": "medscribe",
            "POWERTOOLS_LOGGER_LOG_EVENT": "false", "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            "POWERTOOLS_TRACE_DISABLED": "true"}  # no X-Ray daemon here
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    forbidden = {module for dist, module in HEAVY.items() if dist not in allowed}
    assert not imported & forbidden, f"{handler.name} imports {sorted(imported & forbidden)} not in {requirements}"
