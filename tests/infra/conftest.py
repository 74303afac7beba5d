"""Synthesize the CDK app once per session and share the template between the infra tests.

`synth` is the real app (nag packs on, acknowledgements applied) written to cdk.out, so it reuses
the dependency layer already bundled there; a nag finding makes it raise, failing every test.
The two other apps (no acknowledgements; an extra EventBridge-triggered route and an extra endpoint,
both with every access) skip bundling.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_ROOT))  # app.py and stacks/ live at the project root
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(_ROOT / ".jsii-cache"))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App  # noqa: E402
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks  # noqa: E402

from app import build_app, cdk_json_context  # noqa: E402
from medscribe.routes import ENDPOINTS, ROUTES, WORKSPACE, WORKSPACE_AUTHORIZER  # noqa: E402
from medscribe.settings import CONTEXT_KEY, PipelineSettings  # noqa: E402
from stacks.medscribe_stack import MedscribeStack  # noqa: E402
from tests.infra.helpers import PROBE_ENDPOINT, PROBE_ROUTE, ROOT, SKIP_BUNDLING, Synth  # noqa: E402


def _synth(app: App, stack: MedscribeStack) -> Synth:
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    return Synth(app, stack, artifact.template, Path(assembly.directory) / artifact.template_file)


@pytest.fixture(scope="session")
def settings() -> PipelineSettings:
    return PipelineSettings.from_context(cdk_json_context().get(CONTEXT_KEY))


@pytest.fixture(scope="session")
def synth() -> Synth:
    app, stack = build_app(outdir=str(ROOT / "cdk.out"))
    return _synth(app, stack)


@pytest.fixture(scope="session")
def unacknowledged_findings(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(rule id, resource path) of every nag finding when nothing is acknowledged."""
    app, _stack = build_app(
        outdir=str(tmp_path_factory.mktemp("unacknowledged")), checks=False, extra_context=SKIP_BUNDLING
    )
    app.synth()
    return {
        (violation.rule_name, str(resource.construct_path))
        for pack in (AwsSolutionsChecks(), HIPAASecurityChecks())
        for violation in pack.validate_scope(app).violations
        for resource in violation.violating_resources
    }


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The real routes and endpoints plus PROBE_ROUTE and PROBE_ENDPOINT (every access), nag packs on:
    the generic wiring."""
    lambdas = tmp_path_factory.mktemp("lambdas")
    for name in [route.name for route in ROUTES] + [e.name for e in (*ENDPOINTS, WORKSPACE, WORKSPACE_AUTHORIZER)]:
        (lambdas / name).symlink_to(ROOT / "lambdas" / name, target_is_directory=True)
    for probe in (PROBE_ROUTE.name, PROBE_ENDPOINT.name):
        (lambdas / probe).mkdir()
        (lambdas / probe / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    app, stack = build_app(
        outdir=str(tmp_path_factory.mktemp("probe")),
        routes=(*ROUTES, PROBE_ROUTE),
        endpoints=(*ENDPOINTS, PROBE_ENDPOINT),
        lambdas_dir=lambdas,
        extra_context=SKIP_BUNDLING,
    )
    return _synth(app, stack)
