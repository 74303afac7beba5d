"""Amazon Transcribe (standard and Medical) batch jobs. In the local runtime the same boto3 client
reaches the local speech engine (medscribe_local), which speaks the same API.

Throttling and quota errors (`ThrottlingException`, `LimitExceededException`) are retried here with
exponential backoff and jitter, on top of botocore's standard retries (which give up quickly on
quota errors and stop retrying once their retry budget is spent, e.g. under sustained faults); when
the attempts run out they become `TransientError`, and the SQS message is retried later.
`ConflictException` on start means the job already exists: it is read instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify, error_code
from medscribe.adapters.llm.retry import backoff_delay
from medscribe.domain.encounter import Encounter
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.language_choice import IDENTIFY, MEDICAL_LANGUAGE, medical_job
from medscribe.domain.transcribe_naming import customization_language
from medscribe.observability import logger
from medscribe.settings import FunctionSettings, SpeakerMode

T = TypeVar("T")
IDENTIFY_OPTIONS = ("en-US", "ko-KR")  # the languages a `language: identify` deployment chooses from
RETRYABLE = frozenset({"ThrottlingException", "LimitExceededException", "InternalFailureException",
                       "ServiceUnavailableException"})


@dataclass(frozen=True)
class JobRequest:
    job_name: str
    media_uri: str
    media_format: str
    output_bucket: str
    output_key: str
    kms_key_arn: str | None
    language: str  # en-US | ko-KR | identify
    medical: bool = False
    channel_identification: bool = False
    max_speakers: int = 2
    vocabulary_name: str | None = None
    language_model_name: str | None = None
    # the language the vocabulary and language model are built for (their LanguageIdSettings entry)
    customization_language: str = "en-US"

    def api_params(self) -> dict[str, Any]:
        """StartTranscriptionJob / StartMedicalTranscriptionJob parameters. Where the custom vocabulary
        and language model go depends on the job (Transcribe rejects them anywhere else): a Medical job
        takes a medical vocabulary in Settings and no language model; with language identification both
        go in LanguageIdSettings under their language; otherwise Settings.VocabularyName and
        ModelSettings (no language model for ko-KR)."""
        settings: dict[str, Any] = (
            {"ChannelIdentification": True} if self.channel_identification
            else {"ShowSpeakerLabels": True, "MaxSpeakerLabels": self.max_speakers}
        )
        if self.vocabulary_name and self.language != "identify":
            settings["VocabularyName"] = self.vocabulary_name
        params: dict[str, Any] = {
            "Media": {"MediaFileUri": self.media_uri},
            "MediaFormat": self.media_format,
            "OutputBucketName": self.output_bucket,
            "OutputKey": self.output_key,
            "Settings": settings,
        }
        if self.kms_key_arn:
            params["OutputEncryptionKMSKeyId"] = self.kms_key_arn
        if self.medical:
            # Medical: en-US only (job_request sends other languages to standard Transcribe),
            # conversation type, primary care; no custom language models.
            return {"MedicalTranscriptionJobName": self.job_name, "LanguageCode": MEDICAL_LANGUAGE,
                    "Specialty": "PRIMARYCARE", "Type": "CONVERSATION", **params}
        params["TranscriptionJobName"] = self.job_name
        if self.language == "identify":
            params["IdentifyLanguage"] = True
            params["LanguageOptions"] = list(IDENTIFY_OPTIONS)
            language = self.customization_language
            entry: dict[str, str] = {}
            if self.vocabulary_name:
                entry["VocabularyName"] = self.vocabulary_name
            if self.language_model_name and language != "ko-KR":
                entry["LanguageModelName"] = self.language_model_name
            if entry:
                params["LanguageIdSettings"] = {language: entry}
        else:
            params["LanguageCode"] = self.language
            if self.language_model_name and self.language != "ko-KR":  # CLMs do not support ko-KR
                params["ModelSettings"] = {"LanguageModelName": self.language_model_name}
        return params


def job_language(settings: FunctionSettings, encounter: Encounter) -> str:
    """The language of an audio encounter's job: what the upload chose (recorded at ingest), else the
    deployment's (a record from before languages were chosen per upload)."""
    return encounter.language or settings.pipeline.language.value


def job_is_medical(settings: FunctionSettings, encounter: Encounter) -> bool:
    """Whether the encounter's job is (or will be) a Transcribe Medical job: `transcribe_medical` and
    an en-US upload; Korean and language identification fall back to standard Transcribe."""
    return medical_job(job_language(settings, encounter), settings.pipeline.transcribe_medical)


