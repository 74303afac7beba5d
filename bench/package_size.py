"""Unzipped size of every Lambda function with its layers, against Lambda's limit.

Synthesizes the app into cdk.out as `cdk synth` does (the dependency layers are bundled by pip, or
reused from cdk.out when their asset hash is unchanged; nag packs off, they do not change assets),
then measures each function's code asset and the assets of its layers (stacks/package_size.py, which
tests/contract/test_package_size.py holds to a quarter of headroom). Lambda's limit: 262,144,000
bytes for a function's code plus all its layers, unzipped. MB = 10^6 bytes.

Reproduce: .venv/bin/python bench/package_size.py
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py and stacks/ live at the repository root
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".jsii-cache"))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from app import build_app  # noqa: E402
from stacks.package_size import BUDGET, HEADROOM, LAMBDA_UNZIPPED_LIMIT, function_sizes  # noqa: E402

COMMAND = ".venv/bin/python bench/package_size.py"
MB = 1_000_000
LOGICAL_ID_SUFFIX = re.compile(r"[0-9A-F]{8}$")  # CDK's hash after the construct path


def main() -> None:
    app, stack = build_app(outdir=str(ROOT / "cdk.out"), checks=False)
    assembly = app.synth()
    template = Path(assembly.directory) / assembly.get_stack_by_name(stack.stack_name).template_file
    print(f"Lambda unzipped size, code + layers (limit {LAMBDA_UNZIPPED_LIMIT:,} bytes = "
          f"{LAMBDA_UNZIPPED_LIMIT / MB:.1f} MB; budget with {HEADROOM:.0%} headroom {BUDGET / MB:.1f} MB)")
    print(f"{'function':<28} {'code MB':>8}  {'layers MB':<36} {'total MB':>9} {'headroom':>9} {'free MB':>8}")
    for size in sorted(function_sizes(template), key=lambda size: -size.total):
        layers = ", ".join(f"{LOGICAL_ID_SUFFIX.sub('', name)} {value / MB:.1f}"
                           for name, value in size.layers.items()) or "-"
        flag = "" if size.total <= BUDGET else "  OVER BUDGET"
        print(f"{size.name[:28]:<28} {size.code / MB:>8.3f}  {layers:<36} {size.total / MB:>9.1f} "
              f"{size.headroom:>9.1%} {(LAMBDA_UNZIPPED_LIMIT - size.total) / MB:>8.1f}{flag}")
    print(f"reproduce: {COMMAND}")


if __name__ == "__main__":
    main()
