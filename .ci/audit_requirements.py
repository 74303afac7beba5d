"""Run pip-audit on the pinned requirements files and on the installed test environment.

`make pip-audit` runs this with .venv-security's Python. Requirements files are audited exactly as
pinned (`--no-deps --disable-pip`: nothing is resolved or installed, so the result depends only on
the pins and the published advisories); `--installed DIR` also audits every distribution in that
site-packages (the transitive dependencies the tests ran with, editable ones excepted).

Fails on any known vulnerability not listed in ACCEPTED, and on a dependency that could not be
audited while others could (a typo, a deleted release). When no dependency at all could be
audited, the advisory data was not reachable (an offline machine, a network that only serves
package downloads): it says so and passes, unless MEDSCRIBE_REQUIRE_AUDIT=1 makes that a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Vulnerability id -> the written reason it is accepted (passed to pip-audit as --ignore-vuln).
ACCEPTED: dict[str, str] = {}

NOT_FOUND = "Dependency not found on PyPI"
EDITABLE = "distribution marked as editable"  # our own package in .venv, skipped on purpose
UNREACHABLE = ("ConnectionError", "NameResolutionError", "ConnectTimeout", "ReadTimeout")


class Unreachable(Exception):
    pass


def audit(target: list[str], cache_dir: Path) -> list[dict[str, Any]]:
    """pip-audit's `dependencies` list for one target (a `-r FILE` or a `--path DIR`)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            str(Path(sys.executable).parent / "pip-audit"), *target, "--format", "json", "--output", str(report),
            "--cache-dir", str(cache_dir), "--progress-spinner", "off", "--timeout", "20",
        ]
        for vuln_id in sorted(ACCEPTED):
            command += ["--ignore-vuln", vuln_id]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if not report.exists():
            if any(marker in result.stderr for marker in UNREACHABLE):
                raise Unreachable(result.stderr.strip().splitlines()[-1])
            sys.stderr.write(result.stderr)
            raise SystemExit(f"pip-audit {' '.join(target)} failed (exit {result.returncode})")
        dependencies: list[dict[str, Any]] = json.loads(report.read_text())["dependencies"]
        return dependencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="+", type=Path, help="pinned requirements files")
    parser.add_argument("--installed", type=Path, help="a site-packages directory to audit as installed")
    parser.add_argument("--cache-dir", type=Path, required=True, help="pip-audit's HTTP cache")
    args = parser.parse_args()

    targets = [(str(path), ["--requirement", str(path), "--no-deps", "--disable-pip"]) for path in args.requirements]
    if args.installed:
        targets.append((f"installed ({args.installed})", ["--path", str(args.installed), "--skip-editable"]))

    audited = vulnerable = 0
    skipped: list[str] = []
    try:
        for label, target in targets:
            dependencies = audit(target, args.cache_dir)
            found = [dep for dep in dependencies if dep.get("vulns")]
            dependencies = [dep for dep in dependencies if EDITABLE not in dep.get("skip_reason", "")]
            missing = [str(dep["skip_reason"]) for dep in dependencies if dep.get("skip_reason")]
            audited += len(dependencies) - len(missing)
            vulnerable += len(found)
            skipped += [f"{label}: {reason}" for reason in missing]
            print(f"pip-audit {label}: {len(dependencies)} packages, {len(found)} vulnerable, "
                  f"{len(missing)} not audited")
            for dep in found:
                for vuln in dep["vulns"]:
                    fixed = ", ".join(vuln["fix_versions"]) or "no fixed release"
                    aliases = ", ".join(vuln.get("aliases", []))
                    print(f"  {dep['name']}=={dep['version']}: {vuln['id']} ({aliases}); fixed in {fixed}")
    except Unreachable as exc:
        return unavailable(str(exc))
    if audited == 0 and skipped and all(NOT_FOUND in reason for reason in skipped):
        return unavailable(f"every package answered '{NOT_FOUND}'")
    for reason in skipped:
        print(f"  not audited: {reason}")
    return 1 if vulnerable or skipped else 0


def unavailable(detail: str) -> int:
    required = os.environ.get("MEDSCRIBE_REQUIRE_AUDIT") == "1"
    print(
        f"pip-audit {'FAILED' if required else 'SKIPPED'}: the vulnerability data could not be reached, so no "
        f"dependency was audited ({detail}). Set MEDSCRIBE_REQUIRE_AUDIT=1 to make this an error.",
        file=sys.stderr,
    )
    return 2 if required else 0


if __name__ == "__main__":
    raise SystemExit(main())
