"""The package's layering (HOUSE_STYLE "Layout"), read from the source with `ast`, every import
counted wherever it sits (a lazy import inside a function is still a dependency):

- domain/ is pure: no AWS SDK, no adapter, no service;
- a service never imports another service: shared logic lives in domain/, and where a service needs
  another's behaviour `services/wiring.py` (the one module that assembles services) hands it in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers/medscribe/python/medscribe"
FORBIDDEN_IN_DOMAIN = ("boto3", "botocore", "medscribe.adapters", "medscribe.services")


def imported_modules(source: str) -> list[str]:
    """Every module `source` imports; `from medscribe.services import x` counts as medscribe.services.x."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


def test_the_import_reader_sees_lazy_and_from_imports() -> None:
    source = "import os\ndef f():\n    from medscribe.services import scoring\n    import botocore.config\n"
    assert imported_modules(source) == ["os", "medscribe.services", "medscribe.services.scoring", "botocore.config"]


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: p.name)
def test_domain_modules_import_no_sdk_adapter_or_service(path: Path) -> None:
    offending = sorted({module for module in imported_modules(path.read_text(encoding="utf-8"))
                        for prefix in FORBIDDEN_IN_DOMAIN if _matches(module, prefix)})
    assert offending == [], f"domain/{path.name} imports {offending}"


@pytest.mark.parametrize("path", [p for p in _modules("services") if p.name != "wiring.py"], ids=lambda p: p.name)
def test_no_service_imports_another_service(path: Path) -> None:
    offending = sorted({module for module in imported_modules(path.read_text(encoding="utf-8"))
                        if _matches(module, "medscribe.services") and module != "medscribe.services"})
    assert offending == [], f"services/{path.name} imports {offending}: inject it from services/wiring.py"


def test_the_folders_were_found() -> None:
    assert len(_modules("domain")) > 10
    assert (PACKAGE / "services/wiring.py").is_file()