def job_request(settings: FunctionSettings, encounter: Encounter, name: str, output_key: str, *,
                vocabulary: str | None, language_model: str | None) -> JobRequest:
    """The job for an audio encounter in its language under the deployment's settings, with the given
    model: one definition for the transcription stage's jobs and the self-heal loop's evaluation jobs.

    The custom vocabulary and language model are built for the deployment's language and job kind
    (`customization_language`; a medical vocabulary under `transcribe_medical`): a job in another
    language, or a standard job that fell back from Medical, runs without them (Transcribe rejects a
    vocabulary of another language or kind). With language identification they go in
    LanguageIdSettings under their own language."""
    pipeline = settings.pipeline
    language = job_language(settings, encounter)
    medical = medical_job(language, pipeline.transcribe_medical)
    customized = customization_language(pipeline.language.value)
    if medical != pipeline.transcribe_medical or language not in (customized, IDENTIFY):
        vocabulary = language_model = None
    if medical or customized == "ko-KR":
        language_model = None  # custom language models exist for neither
    return JobRequest(
        job_name=name,
        media_uri=f"s3://{encounter.source_bucket}/{encounter.source_key}",
        media_format=encounter.media_format or "mp3",
        output_bucket=settings.artifacts_bucket,
        output_key=output_key,
        kms_key_arn=settings.kms_key_arn,
        language=language,
        medical=medical,
        channel_identification=pipeline.speaker_mode is SpeakerMode.CHANNELS,
        max_speakers=pipeline.max_speakers,
        vocabulary_name=vocabulary,
        language_model_name=language_model,
        customization_language=customized,
    )


@dataclass(frozen=True)
class JobState:
    name: str
    status: str  # QUEUED | IN_PROGRESS | COMPLETED | FAILED | NOT_FOUND
    failure_reason: str | None = None
    language_code: str | None = None
    vocabulary_name: str | None = None
    language_model_name: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("COMPLETED", "FAILED")


class TranscribeJobs:
    def __init__(self, client: Any | None = None, *, attempts: int = 5, base_delay: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.attempts = attempts
        self.base_delay = base_delay
        self.sleep = sleep

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("transcribe")

    def _call(self, operation: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except ClientError as exc:
                code = error_code(exc)
                if code not in RETRYABLE:
                    raise
                if attempt == self.attempts:
                    raise TransientError(f"Transcribe {code} after {attempt} attempts") from exc
                delay = backoff_delay(attempt, self.base_delay, float("inf"))
                logger.warning("transcribe throttled; backing off", extra={"code": code, "attempt": attempt})
                self.sleep(delay)
        raise AssertionError("unreachable")

    def start(self, request: JobRequest) -> JobState:
        params = request.api_params()
        start = self.client.start_medical_transcription_job if request.medical else self.client.start_transcription_job
        try:
            response = self._call(lambda: start(**params))
        except ClientError as exc:
            if error_code(exc) == "ConflictException":
                logger.info("transcription job already exists", extra={"job_name": request.job_name})
                return self.get(request.job_name, medical=request.medical)
            if error_code(exc) == "BadRequestException":
                raise PermanentError(_message(exc)) from exc
            raise classify(exc) from exc
        return _state(response, request.medical)

    def get(self, job_name: str, *, medical: bool = False) -> JobState:
        try:
            if medical:
                response = self._call(lambda: self.client.get_medical_transcription_job(
                    MedicalTranscriptionJobName=job_name))
            else:
                response = self._call(lambda: self.client.get_transcription_job(TranscriptionJobName=job_name))
        except ClientError as exc:
            if error_code(exc) == "NotFoundException" or (
                error_code(exc) == "BadRequestException" and "couldn't be found" in _message(exc)
            ):
                return JobState(job_name, "NOT_FOUND")
            raise classify(exc) from exc
        return _state(response, medical)


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _state(response: dict[str, Any], medical: bool) -> JobState:
    job = response["MedicalTranscriptionJob" if medical else "TranscriptionJob"]
    return JobState(
        name=job["MedicalTranscriptionJobName" if medical else "TranscriptionJobName"],
        status=job["TranscriptionJobStatus"],
        failure_reason=job.get("FailureReason"),
        language_code=job.get("LanguageCode"),
        vocabulary_name=(job.get("Settings") or {}).get("VocabularyName"),
        language_model_name=(job.get("ModelSettings") or {}).get("LanguageModelName"),
    )
