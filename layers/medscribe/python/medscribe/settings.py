"""Settings: the deployment settings (cdk.json context) and the per-function runtime settings.

`PipelineSettings` is the single source of every tunable. The CDK stack reads it from the
`medscribe` key of cdk.json context (`-c medscribe.stage=prod` style overrides are not supported by
CDK for nested keys, so override with a context file or edit cdk.json); the local runtime reads the
same cdk.json. Defaults live here and are repeated in cdk.json so a reader sees them in one place;
a test keeps the two and the README table in step.

`FunctionSettings` is what a Lambda handler needs at cold start, read from environment variables
whose names are defined once in `ENV`. A missing variable is a clear error at import, never "".
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONTEXT_KEY = "medscribe"
# Where Cognito may send a browser after sign-in or sign-out: https anywhere, plain http only to this machine
# (Cognito's own rule, which it enforces at deploy time; checked here so synth stops first).
CALLBACK_URL = r"^(https://[^\s/?#]+|http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?)(/[^\s#]*)?$"


# What the pipeline ingests (domain.validation.AUDIO_FORMATS, TEXT_EXTENSIONS; a test keeps them equal):
# the extensions an upload form may offer.
UploadExtension = Literal["mp3", "mp4", "m4a", "wav", "flac", "ogg", "amr", "webm", "txt", "md", "text"]
UPLOAD_EXTENSIONS: tuple[UploadExtension, ...] = ("mp3", "mp4", "m4a", "wav", "flac", "ogg", "amr", "webm", "txt",
                                                  "md", "text")


class LanguageMode(StrEnum):
    EN_US = "en-US"
    KO_KR = "ko-KR"
    IDENTIFY = "identify"


class SpeakerMode(StrEnum):
    SPEAKERS = "speakers"  # speaker diarization (ShowSpeakerLabels)
    CHANNELS = "channels"  # one speaker per audio channel (ChannelIdentification)


class PipelineSettings(BaseModel):
    """Every deployment setting, with its default. See README "Configuration"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")] = Field(
        "dev", description="Stage name; prefixes the stack name and resource names."
    )
    notification_email: str | None = Field(
        None, description="Email address subscribed to the notification topic (confirm the email AWS sends)."
    )
    language: LanguageMode = Field(LanguageMode.EN_US, description="Transcription language of recordings that name "
                                   "none (a medscribe-language tag, an audio/<language>/ key): en-US, ko-KR, identify.")
    transcribe_medical: bool = Field(False, description="Use Amazon Transcribe Medical (en-US only; ko-KR and identify "
                                                        "uploads get standard Transcribe).")
    speaker_mode: SpeakerMode = Field(SpeakerMode.SPEAKERS, description="speakers (diarization) or channels.")
    max_speakers: Annotated[int, Field(ge=2, le=30)] = Field(2, description="Maximum speakers for diarization.")
    bedrock_model_id: str = Field(
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        description="Bedrock model or inference profile for notes (fast tier).",
    )
    bedrock_long_model_id: str = Field(
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        description="Bedrock model or inference profile for the repair attempt (a first answer with problems).",
    )
    note_engine: Literal["bedrock", "openai", "offline"] = Field(
        "bedrock", description="Note engine in AWS: Bedrock, an OpenAI-compatible endpoint, or offline (extractive)."
    )
    openai_base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = Field(
        None, description="OpenAI-compatible endpoint (note_engine openai), base URL including the API prefix, "
                          "e.g. http://ray-head:8000/v1. The local runtime uses it whenever it is set.",
    )
    openai_model: str | None = Field(None, description="The model the OpenAI-compatible endpoint serves.")
    openai_timeout_seconds: Annotated[float, Field(gt=0, le=900)] = Field(
        120.0, description="Read timeout of the OpenAI-compatible endpoint, per read (a stream may run longer)."
    )
    keyword_engine: Literal["comprehend-medical", "offline"] = Field(
        "comprehend-medical", description="Self-heal keyword candidates: Amazon Comprehend Medical where it "
                                          "supports the language and region (else the offline noun heuristic), or "
                                          "always the offline heuristic.",
    )
    entity_engine: Literal["comprehend-medical", "offline", "off"] = Field(
        "comprehend-medical", description="Coded clinical entities of documented encounters: Amazon Comprehend Medical "
                                          "(English; Korean is not coded), the offline extractor, or off (no stage "
                                          "work). The local runtime uses offline unless this is off.",
    )
    entities_reconcile_hours: Annotated[int, Field(ge=1, le=720)] = Field(
        48, description="The reconciler re-sends documented encounters without entities that were documented "
                        "within this many hours (and longer ago than stuck_after_seconds).",
    )
    note_template: Literal[
        "HISTORY_AND_PHYSICAL", "SOAP", "PHYSICAL_SOAP", "BEHAVIORAL_SOAP", "GIRPP", "BIRP", "SIRP", "DAP", "VISIT",
        "hp", "soap",
    ] = Field("hp", description="Default note template (a catalogue name; hp and soap are aliases of "
                                "HISTORY_AND_PHYSICAL and SOAP); an upload may choose another (README \"Templates\").")
    claim_judge: bool = Field(
        False, description="A second Bedrock pass (bedrock_model_id) judges each note claim against its cited lines; "
                           "it can only add problems. Costs one more request per note (bench/cost.py).",
    )
    max_concurrent_transcriptions: Annotated[int, Field(ge=2, le=1000)] = Field(
        20, description="Cap on concurrent transcription jobs (ingest event source maximum concurrency)."
    )
    stage_max_concurrency: Annotated[int, Field(ge=2, le=1000)] = Field(
        10, description="Maximum concurrency of every other stage's event source mapping."
    )
    reconcile_max_concurrency: Annotated[int, Field(ge=2, le=2)] = Field(
        2, description="The reconciler's event source maximum concurrency (2 is the SQS minimum)."
    )
    index_max_concurrency: Annotated[int, Field(ge=2, le=100)] = Field(
        2, description="The search indexer's event source maximum concurrency (bounds the write load on OpenSearch)."
    )
    search_instance_type: str = Field("t3.small.search", description="OpenSearch Service data node instance type.")
    search_instance_count: Annotated[int, Field(ge=1, le=20)] = Field(
        1, description="OpenSearch data nodes; 2 or more spreads them over two Availability Zones."
    )
    search_volume_gb: Annotated[int, Field(ge=10, le=1024)] = Field(
        10, description="EBS gp3 volume per data node (GiB)."
    )
    search_engine_version: str = Field("2.19", description="OpenSearch engine version of the search domain.")
    batch_size: Annotated[int, Field(ge=1, le=10)] = Field(5, description="SQS messages per handler invocation.")
    max_receive_count: Annotated[int, Field(ge=1, le=100)] = Field(
        5, description="Receives before a message moves to its dead-letter queue."
    )
    log_retention_days: Literal[
        30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653
    ] = Field(365, description="CloudWatch log retention in days (a value CloudWatch Logs accepts).")
    noncurrent_version_days: Annotated[int, Field(ge=1)] = Field(
        90, description="Days before non-current object versions expire (input and artifacts buckets)."
    )
    access_log_days: Annotated[int, Field(ge=1)] = Field(365, description="Days S3 server access logs are kept.")
    audit_retention_days: Annotated[int, Field(ge=1, le=36500)] = Field(
        2192, description="Days the workspace keeps an audit event (view, edit, sign, export, upload, erase): the "
                          "table's TTL deletes it after that.",
    )
    audio_max_bytes: Annotated[int, Field(ge=1)] = Field(
        2 * 1024**3, description="Largest accepted audio object (Amazon Transcribe limit: 2 GB)."
    )
    audio_min_seconds: Annotated[float, Field(ge=0)] = Field(
        0.5, description="Shortest accepted audio where the duration is readable from the header."
    )
    text_max_bytes: Annotated[int, Field(ge=1)] = Field(1024**2, description="Largest accepted text note.")
    vocabulary_name: str | None = Field(
        None, description="Active Transcribe custom vocabulary for new jobs (until the self-heal registry sets one)."
    )
    language_model_name: str | None = Field(
        None, description="Active Transcribe custom language model for new jobs (not for ko-KR or Medical)."
    )
    reconcile_interval_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        5, description="How often the reconciler looks for stuck encounters (EventBridge Scheduler)."
    )
    stuck_after_seconds: Annotated[int, Field(ge=10)] = Field(
        900, description="Age after which a transcribing encounter is asked about (lost completion events)."
    )
    selfheal_interval_minutes: Annotated[int, Field(ge=5, le=1440)] = Field(
        60, description="How often the self-heal loop runs (EventBridge Scheduler): build, evaluate, promote."
    )
    selfheal_margin: Annotated[float, Field(ge=0, le=1)] = Field(
        0.01, description="A candidate model replaces the incumbent only if its mean error rate is lower by this much."
    )
    selfheal_language_model: bool = Field(
        True, description="Also train a custom language model (Wikipedia text per keyword) where the language has one."
    )
    selfheal_max_keywords: Annotated[int, Field(ge=1, le=1000)] = Field(
        300, description="Most keywords (given plus learned) in one candidate vocabulary."
    )
    selfheal_keep_candidates: Annotated[int, Field(ge=0, le=50)] = Field(
        3, description="Evaluated candidate models whose Transcribe vocabulary / language model are kept (newest "
                       "first) besides the active one; older, retired and failed ones are deleted (account quotas)."
    )
    alarm_period_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        15, description="Period of the failure alarms (failed encounters, transcriptions, self-heal): the sum over it."
    )
    alarm_failed_encounters: Annotated[int, Field(ge=1)] = Field(
        1, description="Alarm when this many encounters end FAILED (transcription or documentation) in one period."
    )
    alarm_transcription_failures: Annotated[int, Field(ge=1)] = Field(
        1, description="Alarm when this many transcriptions end FAILED in one period."
    )
    alarm_selfheal_failures: Annotated[int, Field(ge=1)] = Field(
        1, description="Alarm when this many self-heal models fail (build failed or Transcribe quota) in one period."
    )
    alarm_needs_review_period_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        60, description="Period of the NEEDS_REVIEW rate alarm."
    )
    alarm_needs_review_ratio: Annotated[float, Field(gt=0, le=1)] = Field(
        0.5, description="Alarm when NEEDS_REVIEW / (DOCUMENTED + NEEDS_REVIEW) in one period reaches this."
    )
    alarm_needs_review_min_notes: Annotated[int, Field(ge=1)] = Field(
        5, description="The NEEDS_REVIEW rate alarms only over periods with at least this many documented notes."
    )
    workspace_enabled: bool = Field(
        True, description="Deploy the clinician workspace: a Cognito user pool, an HTTP API (JWT authorizer on every "
                          "route) and the workspace function (README, Deploy to AWS)."
    )
    workspace_callback_urls: tuple[Annotated[str, Field(pattern=CALLBACK_URL)], ...] = Field(
        (), description="Sign-in callback URLs besides the API's own (https, or http on localhost/127.0.0.1)."
    )
    workspace_logout_urls: tuple[Annotated[str, Field(pattern=CALLBACK_URL)], ...] = Field(
        (), description="Sign-out URLs besides the API's own (https, or http on localhost/127.0.0.1)."
    )
    workspace_access_token_minutes: Annotated[int, Field(ge=5, le=1440)] = Field(
        30, description="Lifetime of the workspace's access and ID tokens (Cognito allows 5 minutes to 1 day)."
    )
    workspace_refresh_token_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        1, description="Lifetime of the workspace's refresh token: how long a sign-in lasts (Cognito: up to 10 years)."
    )
    workspace_mfa: Literal["OFF", "OPTIONAL", "REQUIRED"] = Field(
        "REQUIRED", description="Multi-factor sign-in to the workspace (TOTP authenticator apps; no SMS)."
    )
    workspace_upload_max_mb: Annotated[int, Field(ge=1, le=2048)] = Field(
        500, description="Largest file the workspace's upload page accepts, in MiB (the upload form's size limit; "
                         "a text note is also held to text_max_bytes)."
    )
    workspace_upload_extensions: tuple[UploadExtension, ...] = Field(
        UPLOAD_EXTENSIONS, description="File extensions the workspace's upload page accepts (each one the pipeline "
                                       "takes: audio for kind audio, text for kind text)."
    )
    local_selfheal_interval_seconds: Annotated[int, Field(ge=1)] = Field(
        3600, description="Local runtime only: self-heal timer (run a cycle now with `medscribe selfheal`)."
    )
    local_reconcile_interval_seconds: Annotated[int, Field(ge=1)] = Field(
        10, description="Local runtime only: reconciler timer."
    )
    local_stuck_after_seconds: Annotated[int, Field(ge=10)] = Field(
        20, description="Local runtime only: stuck age for the reconciler."
    )
    local_speech_model: Literal["auto", "tiny.en", "base"] = Field(
        "auto", description="Local runtime only: Whisper model (auto: tiny.en for en-US, base otherwise)."
    )
    local_visibility_timeout_seconds: Annotated[int, Field(ge=1, le=900)] = Field(
        5, description="Local runtime only: queue visibility timeout, short so retries are quick."
    )

    @model_validator(mode="after")
    def _medical_is_english(self) -> PipelineSettings:
        if self.transcribe_medical and self.language is not LanguageMode.EN_US:
            raise ValueError("transcribe_medical needs language en-US (Transcribe Medical transcribes US English only)")
        return self

    @model_validator(mode="after")
    def _openai_endpoint_is_complete(self) -> PipelineSettings:
        if self.note_engine == "openai" and not self.openai_base_url:
            raise ValueError("note_engine 'openai' needs openai_base_url and openai_model")
        if self.openai_base_url and not self.openai_model:
            raise ValueError("openai_base_url is set but openai_model is not")
        return self

    def updated(self, **changes: Any) -> PipelineSettings:
        """These settings with some values changed, validated (model_copy would skip the checks): how the
        local runtime and the CLI choose engines and timings."""
        return PipelineSettings.model_validate({**self.model_dump(), **changes})

    @classmethod
    def from_context(cls, context: dict[str, Any] | None) -> PipelineSettings:
        try:
            return cls.model_validate(context or {})
        except ValidationError as exc:
            raise SystemExit(f"invalid '{CONTEXT_KEY}' settings in cdk.json context:\n{exc}") from exc

    @property
    def prefix(self) -> str:
        return f"medscribe-{self.stage}"


