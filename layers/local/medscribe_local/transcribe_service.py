"""The local Amazon Transcribe: the batch-job API on 127.0.0.1, backed by the local speech engine.

The handlers' unmodified boto3 `transcribe` client reaches it through AWS_ENDPOINT_URL_TRANSCRIBE
(set by the runtime, environment.route_transcribe), so moto's own Transcribe is bypassed. It speaks
Transcribe's JSON 1.1 protocol (POST /, X-Amz-Target: Transcribe.<Operation>; errors are HTTP 400
with {"__type": <code>, "Message": <text>}) with the response shapes of botocore's service model:

  StartTranscriptionJob, GetTranscriptionJob, ListTranscriptionJobs
  StartMedicalTranscriptionJob, GetMedicalTranscriptionJob, ListMedicalTranscriptionJobs
  DeleteTranscriptionJob, DeleteMedicalTranscriptionJob
  CreateVocabulary, GetVocabulary, UpdateVocabulary, ListVocabularies, DeleteVocabulary
  CreateMedicalVocabulary, GetMedicalVocabulary, UpdateMedicalVocabulary, DeleteMedicalVocabulary

Every request first passes the server-side rules of `medscribe_local.service_rules` (what AWS
would reject, e.g. a standard vocabulary on a Medical job, Settings.VocabularyName with language
identification); a violation is the BadRequestException AWS answers.

Validation follows the service: job and vocabulary names `^[0-9a-zA-Z._-]+` (at most 200), media
formats, sample-rate ranges, exactly one of LanguageCode / IdentifyLanguage, Medical en-US only, a
vocabulary that exists, no custom language models (none can be trained locally). A name in use is a
ConflictException; an unknown job is the BadRequestException AWS answers ("The requested job couldn't
be found..."); an unknown vocabulary is a NotFoundException (a BadRequestException on job start).

A job: QUEUED until one of `workers` threads takes it (never more running than
`max_concurrent_transcriptions`), IN_PROGRESS while it reads the media from the emulated S3, decodes
and recognizes it, writes the Transcribe-format JSON to OutputBucketName/OutputKey (SSE-KMS with
OutputEncryptionKMSKeyId), then COMPLETED - or FAILED with a Transcribe-like reason that never names
the object. Then it puts the event AWS puts on the default EventBridge bus ("Transcribe Job State
Change", for Medical jobs too), unless the `drop_completion_events` fault hook says to drop it.
`throttle_starts` makes chosen starts fail with LimitExceededException (another fault hook).

State: `<root>/jobs/<name>.json`, `<root>/medical-jobs/<name>.json`, `<root>/vocabularies/<name>.json`
and `<root>/medical-vocabularies/<name>.json` mirror what Get answers, for inspection, except the
media's key: a job file names the media bucket only (uploaders' keys often hold patient names; the
key stays in the emulated S3 and the table). Delete removes the job, its file and a service-managed
output (erasure); a job deleted while it runs writes no file and puts no event afterwards. The folder
is cleared at start, as the emulator's state is (a new runtime is a new account).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.settings import PipelineSettings
from medscribe_local.service_rules import DEPRECATED, transcribe_problems, vocabulary_table_problems
from medscribe_local.state import write_atomically
from medscribe_local.whisper_engine import (
    TINY_EN,
    LabeledWord,
    MediaError,
    RecognitionCancelled,
    RecognitionOptions,
    Recognizer,
    attribute_channels,
    build_transcribe_output,
    decode_media,
)

log = logging.getLogger("medscribe_local")

HOST = "127.0.0.1"
DEFAULT_WORKERS = 2
NAME = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
NAME_CONSTRAINT = "Member must satisfy regular expression pattern: ^[0-9a-zA-Z._-]+"
OUTPUT_KEY = re.compile(r"^[a-zA-Z0-9-_.!*'()/]{1,1024}$")
BUCKET = re.compile(r"^[a-z0-9][.\-a-z0-9]{1,61}[a-z0-9]$")
MEDIA_FORMATS = frozenset({"mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a"})
STATUSES = frozenset({"QUEUED", "IN_PROGRESS", "FAILED", "COMPLETED"})
DEFAULT_MAX_RESULTS = 5
EVENT_SOURCE = "aws.transcribe"
EVENT_DETAIL_TYPE = "Transcribe Job State Change"

# Whisper language codes for Transcribe's locales (the part before "-", except these)
_WHISPER_LANGUAGE = {"zh-CN": "zh", "zh-TW": "zh", "zh-HK": "yue", "he-IL": "he", "no-NO": "no"}
_LOCALE_OF = {"en": "en-US", "ko": "ko-KR", "zh": "zh-CN", "ja": "ja-JP", "es": "es-US", "pt": "pt-BR",
              "fr": "fr-FR", "de": "de-DE", "ar": "ar-SA", "hi": "hi-IN", "it": "it-IT"}

JOB_NOT_FOUND = "The requested job couldn't be found. Check the job name and try your request again."
JOB_EXISTS = "The requested job name already exists. Use a different job name."
VOCABULARY_NOT_FOUND = (
    "The requested vocabulary couldn't be found. Check the vocabulary name and try your request again."
)
VOCABULARY_EXISTS = "The requested vocabulary name already exists. Use a different vocabulary name."
MEDIA_UNREADABLE = (
    "The S3 URI that you provided can't be accessed. Make sure that you have read permission "
    "and try your request again."
)
OUTPUT_UNWRITABLE = (
    "Amazon Transcribe can't write to the output location you specified. Check that the bucket exists "
    "and that you have write permission, then try your request again."
)
INTERNAL_FAILURE = "Internal failure. Please try your request again."


MAX_HOTWORDS = 5  # phrases passed to Whisper as hot words: longer lists made tiny.en loop (README)

class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _bad_request(message: str) -> ApiError:
    return ApiError("BadRequestException", message)


def _constraint(value: Any, member: str, constraint: str) -> ApiError:
    return _bad_request(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def whisper_language(locale: str) -> str:
    return _WHISPER_LANGUAGE.get(locale, locale.split("-")[0].lower())


def transcribe_locale(language: str, options: list[str]) -> str:
    """The Transcribe locale for a Whisper language code: one of the job's options when it has them."""
    for option in options:
        if whisper_language(option) == language:
            return option
    return _LOCALE_OF.get(language, f"{language}-{language.upper()}")


