"""Every setting is in cdk.json with its default and documented in the README's configuration table."""

import json
from pathlib import Path

import pytest

from medscribe.settings import CONTEXT_KEY, PipelineSettings

ROOT = Path(__file__).resolve().parents[2]


def test_cdk_json_carries_every_setting_with_its_default() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]
    defaults = PipelineSettings().model_dump(mode="json")
    assert context == defaults


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name in PipelineSettings.model_fields:
        assert f"| `{name}` |" in table, name


def test_bad_settings_stop_with_a_message() -> None:
    with pytest.raises(SystemExit, match="max_speakers"):
        PipelineSettings.from_context({"max_speakers": 1})
    with pytest.raises(SystemExit, match="unknown_setting"):
        PipelineSettings.from_context({"unknown_setting": 1})
