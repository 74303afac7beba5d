"""Every function fits Lambda's unzipped size limit with a quarter to spare.

Lambda rejects a function whose code and layers together exceed 262,144,000 bytes unzipped, and
only at deploy time. This measures the real bundles: the synthesized cloud assembly in cdk.out (the
infra tier's `synth` fixture: the app as `cdk synth` builds it, dependency layers bundled by pip),
each function's code asset plus the assets of all its layers (stacks/package_size.py).
bench/package_size.py prints the same figures.
"""

from __future__ import annotations

import pytest

from stacks.package_size import BUDGET, LAMBDA_UNZIPPED_LIMIT, function_sizes
from tests.infra.conftest import synth  # noqa: F401  (the fixture)
from tests.infra.helpers import Synth

pytestmark = pytest.mark.infra

MB = 1_000_000


def test_every_function_keeps_a_quarter_of_the_unzipped_limit_free(synth: Synth) -> None:  # noqa: F811
    sizes = {size.name: size for size in function_sizes(synth.template_path)}
    expected = {f"{synth.stack.settings.prefix}-{name}" for name in [*synth.stack.routes, *synth.stack.endpoints]}
    assert expected <= sizes.keys()
    for name in expected:  # the layers were bundled, not skipped: each holds at least its package
        assert len(sizes[name].layers) == 2, name
        assert min(sizes[name].layers.values()) > 100_000, name
    over = [
        f"{size.name}: {size.total / MB:.1f} MB of {LAMBDA_UNZIPPED_LIMIT / MB:.1f} MB ({size.headroom:.1%} free)"
        for size in sizes.values()
        if size.total > BUDGET
    ]
    assert not over, f"over {BUDGET / MB:.1f} MB (25% headroom): {over}"