def s3_location(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of s3://bucket/key or https://s3[.region].amazonaws.com/bucket/key."""
    parts = urlsplit(uri)
    if parts.scheme == "s3" and parts.netloc and parts.path.strip("/"):
        return parts.netloc, parts.path[1:]
    if parts.scheme == "https" and parts.netloc.startswith("s3") and parts.netloc.endswith(".amazonaws.com"):
        bucket, _, key = parts.path[1:].partition("/")
        return (bucket, key) if bucket and key else None
    return None


# -- records -------------------------------------------------------------------------------------


@dataclass
class Job:
    """One transcription job (standard or Medical), as Transcribe keeps it."""

    name: str
    medical: bool
    media_uri: str
    media_format: str | None
    sample_rate: int | None
    language_code: str | None
    identify_language: bool
    language_options: list[str]
    output_bucket: str | None
    output_key: str
    kms_key_id: str | None
    settings: dict[str, Any]
    model_settings: dict[str, Any] | None
    specialty: str | None = None
    type: str | None = None
    status: str = "QUEUED"
    creation_time: float = field(default_factory=time.time)
    start_time: float | None = None
    completion_time: float | None = None
    failure_reason: str | None = None
    identified_language_score: float | None = None
    transcript_uri: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)  # model, seconds: for inspection only
    language_id_settings: dict[str, Any] = field(default_factory=dict)  # per language: vocabulary
    deleted: bool = False  # DeleteTranscriptionJob: nothing of it is written any more

    def api(self) -> dict[str, Any]:
        """The TranscriptionJob / MedicalTranscriptionJob shape."""
        job: dict[str, Any] = {
            ("MedicalTranscriptionJobName" if self.medical else "TranscriptionJobName"): self.name,
            "TranscriptionJobStatus": self.status,
            "LanguageCode": self.language_code,
            "MediaSampleRateHertz": self.sample_rate,
            "MediaFormat": self.media_format,
            "Media": {"MediaFileUri": self.media_uri},
            "Transcript": {"TranscriptFileUri": self.transcript_uri} if self.transcript_uri else {},
            "StartTime": self.start_time,
            "CreationTime": self.creation_time,
            "CompletionTime": self.completion_time,
            "FailureReason": self.failure_reason,
            "Settings": self.settings,
        }
        if self.medical:
            job.update(Specialty=self.specialty, Type=self.type)
        else:
            job.update(ModelSettings=self.model_settings)
            if self.identify_language:
                job.update(IdentifyLanguage=True, LanguageOptions=self.language_options or None,
                           IdentifiedLanguageScore=self.identified_language_score,
                           LanguageIdSettings=self.language_id_settings or None)
        return {key: value for key, value in job.items() if value is not None}

    def summary(self) -> dict[str, Any]:
        """The TranscriptionJobSummary / MedicalTranscriptionJobSummary shape."""
        keys = ("CreationTime", "StartTime", "CompletionTime", "LanguageCode", "TranscriptionJobStatus",
                "FailureReason", "ModelSettings", "IdentifyLanguage", "IdentifiedLanguageScore", "Specialty", "Type")
        api = self.api()
        summary = {key: api[key] for key in keys if key in api}
        summary["MedicalTranscriptionJobName" if self.medical else "TranscriptionJobName"] = self.name
        summary["OutputLocationType"] = "CUSTOMER_BUCKET" if self.output_bucket else "SERVICE_BUCKET"
        return summary


