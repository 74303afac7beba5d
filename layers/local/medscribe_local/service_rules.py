"""Request rules AWS applies on the server side that botocore does not check before sending.

botocore validates a request against its service model (types, required members, enums, lengths)
but not the patterns and cross-member rules the services enforce themselves, so a request can pass
every offline check and still fail in a real account. These functions list the rule violations in
one request; they are used by the local services (the local Transcribe answers BadRequestException,
the strict local Converse endpoint ValidationException) and by the contract test tier, which applies
them to every request the tests record. Each rule cites where AWS documents it.

Bedrock Converse (API reference: Converse, Tool, ToolSpecification, ToolInputSchema, ToolChoice,
SpecificToolChoice, Message, ContentBlock; Anthropic tool use):
- a tool name matches `^[a-zA-Z0-9_-]{1,64}$`; tool names are unique; a description is non-empty;
- `inputSchema.json` is a JSON object schema (`"type": "object"`) whose top-level property keys match
  `^[a-zA-Z0-9_.-]{1,64}$` ("Property keys should match pattern");
- `toolChoice` is exactly one of auto / any / tool, and `tool.name` names a declared tool; a tool
  choice needs tools;
- messages start with `user`, alternate roles, and have non-empty content; text blocks are not blank
  ("The text field in the ContentBlock object is blank"); system text blocks are not blank;
- `inferenceConfig.maxTokens` >= 1, `temperature` and `topP` in [0, 1].

Amazon Transcribe (API reference: StartTranscriptionJob, StartMedicalTranscriptionJob, Settings,
LanguageIdSettings, CreateVocabulary, CreateMedicalVocabulary, CreateLanguageModel; Developer Guide:
"Custom vocabularies", "Creating a custom vocabulary using a table", "Custom language models"):
- job, vocabulary and model names match `^[0-9a-zA-Z._-]+` and are at most 200 characters;
- exactly one of LanguageCode, IdentifyLanguage, IdentifyMultipleLanguages;
- with language identification, vocabularies and language models go in `LanguageIdSettings` (one
  entry per language in LanguageOptions), never in `Settings.VocabularyName` or `ModelSettings`;
  `LanguageIdSettings` needs identification and `LanguageOptions`;
- ShowSpeakerLabels and ChannelIdentification are not both set; MaxSpeakerLabels (2-30) only with
  ShowSpeakerLabels, which needs it;
- a custom language model only for a CLM language (`CLM_LANGUAGES`); BaseModelName NarrowBand or WideBand;
- OutputEncryptionKMSKeyId needs OutputBucketName;
- a standard job's vocabulary (Settings or LanguageIdSettings) is a standard one, never a medical one;
- Medical: en-US, Specialty PRIMARYCARE, Type CONVERSATION or DICTATION, OutputBucketName required,
  and its VocabularyName must name a *medical* vocabulary (`vocabulary_kind` tells; stateful);
- CreateVocabulary: exactly one of Phrases and VocabularyFileUri; CreateMedicalVocabulary: en-US and
  a VocabularyFileUri (no Phrases); a phrase is at most 256 characters in the language's character set;
- a vocabulary table (the file a VocabularyFileUri names): a tab-separated header naming the four
  columns Phrase, SoundsLike, IPA, DisplayAs (any order), a Phrase on every row, at most 50 KB.

`DEPRECATED` lists what AWS still accepts but documents as deprecated (list-format vocabularies):
the contract tier fails on it, the local services accept it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from medscribe.domain.vocabulary import VOCABULARY_MAX_BYTES, phrase_problems

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SCHEMA_PROPERTY_KEY = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
TRANSCRIBE_NAME = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
CLM_LANGUAGES = frozenset({"en-US", "hi-IN", "es-US", "en-GB", "en-AU", "de-DE", "ja-JP"})
CLM_BASE_MODELS = frozenset({"NarrowBand", "WideBand"})
TABLE_COLUMNS = frozenset({"Phrase", "SoundsLike", "IPA", "DisplayAs"})
DEPRECATED = "deprecated:"  # prefix of a problem AWS accepts today but documents as deprecated

VocabularyKind = Callable[[str], str | None]  # name -> "medical" | "standard" | None (unknown)


# --- Bedrock Converse ---------------------------------------------------------------------------


def converse_problems(request: Mapping[str, Any]) -> list[str]:
    """What Bedrock's Converse / ConverseStream would reject in `request` (botocore's parameters)."""
    problems = _message_problems(request.get("messages"), request.get("system"))
    config = request.get("inferenceConfig") or {}
    if "maxTokens" in config and not (isinstance(config["maxTokens"], int) and config["maxTokens"] >= 1):
        problems.append("inferenceConfig.maxTokens must be at least 1")
    for member in ("temperature", "topP"):
        value = config.get(member)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            problems.append(f"inferenceConfig.{member} must be between 0 and 1")
    if "toolConfig" in request:
        problems += _tool_problems(request["toolConfig"] or {})
    return problems


def _message_problems(messages: Any, system: Any) -> list[str]:
    problems: list[str] = []
    if not isinstance(messages, list) or not messages:
        return ["messages must be a non-empty list"]
    if messages[0].get("role") != "user":
        problems.append("the first message must have the role 'user'")
    for index, message in enumerate(messages):
        if index and message.get("role") == messages[index - 1].get("role"):
            problems.append(f"messages[{index}]: roles must alternate between 'user' and 'assistant'")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            problems.append(f"messages[{index}].content must be a non-empty list")
            continue
        problems += [f"messages[{index}].content[{block_index}]: the text field is blank"
                     for block_index, block in enumerate(content)
                     if "text" in block and not str(block["text"]).strip()]
    problems += [f"system[{index}]: the text field is blank" for index, block in enumerate(system or [])
                 if "text" in block and not str(block["text"]).strip()]
    return problems


def _tool_problems(tool_config: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    tools = tool_config.get("tools") or []
    if not tools:
        problems.append("toolConfig.tools must hold at least one tool")
    names: list[str] = []
    for index, tool in enumerate(tools):
        spec = tool.get("toolSpec")
        if spec is None:
            continue  # a cachePoint or another tool kind
        name = spec.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            problems.append(f"tools[{index}].toolSpec.name must match {TOOL_NAME.pattern}")
        if name in names:
            problems.append(f"tools[{index}].toolSpec.name is not unique")
        names.append(str(name))
        if "description" in spec and not str(spec["description"]).strip():
            problems.append(f"tools[{index}].toolSpec.description must not be empty")
        schema = (spec.get("inputSchema") or {}).get("json")
        if not isinstance(schema, Mapping):
            problems.append(f"tools[{index}].toolSpec.inputSchema.json must be a JSON schema object")
            continue
        if schema.get("type") != "object":
            problems.append(f"tools[{index}]: the input schema's type must be 'object'")
        bad = [key for key in (schema.get("properties") or {}) if not SCHEMA_PROPERTY_KEY.match(str(key))]
        if bad:
            problems.append(f"tools[{index}]: {len(bad)} top-level property key(s) do not match "
                            f"{SCHEMA_PROPERTY_KEY.pattern} (Property keys should match pattern)")
    choice = tool_config.get("toolChoice")
    if choice is not None:
        kinds = [kind for kind in ("auto", "any", "tool") if kind in choice]
        if len(kinds) != 1:
            problems.append("toolChoice must be exactly one of auto, any, tool")
        elif kinds[0] == "tool" and (choice["tool"] or {}).get("name") not in names:
            problems.append("toolChoice.tool.name must name a tool in toolConfig.tools")
    return problems


# --- Amazon Comprehend Medical ------------------------------------------------------------------

# DetectEntitiesV2 and DetectPHI (API reference, Request Parameters, Text): "Each string must contain
# fewer than 20,000 bytes of characters"; the service model's length bound counts characters, and botocore checks
# only the minimum, so a text of accented or non-Latin characters could pass it and still be rejected.
# InferICD10CM, InferRxNorm, InferSNOMEDCT: "a string from 1 to 10000 characters" (the model: max 10000);
# checked here in UTF-8 bytes too, the stricter reading (the service measures DetectEntitiesV2's in bytes).
COMPREHEND_MEDICAL_TEXT_BYTES = 20_000
COMPREHEND_MEDICAL_INFER_TEXT_BYTES = 10_000
COMPREHEND_MEDICAL_INFER = frozenset({"InferICD10CM", "InferRxNorm", "InferSNOMEDCT"})


def comprehend_medical_problems(operation: str, params: Mapping[str, Any]) -> list[str]:
    """What Comprehend Medical would reject in one DetectEntitiesV2 (or DetectEntities), DetectPHI or
    Infer* request."""
    if operation not in ("DetectEntitiesV2", "DetectEntities", "DetectPHI", *COMPREHEND_MEDICAL_INFER):
        return []
    text = params.get("Text")
    if not isinstance(text, str) or not text:
        return ["Text must be a non-empty string"]
    if set(params) != {"Text"}:
        return [f"unknown parameters: {sorted(set(params) - {'Text'})}"]
    size = len(text.encode("utf-8"))
    if operation in COMPREHEND_MEDICAL_INFER:
        if size > COMPREHEND_MEDICAL_INFER_TEXT_BYTES:
            return [f"Text must be at most {COMPREHEND_MEDICAL_INFER_TEXT_BYTES} characters (it is {size} UTF-8 bytes)"]
        return []
    if size >= COMPREHEND_MEDICAL_TEXT_BYTES:
        return [f"Text must be fewer than {COMPREHEND_MEDICAL_TEXT_BYTES} UTF-8 bytes (it is {size})"]
    return []


# --- Amazon Transcribe --------------------------------------------------------------------------


def transcribe_problems(operation: str, params: Mapping[str, Any],
                        vocabulary_kind: VocabularyKind | None = None) -> list[str]:
    """What Transcribe would reject (or documents as deprecated) in one request. `vocabulary_kind`
    tells which kind of vocabulary a name is, where known (for Medical jobs)."""
    check = _TRANSCRIBE_CHECKS.get(operation)
    return check(params, vocabulary_kind or (lambda _name: None)) if check else []


def _name(params: Mapping[str, Any], member: str) -> list[str]:
    value = params.get(member)
    if not isinstance(value, str) or not TRANSCRIBE_NAME.match(value):
        return [f"{member}: Member must satisfy regular expression pattern: ^[0-9a-zA-Z._-]+ "
                "(at most 200 characters)"]
    return []


def _speaker_settings(settings: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    show, most = settings.get("ShowSpeakerLabels"), settings.get("MaxSpeakerLabels")
    if show and settings.get("ChannelIdentification"):
        problems.append("ShowSpeakerLabels and ChannelIdentification cannot both be set")
    if show and most is None:
        problems.append("ShowSpeakerLabels needs MaxSpeakerLabels")
    if most is not None and not show:
        problems.append("MaxSpeakerLabels needs ShowSpeakerLabels")
    if most is not None and not (isinstance(most, int) and 2 <= most <= 30):
        problems.append("MaxSpeakerLabels must be between 2 and 30")
    return problems


def _output(params: Mapping[str, Any]) -> list[str]:
    if params.get("OutputEncryptionKMSKeyId") and not params.get("OutputBucketName"):
        return ["OutputEncryptionKMSKeyId needs OutputBucketName"]
    return []


def _start_job(params: Mapping[str, Any], kind: VocabularyKind) -> list[str]:
    problems = _name(params, "TranscriptionJobName") + _output(params)
    settings = params.get("Settings") or {}
    problems += _speaker_settings(settings)
    named = [settings.get("VocabularyName"),
             *((entry or {}).get("VocabularyName") for entry in (params.get("LanguageIdSettings") or {}).values())]
    if any(name and kind(str(name)) == "medical" for name in named):  # e.g. a Medical deployment's Korean upload
        problems.append("a standard job's vocabulary must be a standard vocabulary (CreateVocabulary); a medical "
                        "vocabulary is not found by StartTranscriptionJob")
    identify = bool(params.get("IdentifyLanguage")) or bool(params.get("IdentifyMultipleLanguages"))
    if int(bool(params.get("LanguageCode"))) + int(bool(params.get("IdentifyLanguage"))) \
            + int(bool(params.get("IdentifyMultipleLanguages"))) != 1:
        problems.append("exactly one of LanguageCode, IdentifyLanguage, IdentifyMultipleLanguages is required")
    options = list(params.get("LanguageOptions") or [])
    id_settings = params.get("LanguageIdSettings") or {}
    if identify:
        if settings.get("VocabularyName"):
            problems.append("with language identification, vocabularies go in LanguageIdSettings, "
                            "not Settings.VocabularyName")
        if params.get("ModelSettings"):
            problems.append("with language identification, language models go in LanguageIdSettings, "
                            "not ModelSettings")
    elif id_settings:
        problems.append("LanguageIdSettings needs IdentifyLanguage or IdentifyMultipleLanguages")
    if id_settings:
        if not options:
            problems.append("LanguageIdSettings needs LanguageOptions")
        problems += [f"LanguageIdSettings names {language}, which is not in LanguageOptions"
                     for language in id_settings if language not in options]
        problems += [f"LanguageIdSettings[{language}]: a custom language model for a language that has none"
                     for language, entry in id_settings.items()
                     if (entry or {}).get("LanguageModelName") and language not in CLM_LANGUAGES]
    if len(options) != len(set(options)):
        problems.append("LanguageOptions must not repeat a language")
    model = (params.get("ModelSettings") or {}).get("LanguageModelName")
    if model and params.get("LanguageCode") and params["LanguageCode"] not in CLM_LANGUAGES:
        problems.append(f"custom language models do not support {params['LanguageCode']}")
    return problems


def _start_medical_job(params: Mapping[str, Any], kind: VocabularyKind) -> list[str]:
    problems = _name(params, "MedicalTranscriptionJobName") + _output(params)
    settings = params.get("Settings") or {}
    problems += _speaker_settings(settings)
    if params.get("LanguageCode") != "en-US":
        problems.append("Medical jobs must be en-US")
    if params.get("Specialty") != "PRIMARYCARE":
        problems.append("Medical jobs: Specialty must be PRIMARYCARE")
    if params.get("Type") not in ("CONVERSATION", "DICTATION"):
        problems.append("Medical jobs: Type must be CONVERSATION or DICTATION")
    if not params.get("OutputBucketName"):
        problems.append("Medical jobs need OutputBucketName")
    vocabulary = settings.get("VocabularyName")
    if vocabulary and kind(str(vocabulary)) == "standard":
        problems.append("a Medical job's VocabularyName must name a medical vocabulary (CreateMedicalVocabulary)")
    return problems


def _create_vocabulary(params: Mapping[str, Any], _kind: VocabularyKind) -> list[str]:
    problems = _name(params, "VocabularyName")
    phrases, uri = params.get("Phrases"), params.get("VocabularyFileUri")
    if (phrases is None) == (uri is None):
        problems.append("exactly one of Phrases and VocabularyFileUri is required")
    if phrases is not None:
        problems.append(f"{DEPRECATED} list-format vocabularies (Phrases) are deprecated: use a table "
                        "(VocabularyFileUri)")
        problems += phrase_problems(list(phrases), str(params.get("LanguageCode") or ""))
    if uri is not None and not str(uri).startswith("s3://"):
        problems.append("VocabularyFileUri must be an s3:// URI")
    return problems


def _create_medical_vocabulary(params: Mapping[str, Any], _kind: VocabularyKind) -> list[str]:
    problems = _name(params, "VocabularyName")
    if params.get("LanguageCode") != "en-US":
        problems.append("medical vocabularies must be en-US")
    if not str(params.get("VocabularyFileUri") or "").startswith("s3://"):
        problems.append("CreateMedicalVocabulary needs an s3:// VocabularyFileUri (a table)")
    return problems


def _create_language_model(params: Mapping[str, Any], _kind: VocabularyKind) -> list[str]:
    problems = _name(params, "ModelName")
    if params.get("LanguageCode") not in CLM_LANGUAGES:
        problems.append(f"custom language models do not support {params.get('LanguageCode')}")
    if params.get("BaseModelName") not in CLM_BASE_MODELS:
        problems.append("BaseModelName must be NarrowBand or WideBand")
    config = params.get("InputDataConfig") or {}
    if not str(config.get("S3Uri") or "").startswith("s3://"):
        problems.append("InputDataConfig.S3Uri must be an s3:// URI")
    if not re.match(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/", str(config.get("DataAccessRoleArn") or "")):
        problems.append("InputDataConfig.DataAccessRoleArn must be an IAM role ARN")
    return problems


_TRANSCRIBE_CHECKS: dict[str, Callable[[Mapping[str, Any], VocabularyKind], list[str]]] = {
    "StartTranscriptionJob": _start_job,
    "StartMedicalTranscriptionJob": _start_medical_job,
    "CreateVocabulary": _create_vocabulary,
    "UpdateVocabulary": _create_vocabulary,
    "CreateMedicalVocabulary": _create_medical_vocabulary,
    "UpdateMedicalVocabulary": _create_medical_vocabulary,
    "CreateLanguageModel": _create_language_model,
    # erasure (medscribe.adapters.erasure.JobDeleter): the job name's own constraint
    "DeleteTranscriptionJob": lambda params, _kind: _name(params, "TranscriptionJobName"),
    "DeleteMedicalTranscriptionJob": lambda params, _kind: _name(params, "MedicalTranscriptionJobName"),
}


def vocabulary_table_problems(text: str, language: str) -> list[str]:
    """What Transcribe would reject in a vocabulary table file (standard or medical)."""
    problems: list[str] = []
    if len(text.encode("utf-8")) > VOCABULARY_MAX_BYTES:
        problems.append(f"a vocabulary file may not exceed {VOCABULARY_MAX_BYTES} bytes")
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows:
        return [*problems, "the vocabulary table is empty"]
    header = rows[0].split("\t")
    if set(header) != TABLE_COLUMNS or len(header) != len(TABLE_COLUMNS):
        return [*problems, "the header must name the columns Phrase, SoundsLike, IPA and DisplayAs, tab-separated"]
    phrases: list[str] = []
    for number, row in enumerate(rows[1:], start=2):
        cells = row.split("\t")
        if len(cells) != len(header):
            problems.append(f"row {number}: {len(cells)} columns, the header has {len(header)}")
            continue
        if any(cell != cell.strip() for cell in cells):
            problems.append(f"row {number}: values must not have leading or trailing spaces")
        entry = dict(zip(header, cells, strict=True))
        if not entry["Phrase"]:
            problems.append(f"row {number}: every row needs a Phrase")
        else:
            phrases.append(entry["Phrase"])
        if len(entry["DisplayAs"]) > 256:
            problems.append(f"row {number}: DisplayAs is longer than 256 characters")
    return problems + phrase_problems(phrases, language)
