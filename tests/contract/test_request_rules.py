"""Requests AWS would reject although botocore sends them: Bedrock Converse tool rules and Transcribe's
cross-member rules (medscribe_local.service_rules), applied to every request the project can build
for any deployment setting, and to every request the handler and e2e tests recorded.

The rules themselves are checked against the defects they exist for: the EMR tool's display-name keys
("Property keys should match pattern"), a vocabulary in Settings with language identification, a
standard vocabulary on a Medical job, list-format vocabularies (deprecated).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from medscribe.adapters.llm.bedrock import BedrockModel
from medscribe.adapters.transcribe_jobs import JobRequest, job_request
from medscribe.domain.after_visit import SUMMARY_TOOL, TEMPLATES, load_summary_template
from medscribe.domain.claim_judge import JUDGE_SCHEMA, JUDGE_TOOL
from medscribe.domain.emr import FIELDS, emr_json_schema
from medscribe.domain.emr_structuring import EMR_TOOL
from medscribe.domain.encounter import Encounter, EncounterStatus, Kind
from medscribe.domain.language_choice import LANGUAGES
from medscribe.domain.note_writing import ANSWER_SCHEMA, ANSWER_TOOL, NOTE_TOOL
from medscribe.domain.notes import CATALOGUE, load_template
from medscribe.settings import FunctionSettings, LanguageMode, PipelineSettings, SpeakerMode
from medscribe_local.service_rules import (
    DEPRECATED,
    comprehend_medical_problems,
    converse_problems,
    transcribe_problems,
)
from tests.contract.conftest import Recordings

# --- Bedrock Converse ----------------------------------------------------------------------------


class _Capture:
    """A bedrock-runtime client double that keeps the request BedrockModel builds."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def converse(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"output": {"message": {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "t", "name": request["toolConfig"]["tools"][0]["toolSpec"]["name"], "input": {}}}]}},
            "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1}}


def tool_requests() -> dict[str, dict[str, Any]]:
    """The Converse request of every tool the project sends (note per catalogue template, EMR, answer, judge,
    the after-visit summary per language)."""
    tools = {f"{NOTE_TOOL}:{name}": (NOTE_TOOL, load_template(name).json_schema()) for name in CATALOGUE}
    tools.update({f"{SUMMARY_TOOL}:{language}": (SUMMARY_TOOL, load_summary_template(language).schema())
                  for language in TEMPLATES})
    tools[EMR_TOOL] = (EMR_TOOL, emr_json_schema())
    tools[ANSWER_TOOL] = (ANSWER_TOOL, ANSWER_SCHEMA)
    tools[JUDGE_TOOL] = (JUDGE_TOOL, JUDGE_SCHEMA)
    requests = {}
    for label, (tool, schema) in tools.items():
        client = _Capture()
        BedrockModel("us.anthropic.claude-haiku-4-5-20251001-v1:0", client).generate_json(
            system="rules", prompt="data", schema=schema, tool_name=tool, max_tokens=512)
        requests[label] = client.requests[0]
    return requests


@pytest.mark.parametrize("label", sorted(tool_requests()))
def test_every_tool_the_project_sends_meets_converse_rules(label: str) -> None:
    assert converse_problems(tool_requests()[label]) == []


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_catalogue_template_is_a_note_tool_request_of_its_own_sections(name: str) -> None:
    spec = tool_requests()[f"{NOTE_TOOL}:{name}"]["toolConfig"]["tools"][0]["toolSpec"]
    section = spec["inputSchema"]["json"]["properties"]["sections"]["items"]
    assert section["properties"]["name"]["enum"] == list(load_template(name).section_names)