@dataclass
class Vocabulary:
    name: str
    language_code: str
    phrases: list[str]
    state: str = "READY"
    last_modified: float = field(default_factory=time.time)
    failure_reason: str | None = None

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"VocabularyName": self.name, "LanguageCode": self.language_code,
                                "LastModifiedTime": self.last_modified, "VocabularyState": self.state}
        if self.failure_reason:
            info["FailureReason"] = self.failure_reason
        return info

    def hotwords(self) -> str | None:
        """The first MAX_HOTWORDS phrases as Whisper hot words (Transcribe joins the words of a phrase
        with hyphens). Whisper reads hot words as a decoder prompt of at most 224 tokens: a long list
        crowds it and biases decoding towards words that were never said, so only the head is used."""
        return ", ".join(phrase.replace("-", " ") for phrase in self.phrases[:MAX_HOTWORDS]) or None


def parse_vocabulary_file(text: str) -> list[str]:
    """Phrases of a vocabulary file: a list (one phrase a line) or a table (Phrase, IPA, SoundsLike,
    DisplayAs; tab-separated, with a header). Tables contribute DisplayAs where given, else Phrase."""
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    if lines and lines[0].split("\t")[0].strip() == "Phrase":
        header = [column.strip() for column in lines[0].split("\t")]
        phrases = []
        for line in lines[1:]:
            row = dict(zip(header, (cell.strip() for cell in line.split("\t")), strict=False))
            phrases.append(row.get("DisplayAs") or row.get("Phrase", ""))
        return [phrase for phrase in phrases if phrase]
    return [line.strip() for line in lines]


@dataclass
class ServiceStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0
    max_running: int = 0
    events_put: int = 0
    events_dropped: int = 0


# -- the service ---------------------------------------------------------------------------------


