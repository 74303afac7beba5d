#!/usr/bin/env python3
"""CDK entry point: build the app from cdk.json context, apply the cdk-nag packs, synthesize.

`python app.py` and `npx cdk synth` produce the same cloud assembly: cdk.json's context is loaded
here as the app's default context (the CLI passes the same values, and its values win), and the
output goes to `cdk.out` unless the CLI chose another directory (CDK_OUTDIR).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# The package is pip-installed editable; the path is a fallback for a bare checkout.
sys.path.insert(0, str(ROOT / "layers" / "medscribe" / "python"))

from aws_cdk import App, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks  # noqa: E402

from medscribe.routes import ENDPOINTS, ROUTES, Endpoint, Route  # noqa: E402
from medscribe.settings import CONTEXT_KEY, PipelineSettings  # noqa: E402
from stacks import nag  # noqa: E402
from stacks.medscribe_stack import MedscribeStack  # noqa: E402


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    return context


def build_app(
    *,
    outdir: str | None = None,
    routes: Sequence[Route] = ROUTES,
    endpoints: Sequence[Endpoint] = ENDPOINTS,
    lambdas_dir: Path | None = None,
    checks: bool = True,
    extra_context: Mapping[str, Any] | None = None,
) -> tuple[App, MedscribeStack]:
    """The app with its one stack.

    Tests use the keywords: other routes, endpoints or handler directories, `checks=False` to leave out the nag
    packs and acknowledgements, `extra_context` e.g. to skip bundling.
    """
    app = App(
        outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"),
        context={**cdk_json_context(), **(extra_context or {})},
    )
    settings = PipelineSettings.from_context(app.node.try_get_context(CONTEXT_KEY))
    stack = MedscribeStack(
        app, settings.prefix, settings=settings, routes=routes, endpoints=endpoints, lambdas_dir=lambdas_dir
    )
    if checks:
        nag.acknowledge(stack)
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True), HIPAASecurityChecks(app, verbose=True))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
