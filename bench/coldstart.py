"""Cold-start import time of every handler (routes.ROUTES and routes.ENDPOINTS) with its layers.

For each handler, fresh interpreters import `lambdas/<name>/handler.py` the way the Lambda runtime
does (module-level code runs: settings validated, services wired; boto3 clients are built lazily, so
nothing touches the network). The environment is the function environment the stack sets
(`settings.function_env` with dummy resource names and the cdk.json settings), plus
MEDSCRIBE_SEARCH_URL=sqlite:///<tmp>, AWS_DEFAULT_REGION and POWERTOOLS_TRACE_DISABLED=true.

- import ms: one run under `python -X importtime`, the cumulative microseconds of the top-level
  imports made by the handler import (interpreter start-up imports excluded);
- heaviest packages: the same run's self time summed per top-level package (every `pandas.*`
  module counts for pandas, wherever it was imported from): what the function's layers must carry;
- wall ms: the median of 3 runs of the whole `python -c <import>` process, beside the median of 3
  runs of `python -c pass` (the interpreter alone), measured in the same invocation.

`index` imports with the SQLite search index (no network at import); the extra row `index+opensearch`
also imports the OpenSearch adapter, which the handler imports on AWS (an https search URL). The extra
row `transcript+tscribe` adds the import the first completed job makes (tscribe, pandas, python-docx):
the rest of that route's cold start, paid on its first invocation instead of at init.

Reproduce: .venv/bin/python bench/coldstart.py [--runs 3] [--top 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from medscribe.routes import ENDPOINTS, ROUTES
from medscribe.settings import function_env, load_settings, project_root

ROOT = project_root()
COMMAND = ".venv/bin/python bench/coldstart.py"
MARKER = "medscribe-bench-coldstart-start"
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


@dataclass(frozen=True)
class Target:
    name: str
    handler_path: str
    requirements: str
    memory_mb: int
    extra_import: str | None = None


@dataclass(frozen=True)
class Measurement:
    target: Target
    import_ms: float
    packages: list[tuple[str, float]]  # (top-level package, self ms), heaviest first
    wall_ms: float


def targets() -> list[Target]:
    found = [Target(r.name, r.handler_path, r.requirements, r.memory_mb) for r in ROUTES]
    found += [Target(e.name, e.handler_path, "layers/deps/requirements.txt", e.memory_mb) for e in ENDPOINTS]
    by_name = {t.name: t for t in found}
    for name, label, module in (("index", "index+opensearch", "medscribe.adapters.search_opensearch"),
                                ("transcript", "transcript+tscribe", "tscribe")):
        base = by_name[name]
        found.append(Target(label, base.handler_path, base.requirements, base.memory_mb, extra_import=module))
    return found


def environment(state: Path) -> dict[str, str]:
    env = function_env(
        table="bench-table", input_bucket="bench-input", artifacts_bucket="bench-artifacts",
        topic_arn="arn:aws:sns:us-east-1:123456789012:bench-topic",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        settings=load_settings(), search_url=f"sqlite:///{state / 'search.db'}",
    )
    return {**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(state),
            "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "bench"}


def probe(target: Target) -> str:
    """Python source that marks the start on stderr, then imports the handler file as Lambda would."""
    lines = [
        "import importlib.util, sys",
        f"spec = importlib.util.spec_from_file_location('handler', {str(ROOT / target.handler_path)!r})",
        "module = importlib.util.module_from_spec(spec)",
        f"sys.stderr.write({MARKER!r} + '\\n')",
        "spec.loader.exec_module(module)",
    ]
    if target.extra_import:
        lines.append(f"import {target.extra_import}")
    return "\n".join(lines)


def run(code: str, env: dict[str, str], importtime: bool = False) -> tuple[float, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
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


def measure(target: Target, env: dict[str, str], runs: int, top: int) -> Measurement:
    code = probe(target)
    walls = [run(code, env)[0] for _ in range(runs)]  # the first also refreshes stale bytecode
    _, stderr = run(code, env, importtime=True)
    import_ms, per_package = parse_importtime(stderr)
    heaviest = sorted(per_package.items(), key=lambda pair: -pair[1])[:top]
    return Measurement(target, import_ms, heaviest, 1000 * statistics.median(walls))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="wall-time runs per handler (median)")
    parser.add_argument("--top", type=int, default=5, help="heaviest packages shown per handler")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medscribe-bench-coldstart-") as state:
        env = environment(Path(state))
        interpreter_ms = 1000 * statistics.median(run("pass", env)[0] for _ in range(args.runs))
        results = [measure(target, env, args.runs, args.top) for target in targets()]

    print(f"cold-start imports per handler: Python {sys.version.split()[0]} ({sys.executable}); "
          f"wall = median of {args.runs} fresh processes, interpreter alone (python -c pass) "
          f"{interpreter_ms:.0f} ms")
    header = (f"{'handler':<18} {'layer':<33} {'MB':>5} {'import ms':>9} {'wall ms':>8} {'- python':>8}  "
              "heaviest packages (self ms)")
    print(header)
    print("-" * len(header))
    for m in results:
        packages = ", ".join(f"{name} {ms:.0f}" for name, ms in m.packages)
        print(f"{m.target.name:<18} {m.target.requirements:<33} {m.target.memory_mb:>5} {m.import_ms:>9.0f} "
              f"{m.wall_ms:>8.0f} {m.wall_ms - interpreter_ms:>8.0f}  {packages}")
    print("-" * len(header))
    print("Note: this venv holds more packages than any Lambda layer and runs CPython "
          f"{sys.version_info.major}.{sys.version_info.minor} on this machine's CPU, not the Lambda runtime; "
          "the figures compare handlers with each other. The heavy packages listed are what each layer must "
          "carry (tests/unit/test_layer_imports.py checks that none comes from another layer).")
    print(f"reproduce: {COMMAND} --runs {args.runs} --top {args.top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
