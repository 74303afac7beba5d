"""Engine choices are typed settings, never environment side channels: the pipeline package reads no
engine variable, wiring builds what the settings name whatever the environment says, and the local
runtime hands its handlers the local engines inside the settings JSON of their function environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medscribe.adapters.llm.bedrock import BedrockModel
from medscribe.adapters.llm.openai_compat import ENV_API_KEY, OpenAICompatibleModel
from medscribe.services.wiring import note_model, repair_model
from medscribe.settings import ENV, PipelineSettings, function_env
from medscribe_local.environment import BEDROCK_ENDPOINT_ENV
from medscribe_local.runtime import handler_environment
from medscribe_local.state import Resources

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "medscribe" / "python" / "medscribe"
# The variables the pipeline package may name: the function environment (ENV), the project root of
# tests and tools, and the one secret (an API key is not configuration).
ALLOWED = {value for name, value in vars(ENV).items() if name.isupper()} | {"MEDSCRIBE_HOME", ENV_API_KEY}
RESOURCES = Resources(
    region="us-east-1", account_id="123456789012", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
    input_bucket="in", artifacts_bucket="out", table="t", topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    outbox_queue_url="http://127.0.0.1:1/q", routes={},
)


def test_the_pipeline_package_names_no_environment_variable_but_the_function_environment_and_the_key() -> None:
    named: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("MEDSCRIBE_"):
                named.setdefault(node.value, set()).add(path.relative_to(PACKAGE).as_posix())
    assert named  # the scan sees the ENV names
    assert {name: files for name, files in named.items() if name not in ALLOWED} == {}


def test_wiring_builds_the_engine_the_settings_name_whatever_the_environment_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for old_side_channel in ("MEDSCRIBE_NOTE_ENGINE", "MEDSCRIBE_KEYWORD_ENGINE"):
        monkeypatch.setenv(old_side_channel, "offline")
    monkeypatch.setenv("MEDSCRIBE_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert isinstance(note_model(PipelineSettings(note_engine="bedrock")), BedrockModel)
    assert isinstance(repair_model(PipelineSettings(note_engine="bedrock")), BedrockModel)
    assert note_model(PipelineSettings(note_engine="offline")) is None
    openai = note_model(PipelineSettings(note_engine="openai", openai_base_url="http://gpu:8000/v1", openai_model="m"))
    assert isinstance(openai, OpenAICompatibleModel)
    assert openai.base_url == "http://gpu:8000/v1"


def handler_settings(env: dict[str, str | None]) -> PipelineSettings:
    value = env[ENV.SETTINGS]
    assert value is not None
    return PipelineSettings.model_validate_json(value)


def test_the_local_runtime_passes_the_offline_engines_in_the_settings_of_the_function_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BEDROCK_ENDPOINT_ENV, raising=False)
    settings = PipelineSettings()  # what AWS uses: Bedrock notes, Comprehend Medical keywords
    env = handler_environment(RESOURCES, settings, "sqlite:///x.db")
    local = handler_settings(env)
    assert (local.note_engine, local.keyword_engine) == ("offline", "offline")
    stack_env = function_env(table="t", input_bucket="in", artifacts_bucket="out", topic_arn="a", kms_key_arn="k",
                             settings=settings, search_url="sqlite:///x.db")
    extra = set(env) - set(stack_env)
    assert extra == {"POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_SERVICE_NAME"}


def test_the_local_note_engine_is_the_configured_endpoint_else_a_local_converse_endpoint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BEDROCK_ENDPOINT_ENV, "http://127.0.0.1:8765")
    assert handler_settings(handler_environment(RESOURCES, PipelineSettings())).note_engine == "bedrock"
    endpoint = PipelineSettings(openai_base_url="http://gpu:8000/v1", openai_model="m")
    local = handler_settings(handler_environment(RESOURCES, endpoint))
    assert (local.note_engine, local.openai_base_url, local.keyword_engine) == ("openai", "http://gpu:8000/v1",
                                                                              "offline")
    monkeypatch.setenv(BEDROCK_ENDPOINT_ENV, "https://bedrock-runtime.us-east-1.amazonaws.com")  # not this machine
    assert handler_settings(handler_environment(RESOURCES, PipelineSettings())).note_engine == "offline"