def project_root() -> Path:
    """The repository root (layers/medscribe/python/medscribe/settings.py -> four levels up)."""
    override = os.environ.get("MEDSCRIBE_HOME")
    return Path(override) if override else Path(__file__).resolve().parents[4]


@cache
def load_settings(cdk_json: Path | None = None) -> PipelineSettings:
    """Settings as the stack sees them: the `medscribe` key of cdk.json's context."""
    path = cdk_json or project_root() / "cdk.json"
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {}) if path.exists() else {}
    return PipelineSettings.from_context(context.get(CONTEXT_KEY))


class ENV:
    """Environment variable names shared by the stack, the local runtime and the handlers."""

    TABLE = "MEDSCRIBE_TABLE"
    INPUT_BUCKET = "MEDSCRIBE_INPUT_BUCKET"
    ARTIFACTS_BUCKET = "MEDSCRIBE_ARTIFACTS_BUCKET"
    TOPIC_ARN = "MEDSCRIBE_TOPIC_ARN"
    KMS_KEY_ARN = "MEDSCRIBE_KMS_KEY_ARN"
    SETTINGS = "MEDSCRIBE_SETTINGS"  # the PipelineSettings as JSON
    SEARCH_URL = "MEDSCRIBE_SEARCH_URL"  # https://<OpenSearch domain endpoint>, or sqlite:///<file> locally
    CLM_ROLE_ARN = "MEDSCRIBE_CLM_ROLE_ARN"  # the role Transcribe uses to read language model training text
    # the workspace function only (stacks/workspace.py): whose tokens the HTTP API accepted, and where to sign in
    WORKSPACE_USER_POOL_ID = "MEDSCRIBE_WORKSPACE_USER_POOL_ID"
    WORKSPACE_CLIENT_ID = "MEDSCRIBE_WORKSPACE_CLIENT_ID"
    WORKSPACE_AUTH_URL = "MEDSCRIBE_WORKSPACE_AUTH_URL"  # https://<domain>.auth.<region>.amazoncognito.com