class TranscribeService:
    """The local Transcribe endpoint, its job store and its worker pool."""

    def __init__(
        self, root: Path, recognizer: Recognizer, settings: PipelineSettings, *, account_id: str = "123456789012",
        region: str = "us-east-1", workers: int = DEFAULT_WORKERS, host: str = HOST, port: int = 0,
    ) -> None:
        self.root = root
        self.recognizer = recognizer
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self.workers = max(1, min(workers, settings.max_concurrent_transcriptions))
        self.drop_completion_events: Callable[[str], bool] | None = None
        self.throttle_starts: Callable[[str], bool] | None = None
        self._address = (host, port)
        self._jobs: dict[bool, dict[str, Job]] = {False: {}, True: {}}  # by medical
        self._vocabularies: dict[str, Vocabulary] = {}  # standard vocabularies
        self._medical_vocabularies: dict[str, Vocabulary] = {}  # a separate kind (CreateMedicalVocabulary)
        self._lock = threading.Lock()
        self._stats = ServiceStats()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "StartTranscriptionJob": lambda body: self._start_job(body, medical=False),
            "StartMedicalTranscriptionJob": lambda body: self._start_job(body, medical=True),
            "GetTranscriptionJob": lambda body: self._get_job(body, medical=False),
            "GetMedicalTranscriptionJob": lambda body: self._get_job(body, medical=True),
            "ListTranscriptionJobs": lambda body: self._list_jobs(body, medical=False),
            "ListMedicalTranscriptionJobs": lambda body: self._list_jobs(body, medical=True),
            "DeleteTranscriptionJob": lambda body: self._delete_job(body, medical=False),
            "DeleteMedicalTranscriptionJob": lambda body: self._delete_job(body, medical=True),
            "CreateVocabulary": lambda body: self._create_vocabulary(body, medical=False),
            "GetVocabulary": lambda body: self._get_vocabulary(body, medical=False),
            "UpdateVocabulary": lambda body: self._update_vocabulary(body, medical=False),
            "ListVocabularies": self._list_vocabularies,
            "DeleteVocabulary": lambda body: self._delete_vocabulary(body, medical=False),
            "CreateMedicalVocabulary": lambda body: self._create_vocabulary(body, medical=True),
            "GetMedicalVocabulary": lambda body: self._get_vocabulary(body, medical=True),
            "UpdateMedicalVocabulary": lambda body: self._update_vocabulary(body, medical=True),
            "DeleteMedicalVocabulary": lambda body: self._delete_vocabulary(body, medical=True),
        }

    # -- lifecycle --

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the transcribe service is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        shutil.rmtree(self.root, ignore_errors=True)
        for folder in ("jobs", "medical-jobs", "vocabularies"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="medscribe-transcribe-job")
        self._server = _Server(self._address, _RequestHandler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="medscribe-transcribe-api",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        log.info("transcribe service listening on %s (%d workers)", self.endpoint, self.workers)
        return self.endpoint

    def stop(self) -> None:
        """Stop serving; queued jobs stay QUEUED, running ones are abandoned between segments."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._server = self._thread = self._executor = None

    def __enter__(self) -> TranscribeService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> ServiceStats:
        with self._lock:
            return ServiceStats(**vars(self._stats))

    def job(self, name: str, medical: bool = False) -> Job | None:
        with self._lock:
            return self._jobs[medical].get(name)

    # -- protocol --

    def dispatch(self, target: str, payload: bytes) -> tuple[int, dict[str, Any]]:
        service, _, operation = target.partition(".")
        handler = self._operations.get(operation) if service == "Transcribe" else None
        try:
            if handler is None:
                raise ApiError("UnknownOperationException", f"Unknown operation {target!r}")
            try:
                body = json.loads(payload or b"{}")
            except ValueError as exc:
                raise ApiError("SerializationException", "The request body is not valid JSON.") from exc
            if not isinstance(body, dict):
                raise ApiError("SerializationException", "The request body must be a JSON object.")
            rejected = [problem for problem in transcribe_problems(operation, body, self._vocabulary_kind)
                        if not problem.startswith(DEPRECATED)]
            if rejected:
                raise _bad_request(rejected[0])
            return HTTPStatus.OK, handler(body)
        except ApiError as exc:
            return exc.status, {"__type": exc.code, "Message": exc.message}
        except Exception as exc:  # a bug here answers like the service would, and says so in the log
            log.error("transcribe service: %s failed with %s", operation, type(exc).__name__)
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"__type": "InternalFailureException",
                                                      "Message": INTERNAL_FAILURE}

    # -- jobs --

    def _start_job(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        name_member = "MedicalTranscriptionJobName" if medical else "TranscriptionJobName"
        job = self._new_job(body, name_member, medical=medical)
        if self.throttle_starts is not None and self.throttle_starts(job.name):
            raise ApiError("LimitExceededException",
                           "You have exceeded your concurrent job limit. Wait and try your request again.")
        executor = self._executor
        if executor is None:
            raise ApiError("InternalFailureException", INTERNAL_FAILURE, HTTPStatus.INTERNAL_SERVER_ERROR)
        with self._lock:
            if job.name in self._jobs[medical]:
                raise ApiError("ConflictException", JOB_EXISTS)
            self._jobs[medical][job.name] = job
            self._stats.started += 1
            self._save(job)
            response = {("MedicalTranscriptionJob" if medical else "TranscriptionJob"): job.api()}
        executor.submit(self._run, job)
        log.info("transcription job %s queued", job.name)
        return response

    def _new_job(self, body: dict[str, Any], name_member: str, *, medical: bool) -> Job:
        name = body.get(name_member)
        if not isinstance(name, str) or not NAME.match(name):
            raise _constraint(name, name_member[0].lower() + name_member[1:], NAME_CONSTRAINT)
        media = body.get("Media") or {}
        uri = media.get("MediaFileUri") if isinstance(media, dict) else None
        if not isinstance(uri, str) or s3_location(uri) is None:
            raise _bad_request("The URI that you provided doesn't point to an S3 object. Check the URI and try again.")
        media_format = body.get("MediaFormat")
        if media_format is not None and media_format not in MEDIA_FORMATS:
            raise _constraint(media_format, "mediaFormat",
                              f"Member must satisfy enum value set: {sorted(MEDIA_FORMATS)}")
        rate = body.get("MediaSampleRateHertz")
        low = 16000 if medical else 8000
        if rate is not None and not (isinstance(rate, int) and low <= rate <= 48000):
            raise _constraint(rate, "mediaSampleRateHertz", f"Member must have value between {low} and 48000")
        bucket = body.get("OutputBucketName")
        if bucket is not None and not (isinstance(bucket, str) and BUCKET.match(bucket)):
            raise _constraint(bucket, "outputBucketName", "Member must satisfy regular expression pattern")
        if medical and bucket is None:
            raise _bad_request("OutputBucketName is required for medical transcription jobs.")
        output_key = body.get("OutputKey")
        if output_key is not None and not (isinstance(output_key, str) and OUTPUT_KEY.match(output_key)):
            raise _constraint(output_key, "outputKey", "Member must satisfy regular expression pattern")
        settings = dict(body.get("Settings") or {})
        self._check_settings(settings)
        language_code, identify, options = self._language(body, medical=medical)
        model_settings = body.get("ModelSettings") or None
        if model_settings and model_settings.get("LanguageModelName"):
            raise _bad_request("The requested language model couldn't be found. Check the language model name "
                               "and try your request again.")
        id_settings = dict(body.get("LanguageIdSettings") or {})
        if any((entry or {}).get("LanguageModelName") for entry in id_settings.values()):
            raise _bad_request("The requested language model couldn't be found. Check the language model name "
                               "and try your request again.")
        for language, vocabulary_name in [(language_code, settings.get("VocabularyName")),
                                          *((lang, (entry or {}).get("VocabularyName"))
                                            for lang, entry in id_settings.items())]:
            if vocabulary_name is None:
                continue
            with self._lock:
                vocabulary = self._vocabularies_of(medical).get(vocabulary_name)
            if vocabulary is None or vocabulary.state != "READY":
                raise _bad_request(VOCABULARY_NOT_FOUND)
            if language is not None and vocabulary.language_code != language:
                raise _bad_request("The language code of the vocabulary doesn't match the job's language code.")
        job = Job(
            name=name, medical=medical, media_uri=uri, media_format=media_format, sample_rate=rate,
            language_code=language_code, identify_language=identify, language_options=options,
            output_bucket=bucket, output_key=self._output_key(name, bucket, output_key, medical),
            kms_key_id=body.get("OutputEncryptionKMSKeyId"), settings=settings, model_settings=model_settings,
            language_id_settings=id_settings,
        )
        if medical:
            specialty, kind = body.get("Specialty"), body.get("Type")
            if specialty != "PRIMARYCARE":
                raise _constraint(specialty, "specialty", "Member must satisfy enum value set: [PRIMARYCARE]")
            if kind not in ("CONVERSATION", "DICTATION"):
                raise _constraint(kind, "type", "Member must satisfy enum value set: [CONVERSATION, DICTATION]")
            job.specialty, job.type = specialty, kind
        job.engine["model"] = self._model_for(job)
        return job

    @staticmethod
    def _check_settings(settings: dict[str, Any]) -> None:
        show, most = settings.get("ShowSpeakerLabels"), settings.get("MaxSpeakerLabels")
        if show and most is None:
            raise _bad_request("When ShowSpeakerLabels is true, you must also set MaxSpeakerLabels.")
        if most is not None and not show:
            raise _bad_request("MaxSpeakerLabels can only be set when ShowSpeakerLabels is true.")
        if most is not None and not (isinstance(most, int) and 2 <= most <= 30):
            raise _constraint(most, "settings.maxSpeakerLabels", "Member must have value between 2 and 30")

    @staticmethod
    def _language(body: dict[str, Any], *, medical: bool) -> tuple[str | None, bool, list[str]]:
        code = body.get("LanguageCode")
        identify = bool(body.get("IdentifyLanguage")) or bool(body.get("IdentifyMultipleLanguages"))
        options = list(body.get("LanguageOptions") or [])
        if medical:
            if code != "en-US":
                raise _bad_request("The language code must be en-US for medical transcription jobs.")
            return code, False, []
        if bool(code) == identify:
            raise _bad_request("Specify exactly one of LanguageCode, IdentifyLanguage or IdentifyMultipleLanguages.")
        from faster_whisper.tokenizer import _LANGUAGE_CODES  # the languages Whisper knows

        for locale in [code, *options] if code else options:
            if not isinstance(locale, str) or whisper_language(locale) not in _LANGUAGE_CODES:
                raise _bad_request(f"The language code {locale!r} isn't supported by the local speech engine.")
        return code, identify, options

    def _model_for(self, job: Job) -> str:
        configured = self.settings.local_speech_model
        english_only = job.language_code is not None and whisper_language(job.language_code) == "en"
        if configured == "auto":
            return TINY_EN.name if english_only else "base"
        if configured == TINY_EN.name and not english_only:
            raise _bad_request("The local speech model tiny.en transcribes English only; set local_speech_model "
                               "to base or auto for this language.")
        return configured

    @staticmethod
    def _output_key(name: str, bucket: str | None, key: str | None, medical: bool) -> str:
        if not key:
            return f"medical/{name}.json" if medical and bucket else f"{name}.json"
        if key.endswith(".json"):
            return key
        return f"{key.rstrip('/')}/{name}.json"

    def _find(self, body: dict[str, Any], member: str, medical: bool) -> Job:
        name = body.get(member)
        with self._lock:
            job = self._jobs[medical].get(name) if isinstance(name, str) else None
        if job is None:
            raise _bad_request(JOB_NOT_FOUND)
        return job

    def _get_job(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        job = self._find(body, "MedicalTranscriptionJobName" if medical else "TranscriptionJobName", medical)
        with self._lock:
            return {("MedicalTranscriptionJob" if medical else "TranscriptionJob"): job.api()}

    def _list_jobs(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        status = body.get("Status")
        if status is not None and status not in STATUSES:
            raise _constraint(status, "status", f"Member must satisfy enum value set: {sorted(STATUSES)}")
        contains = str(body.get("JobNameContains") or "").lower()
        with self._lock:
            jobs = sorted(
                (job for job in self._jobs[medical].values()
                 if (status is None or job.status == status) and contains in job.name.lower()),
                key=lambda job: (-job.creation_time, job.name),
            )
            page, token = _page(jobs, body)
            response: dict[str, Any] = {
                ("MedicalTranscriptionJobSummaries" if medical else "TranscriptionJobSummaries"):
                    [job.summary() for job in page],
            }
        if status is not None:
            response["Status"] = status
        if token:
            response["NextToken"] = token
        return response

    def _delete_job(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        job = self._find(body, "MedicalTranscriptionJobName" if medical else "TranscriptionJobName", medical)
        with self._lock:
            self._jobs[medical].pop(job.name, None)
            job.deleted = True
            (self.root / ("medical-jobs" if medical else "jobs") / f"{job.name}.json").unlink(missing_ok=True)
            if job.output_bucket is None:
                (self.root / "outputs" / job.output_key).unlink(missing_ok=True)
        log.info("transcription job %s deleted", job.name)
        return {}

    # -- running a job --

    def _run(self, job: Job) -> None:
        if self._stopping.is_set():
            return
        with self._lock:
            job.status, job.start_time = "IN_PROGRESS", time.time()
            self._stats.running += 1
            self._stats.max_running = max(self._stats.max_running, self._stats.running)
            self._save(job)
        started = time.perf_counter()
        try:
            document = self._transcribe(job)
            uri = self._write_output(job, document)
        except RecognitionCancelled:
            log.info("transcription job %s abandoned: the service is stopping", job.name)
            return
        except MediaError as exc:
            self._finish(job, "FAILED", reason=exc.reason)
        except Exception as exc:
            log.error("transcription job %s failed with %s", job.name, type(exc).__name__)
            self._finish(job, "FAILED", reason=INTERNAL_FAILURE)
        else:
            self._finish(job, "COMPLETED", transcript_uri=uri)
        finally:
            with self._lock:
                self._stats.running -= 1
                job.engine["seconds"] = round(time.perf_counter() - started, 3)
                self._save(job)
        self._emit(job)

    def _transcribe(self, job: Job) -> dict[str, Any]:
        bucket, key = s3_location(job.media_uri) or ("", "")
        try:
            body = aws_clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            raise MediaError(MEDIA_UNREADABLE) from exc
        with tempfile.TemporaryFile() as media:  # on disk, decoded as read: memory does not grow with size
            shutil.copyfileobj(body, media, 1 << 20)
            audio = decode_media(media, job.media_format, job.sample_rate)
        with self._lock:  # what the service reports for media it detected itself
            job.sample_rate = job.sample_rate or audio.source_sample_rate
            job.media_format = job.media_format or audio.media_format
        options = RecognitionOptions(
            model=str(job.engine["model"]),
            language=whisper_language(job.language_code) if job.language_code else None,
            language_options=tuple(whisper_language(option) for option in job.language_options),
            hotwords=self._hotwords(job),
        )
        recognition = self.recognizer.recognize(audio.mono, options, self._stopping.is_set)
        if job.identify_language:
            with self._lock:
                job.language_code = transcribe_locale(recognition.language, job.language_options)
                job.identified_language_score = recognition.language_probability
        two_channels = len(audio.channels) == 2
        channels = (attribute_channels(recognition.words, audio.channels[0], audio.channels[1]) if two_channels
                    else [0] * len(recognition.words))
        words = [LabeledWord(w.text, w.start, w.end, w.confidence, channel)
                 for w, channel in zip(recognition.words, channels, strict=True)]
        job.engine["audio_seconds"] = round(audio.duration, 3)
        return build_transcribe_output(
            job.name, self.account_id, words,
            show_speaker_labels=bool(job.settings.get("ShowSpeakerLabels")),
            channel_identification=bool(job.settings.get("ChannelIdentification")),
            two_channels=two_channels,
            language_code=job.language_code if job.identify_language else None,
            language_scores=[(transcribe_locale(code, job.language_options), score)
                             for code, score in recognition.language_scores],
        )

    def _hotwords(self, job: Job) -> str | None:
        """The job's vocabulary as hot words: Settings.VocabularyName, or with language identification
        the first LanguageIdSettings entry that names one (the language is not known before decoding)."""
        names = [job.settings.get("VocabularyName"),
                 *((entry or {}).get("VocabularyName") for entry in job.language_id_settings.values())]
        name = next((found for found in names if found), None)
        with self._lock:
            vocabulary = self._vocabularies_of(job.medical).get(name) if name else None
        return vocabulary.hotwords() if vocabulary else None

    def _vocabularies_of(self, medical: bool) -> dict[str, Vocabulary]:
        return self._medical_vocabularies if medical else self._vocabularies

    def _vocabulary_kind(self, name: str) -> str | None:
        with self._lock:
            if name in self._medical_vocabularies:
                return "medical"
            return "standard" if name in self._vocabularies else None

    def _write_output(self, job: Job, document: dict[str, Any]) -> str:
        data = json.dumps(document, ensure_ascii=False).encode()
        if job.output_bucket is None:  # the service-managed location: served by this endpoint
            path = self.root / "outputs" / job.output_key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return f"{self.endpoint}/outputs/{job.output_key}"
        extra: dict[str, Any] = {}
        if job.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": job.kms_key_id}
        try:
            aws_clients.client("s3").put_object(
                Bucket=job.output_bucket, Key=job.output_key, Body=data, ContentType="application/json", **extra,
            )
        except ClientError as exc:
            raise MediaError(OUTPUT_UNWRITABLE) from exc
        return f"https://s3.{self.region}.amazonaws.com/{job.output_bucket}/{job.output_key}"

    def _finish(self, job: Job, status: str, *, reason: str | None = None, transcript_uri: str | None = None) -> None:
        with self._lock:
            job.status, job.completion_time = status, time.time()
            job.failure_reason, job.transcript_uri = reason, transcript_uri
            if status == "COMPLETED":
                self._stats.completed += 1
            else:
                self._stats.failed += 1
        log.info("transcription job %s %s", job.name, status)

    def _emit(self, job: Job) -> None:
        """The Job State Change event on the default bus (best effort, like the service's)."""
        if job.deleted:
            return
        if self.drop_completion_events is not None and self.drop_completion_events(job.name):
            with self._lock:
                self._stats.events_dropped += 1
            log.info("transcription job %s: completion event dropped (fault injection)", job.name)
            return
        detail = {"TranscriptionJobName": job.name, "TranscriptionJobStatus": job.status}
        if job.failure_reason:
            detail["FailureReason"] = job.failure_reason
        try:
            response = aws_clients.client("events").put_events(Entries=[{
                "Source": EVENT_SOURCE, "DetailType": EVENT_DETAIL_TYPE, "Detail": json.dumps(detail), "Resources": [],
            }])
        except ClientError as exc:
            log.warning("transcription job %s: completion event not put (%s)", job.name, type(exc).__name__)
            return
        if response.get("FailedEntryCount"):
            log.warning("transcription job %s: completion event rejected by the bus", job.name)
            return
        with self._lock:
            self._stats.events_put += 1

    def _save(self, job: Job) -> None:
        """Mirror the job to its file (called with the lock held), without the media's key."""
        if job.deleted:
            return
        folder = self.root / ("medical-jobs" if job.medical else "jobs")
        api = {member: value for member, value in job.api().items() if member != "Media"}
        record = {
            ("MedicalTranscriptionJob" if job.medical else "TranscriptionJob"): api,
            "Local": {"MediaBucket": (s3_location(job.media_uri) or ("", ""))[0],
                      "OutputBucketName": job.output_bucket, "OutputKey": job.output_key,
                      "OutputEncryptionKMSKeyId": job.kms_key_id, **job.engine},
        }
        write_atomically(folder / f"{job.name}.json", json.dumps(record, indent=2))

    # -- vocabularies --

    def _vocabulary_phrases(self, body: dict[str, Any], *, medical: bool) -> list[str]:
        phrases, uri = body.get("Phrases"), body.get("VocabularyFileUri")
        if phrases is not None:
            if not isinstance(phrases, list) or not all(isinstance(p, str) and len(p) <= 256 for p in phrases):
                raise _constraint("...", "phrases", "Member must have length less than or equal to 256")
            return [phrase for phrase in phrases if phrase.strip()]
        location = s3_location(str(uri))
        if location is None:
            raise _bad_request("The URI that you provided doesn't point to an S3 object. Check the URI and try again.")
        try:
            data = aws_clients.client("s3").get_object(Bucket=location[0], Key=location[1])["Body"].read()
        except ClientError as exc:
            raise _bad_request(MEDIA_UNREADABLE) from exc
        text = data.decode("utf-8", errors="replace")
        if medical or text.startswith("Phrase"):  # a table (medical vocabularies take only tables)
            problems = vocabulary_table_problems(text, str(body.get("LanguageCode") or ""))
            if problems:
                raise _bad_request(f"The vocabulary file is not valid: {problems[0]}")
        return parse_vocabulary_file(text)

    @staticmethod
    def _vocabulary_name(body: dict[str, Any]) -> str:
        name = body.get("VocabularyName")
        if not isinstance(name, str) or not NAME.match(name):
            raise _constraint(name, "vocabularyName", NAME_CONSTRAINT)
        return name

    def _create_vocabulary(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        name = self._vocabulary_name(body)
        language = body.get("LanguageCode")
        if not isinstance(language, str):
            raise _bad_request("LanguageCode is required.")
        vocabulary = Vocabulary(name, language, self._vocabulary_phrases(body, medical=medical))
        with self._lock:
            found = self._vocabularies_of(medical)
            if name in found:
                raise ApiError("ConflictException", VOCABULARY_EXISTS)
            found[name] = vocabulary
            self._save_vocabulary(vocabulary, medical)
            return vocabulary.info()

    def _existing_vocabulary(self, body: dict[str, Any], medical: bool) -> Vocabulary:
        name = self._vocabulary_name(body)
        vocabulary = self._vocabularies_of(medical).get(name)
        if vocabulary is None:
            raise ApiError("NotFoundException", VOCABULARY_NOT_FOUND)
        return vocabulary

    def _get_vocabulary(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        with self._lock:
            vocabulary = self._existing_vocabulary(body, medical)
            folder = "medical-vocabularies" if medical else "vocabularies"
            return {**vocabulary.info(), "DownloadUri": f"{self.endpoint}/{folder}/{vocabulary.name}.txt"}

    def _update_vocabulary(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        phrases = self._vocabulary_phrases(body, medical=medical)
        with self._lock:
            vocabulary = self._existing_vocabulary(body, medical)
            vocabulary.language_code = str(body.get("LanguageCode") or vocabulary.language_code)
            vocabulary.phrases, vocabulary.last_modified, vocabulary.state = phrases, time.time(), "READY"
            self._save_vocabulary(vocabulary, medical)
            info = vocabulary.info()
        return {key: info[key] for key in ("VocabularyName", "LanguageCode", "LastModifiedTime", "VocabularyState")}

    def _list_vocabularies(self, body: dict[str, Any]) -> dict[str, Any]:
        state, contains = body.get("StateEquals"), str(body.get("NameContains") or "").lower()
        with self._lock:
            found = sorted(
                (v for v in self._vocabularies.values()
                 if (state is None or v.state == state) and contains in v.name.lower()),
                key=lambda v: v.name,
            )
            page, token = _page(found, body)
            response: dict[str, Any] = {"Vocabularies": [v.info() for v in page]}
        if state is not None:
            response["Status"] = state
        if token:
            response["NextToken"] = token
        return response

    def _delete_vocabulary(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        with self._lock:
            vocabulary = self._existing_vocabulary(body, medical)
            del self._vocabularies_of(medical)[vocabulary.name]
            folder = "medical-vocabularies" if medical else "vocabularies"
            (self.root / folder / f"{vocabulary.name}.json").unlink(missing_ok=True)
        return {}

    def _save_vocabulary(self, vocabulary: Vocabulary, medical: bool) -> None:
        record = {**vocabulary.info(), "Phrases": vocabulary.phrases}
        folder = "medical-vocabularies" if medical else "vocabularies"
        write_atomically(self.root / folder / f"{vocabulary.name}.json", json.dumps(record, indent=2))

    def download(self, path: str) -> bytes | None:
        """GET <endpoint>/outputs/... (service-managed transcripts) and /vocabularies/<name>.txt."""
        kind, _, rest = path.lstrip("/").partition("/")
        if kind == "outputs" and rest and ".." not in rest.split("/"):
            file = self.root / "outputs" / rest
            return file.read_bytes() if file.is_file() else None
        if kind == "vocabularies" and rest.endswith(".txt"):
            with self._lock:
                vocabulary = self._vocabularies.get(rest[: -len(".txt")])
                return "\n".join(vocabulary.phrases).encode() + b"\n" if vocabulary else None
        return None


def _page(found: list[Any], body: dict[str, Any]) -> tuple[list[Any], str | None]:
    """One page of `found` for MaxResults / NextToken (an opaque offset)."""
    size = body.get("MaxResults", DEFAULT_MAX_RESULTS)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise _constraint(size, "maxResults", "Member must have value between 1 and 100")
    offset = 0
    if body.get("NextToken"):
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(str(body["NextToken"])))["offset"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _bad_request("The NextToken is not valid.") from exc
    end = offset + size
    token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(found) else None
    return found[offset:end], token


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 service: TranscribeService) -> None:
        self.service = service
        super().__init__(address, handler)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.server.service.dispatch(self.headers.get("X-Amz-Target", ""), payload)
        self._send(status, json.dumps(body).encode(), "application/x-amz-json-1.1")

    def do_GET(self) -> None:
        data = self.server.service.download(urlsplit(self.path).path)
        if data is None:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")
        else:
            self._send(HTTPStatus.OK, data, "application/octet-stream")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry job names only, but nothing here needs them
