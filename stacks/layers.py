"""The Lambda layers every function gets: the `medscribe` package and the dependency layer built from
its requirements file (one layer per distinct file, shared by the functions that name it), for one
runtime and architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from medscribe.routes import Endpoint, Route
from stacks import naming
from stacks.bundling import dependency_layer_code

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Wheels matching ARCHITECTURE; python3.14 runs on Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 fits too.
LAYER_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/*.egg-info"]
class Layers(Construct):
    """The `medscribe` package layer and one dependency layer per requirements file (built without Docker)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, root: Path, handlers: Sequence[Route | Endpoint]
    ) -> None:
        super().__init__(scope, construct_id)
        package_dir = root / "layers" / "medscribe"
        if not (package_dir / "python" / "medscribe" / "__init__.py").is_file():
            raise FileNotFoundError(f"{package_dir}/python/medscribe is missing: the code layer needs it")
        self.code = lambda_.LayerVersion(
            self,
            "Code",
            description="medscribe package (domain, services, adapters)",
            code=lambda_.Code.from_asset(str(package_dir), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        # Keyed by the requirements path as routes.py writes it (relative to the project root).
        self.dependencies: dict[str, lambda_.LayerVersion] = {}
        for requirements in sorted({handler.requirements for handler in handlers}):
            path = root / requirements
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: a function's dependency layer needs it")
            self.dependencies[requirements] = lambda_.LayerVersion(
                self,
                dependency_layer_id(requirements),
                description=f"third-party runtime dependencies ({requirements})",
                code=dependency_layer_code(path, RUNTIME, LAYER_PLATFORMS),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
            )

    def for_handler(self, handler: Route | Endpoint) -> list[lambda_.ILayerVersion]:
        return [self.dependencies[handler.requirements], self.code]


def dependency_layer_id(requirements: str) -> str:
    """`layers/deps/requirements.txt` -> `Deps`: the layer is named after the folder of its file."""
    path = Path(requirements)
    name = path.parent.name if path.name == "requirements.txt" else path.stem
    return naming.construct_id(name)

