"""Cold start of every handler (routes.ROUTES, routes.ENDPOINTS and the workspace's two functions,
routes.WORKSPACE and WORKSPACE_AUTHORIZER): its import time above the bare interpreter, against a budget
of 250 ms.

Each handler file is imported in fresh interpreters the way Lambda's init does (module-level code
runs: settings validated, services wired; no boto3 client is created at import, so nothing touches
the network), with `sys.path` holding only what the function's Lambda holds: the code layer
(`layers/medscribe/python` of this checkout, never the editable install's path) and the third-party
packages. The venv's site-packages stands in for the dependency layers: it holds every layer's
packages, so a handler that imports a package it does not need is slowed here as on Lambda, and the
"heaviest" column shows which. The environment is the function environment the stack sets
(`settings.function_env` with dummy resource names and the cdk.json settings), plus
MEDSCRIBE_SEARCH_URL=sqlite:///<tmp> (`index` on AWS uses an https URL: the OpenSearch adapter is
then imported on its first batch, not at init), the Powertools variables the stack sets, and
AWS_DEFAULT_REGION and LAMBDA_TASK_ROOT as Lambda sets them: tracing is on, as with the stack's active
tracing, so the X-Ray SDK's import and its patching of botocore are timed (the SDK touches
/tmp/.aws-xray/initialized, as it does in Lambda; nothing is sent at import).

- above python ms: the median over --runs fresh processes of `python -I -c <import handler>` minus
  the median over as many runs of `python -I -c pass` (the bare interpreter), in the same run; the
  runs are interleaved (each round starts every program once), so load on the machine that drifts
  during the run slows every program alike;
- heaviest: one extra run under `python -X importtime`, self time summed per top-level package
  (every `botocore.*` module counts for botocore) among the imports the handler's import made;
- verdict: PASS at or under the budget, else over budget;
- floor ms, own ms: the floor is a fresh process importing only the libraries every handler of its
  kind must load before its first request, measured in the same run: boto3 with botocore's client
  (every handler calls AWS), pydantic (settings validated at cold start, the message models),
  Powertools' Logger, Metrics and Tracer with X-Ray patching botocore (tracing stays on), plus
  Powertools' batch processor for the queue routes (partial batch responses) or its event handler for
  the endpoints. `own` is the handler above that floor: the medscribe package and whatever else the
  handler imports. When the floor alone is over the budget, no handler can meet it on this machine
  without dropping one of those libraries; the table then prints each library's share, measured alone.

The rows `index+opensearch` and `transcript+tscribe` add the import the first batch makes on AWS
(the OpenSearch adapter; tscribe with pandas for the first completed job), and `workspace+app` the one
the workspace's first request makes (the Starlette app with its API and page routes, Jinja2, Mangum,
the Cognito sign-in and the service wiring; the OpenSearch adapter waits for the first search): the rest
of those functions' cold start, paid on the first request instead of at init. The authorizer imports
PyJWT at init; its key set is fetched on the first token, which is network time not measured here.

Reproduce: .venv/bin/python bench/coldstart.py [--runs 5] [--top 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "medscribe" / "python"
sys.path.insert(0, str(LAYER))  # this checkout's package, not the editable install's

from medscribe.routes import ENDPOINTS, ROUTES, WORKSPACE, WORKSPACE_AUTHORIZER  # noqa: E402
from medscribe.settings import function_env, load_settings  # noqa: E402

COMMAND = ".venv/bin/python bench/coldstart.py"
BUDGET_MS = 250.0
MARKER = "medscribe-bench-coldstart-start"
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


@dataclass(frozen=True)
class Target:
    name: str
    handler_path: str
    requirements: str
    extra_import: str | None = None
    kind: str = "queue"  # which floor applies: "queue" (an SQS route) or "endpoint"


# What every handler imports before its first request, whatever its code (see the module docstring).
FLOOR_LIBRARIES = {
    "boto3+botocore": "import boto3, botocore.client",
    "pydantic": "import pydantic\nclass Probe(pydantic.BaseModel):\n    field: int",
    "powertools+x-ray": ("from aws_lambda_powertools import Logger, Metrics, Tracer\n"
                         "Logger(service='bench'); Metrics(namespace='bench', service='bench')\n"
                         "Tracer(service='bench', patch_modules=('botocore',))"),
}
FLOOR_BY_KIND = {
    "queue": "from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response",
    "endpoint": "from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver",
}


@dataclass(frozen=True)
class Measurement:
    target: Target
    above_ms: float
    import_ms: float
    packages: list[tuple[str, float]]  # (top-level package, self ms), heaviest first

    @property
    def passed(self) -> bool:
        return self.above_ms <= BUDGET_MS


def targets() -> list[Target]:
    found = [Target(r.name, r.handler_path, r.requirements) for r in ROUTES]
    found += [Target(e.name, e.handler_path, "layers/deps/requirements.txt", kind="endpoint") for e in ENDPOINTS]
    found += [Target(e.name, e.handler_path, e.requirements, kind="endpoint")
              for e in (WORKSPACE, WORKSPACE_AUTHORIZER)]
    by_name = {t.name: t for t in found}
    first_request = ("medscribe.adapters.cognito_signin, medscribe.services.wiring, medscribe.workspace.app, "
                     "medscribe.workspace.api, medscribe.workspace.pages, medscribe.workspace.auth")
    for name, label, module in (("index", "index+opensearch", "medscribe.adapters.search_opensearch"),
                                ("transcript", "transcript+tscribe", "tscribe"),
                                ("workspace", "workspace+app", first_request)):
        base = by_name[name]
        found.append(Target(label, base.handler_path, base.requirements, extra_import=module, kind=base.kind))
    return found


def environment(state: Path) -> dict[str, str]:
    env = function_env(
        table="bench-table", input_bucket="bench-input", artifacts_bucket="bench-artifacts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:bench-topic",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        settings=load_settings(), search_url=f"sqlite:///{state / 'search.db'}",
    )
    return {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(state),
            "AWS_DEFAULT_REGION": "us-east-1", "LAMBDA_TASK_ROOT": str(state), "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "medscribe", "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_LOGGER_LOG_EVENT": "false", "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false"}


def lambda_path() -> str:
    """Python source that leaves on sys.path only the standard library, the packages and the code layer."""
    keep = [sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"), sysconfig.get_path("purelib"),
            sysconfig.get_path("platlib")]
    return (f"import sys; keep = {keep!r}; "
            "sys.path[:] = [" + repr(str(LAYER)) + "] + [p for p in sys.path "
            "if any(p == k or p.startswith(k + '/') or k.startswith(p + '/') for k in keep)]")


def probe(target: Target) -> str:
    """Python source that marks the start on stderr, then imports the handler file as Lambda would."""
    lines = [
        lambda_path(),
        "import importlib.util",
        f"spec = importlib.util.spec_from_file_location('handler', {str(ROOT / target.handler_path)!r})",
        "module = importlib.util.module_from_spec(spec)",
        f"sys.stderr.write({MARKER!r} + '\\n')",
        "spec.loader.exec_module(module)",
    ]
    if target.extra_import:
        lines.append(f"import {target.extra_import}")
    return "\n".join(lines)


def floor_code(kind: str) -> str:
    return "\n".join([lambda_path(), *FLOOR_LIBRARIES.values(), FLOOR_BY_KIND[kind]])


def interleaved_ms(codes: dict[str, str], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall ms of each program over `runs` rounds, each round running every program once: a
    machine whose load drifts during the run then slows all of them alike, and their differences hold."""
    for code in codes.values():
        run(code, env)  # refreshes stale bytecode; not counted
    walls: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(runs):
        for name, code in codes.items():
            walls[name].append(run(code, env)[0])
    return {name: 1000 * statistics.median(values) for name, values in walls.items()}