def test_the_rules_reject_the_emr_schema_keyed_by_display_names() -> None:
    """Defect: the EMR tool used the demo's display names ("Symptoms and Signs") as schema keys."""
    request = tool_requests()[EMR_TOOL]
    old = {"type": "object", "properties": {name: {"type": "string"} for name in FIELDS}}
    request["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] = old
    assert any("Property keys should match pattern" in problem for problem in converse_problems(request))


@pytest.mark.parametrize(("change", "expected"), [
    (lambda r: r["toolConfig"]["tools"][0]["toolSpec"].update(name="write note"), "toolSpec.name must match"),
    (lambda r: r["toolConfig"].update(toolChoice={"tool": {"name": "other"}}), "must name a tool"),
    (lambda r: r["toolConfig"].update(toolChoice={"any": {}, "auto": {}}), "exactly one of"),
    (lambda r: r["messages"][0]["content"][0].update(text="  "), "blank"),
    (lambda r: r["messages"].append({"role": "user", "content": [{"text": "x"}]}), "alternate"),
    (lambda r: r["inferenceConfig"].update(temperature=1.5), "temperature"),
])
def test_the_converse_rules_catch_what_bedrock_rejects(change: Any, expected: str) -> None:
    request = tool_requests()[f"{NOTE_TOOL}:HISTORY_AND_PHYSICAL"]
    change(request)
    assert any(expected in problem for problem in converse_problems(request))


def test_every_recorded_converse_request_meets_the_rules(recordings: Recordings) -> None:
    calls = [call for call in recordings.calls
             if call.service == "bedrock-runtime" and call.operation in ("Converse", "ConverseStream")]
    assert calls, "no Converse request was recorded: the handler tests' Bedrock path did not run"
    failing = {f"{call.test} ({call.function}) #{index}": converse_problems(call.params)
               for index, call in enumerate(calls)}
    assert {test: found for test, found in failing.items() if found} == {}


# --- Amazon Transcribe ---------------------------------------------------------------------------


@pytest.fixture
def audio() -> Encounter:
    return Encounter(encounter_id="enc-" + "0" * 32, kind=Kind.AUDIO, status=EncounterStatus.RECEIVED,
                     source_bucket="input", source_key="audio/a.mp3", revision="1", size=1000,
                     created_at="2026-12-03T00:00:00.000Z", updated_at="2026-12-03T00:00:00.000Z", media_format="mp3")


def _settings(pipeline: PipelineSettings) -> FunctionSettings:
    return FunctionSettings(pipeline=pipeline, table_name="t", input_bucket="input", artifacts_bucket="artifacts",
                            topic_arn="arn:aws:sns:us-east-1:123456789012:t",
                            kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k")


COMBINATIONS = [
    (language, medical, speakers, vocabulary, model, upload)
    for language, medical, speakers, vocabulary, model, upload in itertools.product(
        LanguageMode, (False, True), SpeakerMode, (None, "medscribe-dev-sh-1"), (None, "medscribe-dev-sh-1"),
        (None, *LANGUAGES))  # the upload's language (domain.language_choice); None: a record from before
    if not (medical and language is not LanguageMode.EN_US)  # the settings refuse it
]


@pytest.mark.parametrize(("language", "medical", "speakers", "vocabulary", "model", "upload"), COMBINATIONS)
def test_every_job_the_pipeline_can_start_meets_transcribe_rules(language: LanguageMode, medical: bool,
                                                                  speakers: SpeakerMode, vocabulary: str | None,
                                                                  model: str | None, upload: str | None,
                                                                  audio: Encounter) -> None:
    pipeline = PipelineSettings(language=language, transcribe_medical=medical, speaker_mode=speakers)
    request = job_request(_settings(pipeline), dataclasses.replace(audio, language=upload),
                          "medscribe-dev-" + audio.encounter_id, "transcripts/x.json",
                          vocabulary=vocabulary, language_model=model)
    params = request.api_params()
    operation = "StartMedicalTranscriptionJob" if request.medical else "StartTranscriptionJob"
    kinds = {"medscribe-dev-sh-1": "medical" if medical else "standard"}  # self-heal builds the deployment's kind
    assert transcribe_problems(operation, params, kinds.get) == []
    job_language = upload or language.value
    # the chosen language is what the request carries (Medical only for en-US: Korean and
    # identification fall back to standard Transcribe)
    assert request.medical is (medical and job_language == "en-US")
    if job_language == "identify":
        assert (params.get("IdentifyLanguage"), params.get("LanguageOptions")) == (True, ["en-US", "ko-KR"])
        assert "LanguageCode" not in params
    else:
        assert params["LanguageCode"] == job_language
        assert "IdentifyLanguage" not in params
    # a vocabulary / language model is built for the deployment's language: never sent with another one
    customized = "ko-KR" if language is LanguageMode.KO_KR else "en-US"
    sent = {params["Settings"].get("VocabularyName"), (params.get("ModelSettings") or {}).get("LanguageModelName"),
            *(name for entry in (params.get("LanguageIdSettings") or {}).values() for name in entry.values())} - {None}
    if job_language not in (customized, "identify") or request.medical is not medical:
        assert sent == set()
    assert set(params.get("LanguageIdSettings") or {}) <= {customized}


def test_a_standard_job_naming_a_medical_vocabulary_is_rejected() -> None:
    """Defect: a Medical deployment's Korean upload falls back to standard Transcribe, which finds no
    standard vocabulary of the medical vocabulary's name."""
    params = JobRequest("j", "s3://b/k", "mp3", "out", "k.json", None, "ko-KR", vocabulary_name="v").api_params()
    assert any("standard vocabulary" in p for p in transcribe_problems("StartTranscriptionJob", params,
                                                                       {"v": "medical"}.get))
    assert transcribe_problems("StartTranscriptionJob", params, {"v": "standard"}.get) == []


def test_with_language_identification_the_vocabulary_and_model_go_in_language_id_settings() -> None:
    """Defect: Settings.VocabularyName with IdentifyLanguage fails every job."""
    params = JobRequest("j", "s3://b/k", "mp3", "out", "k.json", None, "identify",
                        vocabulary_name="v", language_model_name="m").api_params()
    assert "VocabularyName" not in params["Settings"]
    assert "ModelSettings" not in params
    assert params["LanguageIdSettings"] == {"en-US": {"VocabularyName": "v", "LanguageModelName": "m"}}
    old = {**params, "Settings": {**params["Settings"], "VocabularyName": "v"}}
    del old["LanguageIdSettings"]
    assert any("LanguageIdSettings" in p for p in transcribe_problems("StartTranscriptionJob", old))


def test_a_medical_job_naming_a_standard_vocabulary_is_rejected() -> None:
    params = JobRequest("j", "s3://b/k", "mp3", "out", "k.json", None, "en-US", medical=True,
                        vocabulary_name="v").api_params()
    kinds = {"v": "standard"}
    assert any("medical vocabulary" in p for p in transcribe_problems("StartMedicalTranscriptionJob", params,
                                                                      kinds.get))
    assert transcribe_problems("StartMedicalTranscriptionJob", params, {"v": "medical"}.get) == []


def test_list_format_vocabularies_are_flagged_as_deprecated() -> None:
    problems = transcribe_problems("CreateVocabulary", {"VocabularyName": "v", "LanguageCode": "en-US",
                                                        "Phrases": ["D.N.A."]})
    assert [p for p in problems if p.startswith(DEPRECATED)]


def test_every_recorded_transcribe_request_meets_the_rules(recordings: Recordings) -> None:
    calls = [call for call in recordings.calls if call.service == "transcribe"]
    assert calls, "no Transcribe request was recorded"
    kinds: dict[tuple[str, str], str] = {}  # (test, name): each test has its own account's vocabularies
    for call in calls:  # what each vocabulary name is, from the create calls the tests made
        if call.operation in ("CreateVocabulary", "CreateMedicalVocabulary"):
            kind = "medical" if "Medical" in call.operation else "standard"
            kinds[(call.test, str(call.params.get("VocabularyName")))] = kind
    failing = {f"{call.test}: {call.operation} #{index}": transcribe_problems(
        call.operation, call.params, lambda name, test=call.test: kinds.get((test, name)))
        for index, call in enumerate(calls)}
    assert {name: found for name, found in failing.items() if found} == {}


# --- Amazon Comprehend Medical -------------------------------------------------------------------


def test_the_comprehend_medical_rule_counts_bytes_not_characters() -> None:
    assert comprehend_medical_problems("DetectEntitiesV2", {"Text": "e" * 19_999}) == []
    assert comprehend_medical_problems("DetectEntitiesV2", {"Text": "é" * 10_000})  # 10,000 characters, 20,000 bytes
    assert comprehend_medical_problems("DetectEntitiesV2", {"Text": ""})
    assert comprehend_medical_problems("DetectPHI", {"Text": "e" * 19_999}) == []
    assert comprehend_medical_problems("DetectPHI", {"Text": "가" * 6_667})  # 6,667 characters, 20,001 bytes
    assert comprehend_medical_problems("DetectPHI", {"Text": ""})
    assert comprehend_medical_problems("DetectPHI", {"Text": "seen by Dr. Patel", "LanguageCode": "en"})
    for operation in ("InferICD10CM", "InferRxNorm", "InferSNOMEDCT"):
        assert comprehend_medical_problems(operation, {"Text": "e" * 10_000}) == []
        assert comprehend_medical_problems(operation, {"Text": "e" * 10_001})
        assert comprehend_medical_problems(operation, {"Text": "é" * 5_001})  # 5,001 characters, 10,002 bytes
        assert comprehend_medical_problems(operation, {})  # Text is required
        assert comprehend_medical_problems(operation, {"Text": "fever", "LanguageCode": "en"})


def test_every_recorded_comprehend_medical_request_meets_the_rules(recordings: Recordings) -> None:
    calls = [call for call in recordings.calls if call.service == "comprehendmedical"]
    assert calls, "no Comprehend Medical request was recorded: the self-heal and entities handler tests did not run"
    # self-heal's DetectEntitiesV2 and the entities stage's five calls (tests/handlers/test_entities.py)
    assert {call.operation for call in calls} == {"DetectEntitiesV2", "InferICD10CM", "InferRxNorm", "InferSNOMEDCT",
                                                  "DetectPHI"}
    failing = {f"{call.test} #{index}": comprehend_medical_problems(call.operation, call.params)
               for index, call in enumerate(calls)}
    assert {name: found for name, found in failing.items() if found} == {}
