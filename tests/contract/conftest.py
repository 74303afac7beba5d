"""Fixtures of the contract tier: what the handlers called (recorded by tests/contract/recorder.py)
and the synthesized stack's IAM.

In a full run (`pytest -q`) and in `pytest tests/handlers tests/e2e tests/contract` the recordings are
this session's. Run alone (`pytest tests/contract`, or without the handler tier), the tier runs the
handler tier itself in a subprocess with the recorder writing to a file, and checks those calls: the
e2e tier's (the local runtime's event source mappings, stream pump and schedules) are then missing,
and the checks that need them say so and skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".jsii-cache"))  # as tests/infra does
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from app import build_app  # noqa: E402
from tests.contract import recorder  # noqa: E402
from tests.contract.stack import RenderedStack  # noqa: E402
from tests.infra.helpers import SKIP_BUNDLING, Synth  # noqa: E402

HANDLER_TIER, E2E_TIER = "handlers", "e2e"
# role label -> "actions on resources" of each statement no recorded call used (test_iam_coverage fills it)
UNUSED_GRANTS: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Recordings:
    calls: list[recorder.Call]
    tiers: frozenset[str]  # the tiers whose calls these are
    source: str  # where they come from, for messages


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    """The recorded calls (see the module docstring); never empty: an empty record fails here."""
    tiers = recorder.session_tiers() & {HANDLER_TIER, E2E_TIER}
    if HANDLER_TIER in tiers:
        calls = recorder.recorded_calls()
        source = f"this session ({', '.join(sorted(tiers))} tiers)"
    else:
        target = tmp_path_factory.mktemp("contract") / "calls.json"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/handlers"]
        result = subprocess.run(command, cwd=ROOT, env={**os.environ, recorder.RECORD_TO_ENV: str(target)},
                                capture_output=True, text=True, check=False)
        if not target.is_file():
            pytest.fail(f"the handler tier recorded nothing (exit {result.returncode}):\n{result.stdout[-3000:]}")
        calls = recorder.load(target)
        tiers = frozenset({HANDLER_TIER})
        source = f"`{' '.join(command[2:])}` run by the contract tier (exit {result.returncode})"
    if not calls:
        pytest.fail(f"no AWS call was recorded from {source}: is tests/contract/recorder.py registered?")
    return Recordings(calls, tiers, source)


@pytest.fixture(scope="session")
def unbundled_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The real app (nag packs on, acknowledgements applied), without asset bundling: IAM needs none."""
    app, stack = build_app(outdir=str(tmp_path_factory.mktemp("contract-synth")), extra_context=SKIP_BUNDLING)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    return Synth(app, stack, artifact.template, Path(assembly.directory) / artifact.template_file)


@pytest.fixture(scope="session")
def stack(unbundled_synth: Synth) -> RenderedStack:
    return RenderedStack(unbundled_synth)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Grants no recorded call used: information for whoever reviews the roles, never a failure."""
    if not any(UNUSED_GRANTS.values()):
        return
    terminalreporter.write_sep("-", "contract: grants no recorded call used (information)")
    for label, grants in sorted(UNUSED_GRANTS.items()):
        for grant in grants:
            terminalreporter.write_line(f"{label}: {grant}")