def run(code: str, env: dict[str, str], importtime: bool = False) -> tuple[float, str]:
    command = [sys.executable, "-I", *(["-X", "importtime"] if importtime else []), "-c", code]
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"import failed:\n{result.stderr[-2000:]}")
    return seconds, result.stderr


def parse_importtime(stderr: str) -> tuple[float, dict[str, float]]:
    """(sum of the top-level imports' cumulative ms, self ms per top-level package) after the marker."""
    _, _, after = stderr.partition(MARKER + "\n")
    total_us = 0
    per_package: dict[str, float] = defaultdict(float)
    for line in after.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = int(match[1]), int(match[2]), match[3], match[4]
        if len(indent) == 1:  # the top level: "| name"; nested imports are indented two spaces per level
            total_us += cumulative_us
        per_package[name.split(".")[0]] += self_us / 1000
    return total_us / 1000, per_package


def measure(target: Target, env: dict[str, str], top: int, above: float) -> Measurement:
    _, stderr = run(probe(target), env, importtime=True)
    import_ms, per_package = parse_importtime(stderr)
    heaviest = sorted(per_package.items(), key=lambda pair: -pair[1])[:top]
    return Measurement(target, above, import_ms, heaviest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per handler and for the bare interpreter")
    parser.add_argument("--top", type=int, default=3, help="heaviest packages shown per handler")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medscribe-bench-coldstart-") as state:
        env = environment(Path(state))
        bare = lambda_path()
        programs = {"bare": bare} | {f"floor:{kind}": floor_code(kind) for kind in FLOOR_BY_KIND}
        programs |= {f"library:{name}": f"{bare}\n{code}" for name, code in FLOOR_LIBRARIES.items()}
        programs |= {f"handler:{target.name}": probe(target) for target in targets()}
        wall = interleaved_ms(programs, env, args.runs)
        bare_ms = wall["bare"]
        floors = {kind: wall[f"floor:{kind}"] - bare_ms for kind in FLOOR_BY_KIND}
        shares = {name: wall[f"library:{name}"] - bare_ms for name in FLOOR_LIBRARIES}
        results = [measure(target, env, args.top, wall[f"handler:{target.name}"] - bare_ms) for target in targets()]

    print(f"cold start per handler, Python {sys.version.split()[0]} ({sys.executable}): median of {args.runs} "
          f"fresh processes each; the bare interpreter (python -I -c pass) {bare_ms:.0f} ms in this run; "
          f"budget {BUDGET_MS:.0f} ms above it")
    header = (f"{'handler':<20} {'layer':<34} {'above python ms':>15} {'floor ms':>8} {'own ms':>6} "
              f"{'import ms':>9}  {'verdict':<11}  heaviest packages (self ms)")
    print(header)
    print("-" * len(header))
    for m in results:
        packages = ", ".join(f"{name} {ms:.0f}" for name, ms in m.packages)
        verdict = "PASS" if m.passed else "over budget"
        floor = floors[m.target.kind]
        print(f"{m.target.name:<20} {m.target.requirements:<34} {m.above_ms:>15.0f} {floor:>8.0f} "
              f"{m.above_ms - floor:>6.0f} {m.import_ms:>9.0f}  {verdict:<11}  {packages}")
    print("-" * len(header))
    print("Note: sys.path holds the code layer and this venv's site-packages, which stands in for the "
          "dependency layers; CPython "
          f"{sys.version_info.major}.{sys.version_info.minor} on this machine's CPU, not the Lambda runtime. "
          "Rows with '+' add the import the first request makes (see the module docstring).")
    print(f"reproduce: {COMMAND} --runs {args.runs} --top {args.top}")
    handlers = [m for m in results if m.target.extra_import is None]
    print("over budget: " + (", ".join(m.target.name for m in handlers if not m.passed) or "none"))
    print("floor (libraries only, no medscribe code): "
          + ", ".join(f"{kind} {ms:.0f} ms" for kind, ms in floors.items())
          + "; each library alone: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in shares.items()))
    held = [kind for kind, ms in floors.items() if ms > BUDGET_MS]
    if held:
        print(f"held by: the floor of {', '.join(held)} handlers is itself over {BUDGET_MS:.0f} ms on this machine; "
              "those libraries stay (AWS calls, validated settings and messages, logging, metrics and tracing), "
              "so the handlers' own share ('own ms') is what this code controls")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
