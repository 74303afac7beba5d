"""What a handler's cold start does (bench/coldstart.py times it): importing a handler creates no AWS
or OpenSearch client and makes no request, and imports none of the heavy libraries that only some
of its requests need (they are imported on the path that needs them). Each import runs in a fresh
interpreter whose sys.path holds this checkout's code layer, with the environment the stack gives
the function."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medscribe.routes import ENDPOINTS, ROUTES, WORKSPACE, WORKSPACE_AUTHORIZER
from medscribe.settings import function_env, load_settings

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "medscribe" / "python"
# Imported only on the paths that need them: the OpenSearch client (index, first batch), tscribe and
# pandas (transcript, a completed job), the model adapters (a note that needs a model), requests and
# jiwer (scoring and self-heal only); the workspace's web app and templates (its first request).
LAZY = ["opensearchpy", "medscribe.adapters.search_opensearch", "tscribe", "pandas", "matplotlib", "docx",
        "medscribe.adapters.llm.bedrock", "medscribe.adapters.llm.openai_compat", "requests", "jiwer",
        "starlette", "jinja2", "medscribe.workspace", "jwt"]
# PyJWT: the workspace authorizer verifies a token on every request it gets
NEEDED_AT_IMPORT = {"score": {"requests", "jiwer"}, "selfheal": {"jiwer"}, "workspace_authorizer": {"jwt"}}
# An endpoint that refuses connections at once: a client built or a request made at import would fail.
UNREACHABLE_SEARCH = "https://127.0.0.1:9"
# The X-Ray SDK's sampler builds its own (unsigned) client when Powertools' Tracer loads it: the one
# client init may create, never called at import.
TRACING_CLIENTS = {"xray"}


def import_handler(handler_path: str, tmp_path: Path, **extra_env: str) -> dict[str, list[str]]:
    """Import the handler in a fresh interpreter; the clients botocore made and the LAZY modules loaded."""
    probe = "\n".join([
        "import importlib.util, json, sys",
        f"sys.path.insert(0, {str(LAYER)!r})",
        "sys.path[:] = [p for p in sys.path if not p.endswith('layers/medscribe/python') or p == sys.path[0]]",
        "import botocore.session",
        "made = []",
        "create = botocore.session.Session.create_client",
        "def counting(self, service_name, *args, **kwargs):",
        "    made.append(service_name)",
        "    return create(self, service_name, *args, **kwargs)",
        "botocore.session.Session.create_client = counting",
        f"spec = importlib.util.spec_from_file_location('handler', {str(ROOT / handler_path)!r})",
        "module = importlib.util.module_from_spec(spec)",
        "spec.loader.exec_module(module)",
        "import medscribe",
        f"assert medscribe.__file__.startswith({str(LAYER)!r}), medscribe.__file__",
        f"print(json.dumps({{'clients': made, 'modules': [m for m in {LAZY!r} if m in sys.modules],",
        "                  'patched': sorted(m for m in sys.modules if m.startswith('aws_xray_sdk.ext.'))}))",
    ])
    env = function_env(table="t", input_bucket="in", artifacts_bucket="out",
                       topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                       kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                       settings=load_settings(), search_url=UNREACHABLE_SEARCH)
    env |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",  # never used: no call is made
            "POWERTOOLS_TRACE_DISABLED": "true", **extra_env}
    result = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("handler", [*ROUTES, *ENDPOINTS, WORKSPACE, WORKSPACE_AUTHORIZER], ids=lambda h: h.name)
def test_a_handler_imports_without_clients_or_libraries_it_needs_later(handler, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    found = import_handler(handler.handler_path, tmp_path)
    ours = set(found["clients"]) - TRACING_CLIENTS
    assert not ours, f"{handler.name} creates clients at import: {sorted(ours)}"
    unexpected = set(found["modules"]) - NEEDED_AT_IMPORT.get(handler.name, set())
    assert not unexpected, f"{handler.name} imports {sorted(unexpected)} at cold start"


def test_the_index_handler_builds_its_opensearch_client_on_the_first_batch_not_at_import(tmp_path: Path) -> None:
    (index,) = [route for route in ROUTES if route.name == "index"]
    found = import_handler(index.handler_path, tmp_path)  # an https URL: OpenSearch on AWS
    assert not set(found["clients"]) - TRACING_CLIENTS
    assert "opensearchpy" not in found["modules"]


def test_with_tracing_on_only_botocore_is_patched_at_import(tmp_path: Path) -> None:
    """As in Lambda (LAMBDA_TASK_ROOT set, tracing active): X-Ray patches botocore, and its patch_all
    would also have imported requests and the other libraries it supports into every function."""
    (document,) = [route for route in ROUTES if route.name == "document"]
    found = import_handler(document.handler_path, tmp_path, POWERTOOLS_TRACE_DISABLED="false",
                           LAMBDA_TASK_ROOT=str(tmp_path), AWS_LAMBDA_FUNCTION_NAME="medscribe-document")
    assert "aws_xray_sdk.ext.botocore" in found["patched"]
    assert "requests" not in found["modules"]
    assert "aws_xray_sdk.ext.requests" not in found["patched"]