class FunctionSettings(BaseModel):
    """What every handler reads at cold start. Built once per process by `function_settings()`."""

    model_config = ConfigDict(frozen=True)

    table_name: str
    input_bucket: str
    artifacts_bucket: str
    topic_arn: str
    kms_key_arn: str
    pipeline: PipelineSettings
    search_url: str | None = None  # only the search indexer needs it
    clm_role_arn: str | None = None  # only the self-heal loop needs it


def function_env(
    *, table: str, input_bucket: str, artifacts_bucket: str, topic_arn: str, kms_key_arn: str,
    settings: PipelineSettings, search_url: str | None = None,
) -> dict[str, str]:
    """The environment a handler runs with, used by the stack and by the local runtime alike."""
    return ({ENV.SEARCH_URL: search_url} if search_url else {}) | {
        ENV.TABLE: table,
        ENV.INPUT_BUCKET: input_bucket,
        ENV.ARTIFACTS_BUCKET: artifacts_bucket,
        ENV.TOPIC_ARN: topic_arn,
        ENV.KMS_KEY_ARN: kms_key_arn,
        ENV.SETTINGS: settings.model_dump_json(exclude_none=True),
    }


@cache
def function_settings() -> FunctionSettings:
    names = {
        "table_name": ENV.TABLE,
        "input_bucket": ENV.INPUT_BUCKET,
        "artifacts_bucket": ENV.ARTIFACTS_BUCKET,
        "topic_arn": ENV.TOPIC_ARN,
        "kms_key_arn": ENV.KMS_KEY_ARN,
    }
    missing = [env for env in [*names.values(), ENV.SETTINGS] if not os.environ.get(env)]
    if missing:
        raise RuntimeError(f"missing required environment variables: {', '.join(missing)}")
    return FunctionSettings(
        **{field: os.environ[env] for field, env in names.items()},
        pipeline=PipelineSettings.model_validate_json(os.environ[ENV.SETTINGS]),
        search_url=os.environ.get(ENV.SEARCH_URL) or None,
        clm_role_arn=os.environ.get(ENV.CLM_ROLE_ARN) or None,
    )
