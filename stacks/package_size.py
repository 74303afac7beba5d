"""The unzipped size of every Lambda function of a synthesized stack: its code plus all its layers.

Lambda refuses a function whose deployment package and layers together exceed 262,144,000 bytes
unzipped (Lambda quotas, "Deployment package size"). The project keeps a quarter of that free
(`BUDGET`), room for a dependency upgrade. CDK stages each asset of the cloud assembly as a folder
next to the template (`asset.<hash>`, the assets manifest's `source.path`); a function's `Code` and
each `Content` of the layers its `Layers` reference name their asset by its S3 object key. The
unzipped size of a folder asset is the sum of its files' sizes; inline code counts its characters.

Read by tests/contract/test_package_size.py and bench/package_size.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAMBDA_UNZIPPED_LIMIT = 262_144_000
HEADROOM = 0.25
BUDGET = int(LAMBDA_UNZIPPED_LIMIT * (1 - HEADROOM))


@dataclass(frozen=True)
class FunctionSize:
    name: str  # FunctionName when the template sets one, else the logical id
    code: int
    layers: dict[str, int]  # layer logical id -> bytes, in the function's order

    @property
    def total(self) -> int:
        return self.code + sum(self.layers.values())

    @property
    def headroom(self) -> float:
        """The fraction of Lambda's limit left free."""
        return 1 - self.total / LAMBDA_UNZIPPED_LIMIT


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def function_sizes(template_path: Path) -> list[FunctionSize]:
    """Every AWS::Lambda::Function of the template at `template_path` (in its cloud assembly)."""
    assembly = template_path.parent
    template: dict[str, Any] = json.loads(template_path.read_text(encoding="utf-8"))
    manifest = json.loads(
        (assembly / template_path.name.replace(".template.json", ".assets.json")).read_text(encoding="utf-8")
    )
    folders = {
        destination["objectKey"]: assembly / asset["source"]["path"]
        for asset in manifest["files"].values()
        if asset["source"].get("packaging") == "zip"
        for destination in asset["destinations"].values()
    }
    resources: dict[str, dict[str, Any]] = template["Resources"]

    def code_bytes(code: dict[str, Any]) -> int:
        if "ZipFile" in code:
            return len(str(code["ZipFile"]).encode())
        return folder_bytes(folders[code["S3Key"]])

    sizes = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        layers = {}
        for layer in properties.get("Layers", []):
            if not (isinstance(layer, dict) and set(layer) == {"Ref"}):
                raise ValueError(f"{logical_id}: layer {layer!r} is not defined in this stack; it cannot be measured")
            layers[layer["Ref"]] = code_bytes(resources[layer["Ref"]]["Properties"]["Content"])
        name = properties.get("FunctionName")
        sizes.append(FunctionSize(
            name=name if isinstance(name, str) else logical_id,
            code=code_bytes(properties["Code"]),
            layers=layers,
        ))
    return sizes
