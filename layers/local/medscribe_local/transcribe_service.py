"""The local Amazon Transcribe: the batch-job API on 127.0.0.1, backed by the local speech engine.

The handlers' unmodified boto3 `transcribe` client reaches it through AWS_ENDPOINT_URL_TRANSCRIBE
(set by the runtime, environment.route_transcribe), so moto's own Transcribe is bypassed. It speaks
Transcribe's JSON 1.1 protocol (transcribe_api.py) with the response shapes of botocore's service model:

  StartTranscriptionJob, GetTranscriptionJob, ListTranscriptionJobs
  StartMedicalTranscriptionJob, GetMedicalTranscriptionJob, ListMedicalTranscriptionJobs
  DeleteTranscriptionJob, DeleteMedicalTranscriptionJob
  CreateVocabulary, GetVocabulary, UpdateVocabulary, ListVocabularies, DeleteVocabulary
  CreateMedicalVocabulary, GetMedicalVocabulary, UpdateMedicalVocabulary, DeleteMedicalVocabulary

Every request first passes the server-side rules of `medscribe_local.service_rules` (what AWS
would reject, e.g. a standard vocabulary on a Medical job, Settings.VocabularyName with language
identification); a violation is the BadRequestException AWS answers. Then a Start request is
validated as the service validates it (transcribe_jobs.py) and vocabularies are kept as it keeps them
(transcribe_vocabularies.py). A job name in use is a ConflictException; an unknown job is the
BadRequestException AWS answers ("The requested job couldn't be found...").

A job: QUEUED until one of `workers` threads takes it (never more running than
`max_concurrent_transcriptions`), IN_PROGRESS while it reads the media from the emulated S3, decodes
and recognizes it, writes the Transcribe-format JSON to OutputBucketName/OutputKey (SSE-KMS with
OutputEncryptionKMSKeyId), then COMPLETED - or FAILED with a Transcribe-like reason that never names
the object. Then it puts the event AWS puts on the default EventBridge bus ("Transcribe Job State
Change", for Medical jobs too), unless the `drop_completion_events` fault hook says to drop it.
`throttle_starts` makes chosen starts fail with LimitExceededException (another fault hook).

State: `<root>/jobs/<name>.json` and `<root>/medical-jobs/<name>.json` (and the vocabularies' files)
mirror what Get answers, for inspection, except the media's key: a job file names the media bucket
only (uploaders' keys often hold patient names; the key stays in the emulated S3 and the table).
Delete removes the job, its file and a service-managed output (erasure); a job deleted while it runs
writes no file and puts no event afterwards. The folder is cleared at start, as the emulator's state
is (a new runtime is a new account).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.settings import PipelineSettings
from medscribe_local.diarization import METHOD as DIARIZATION_METHOD
from medscribe_local.media_decoding import MediaError, decode_media
from medscribe_local.service_rules import DEPRECATED, transcribe_problems
from medscribe_local.state import write_atomically
from medscribe_local.transcribe_api import (
    INTERNAL_FAILURE,
    MEDIA_UNREADABLE,
    ApiError,
    ApiServer,
    bad_request,
    constraint,
    page,
    s3_location,
)
from medscribe_local.transcribe_jobs import STATUSES, Job, new_job, transcribe_locale, whisper_language
from medscribe_local.transcribe_output import LabeledWord, attribute_channels, build_transcribe_output
from medscribe_local.transcribe_vocabularies import Vocabularies
from medscribe_local.whisper_engine import RecognitionCancelled, RecognitionOptions, Recognizer

log = logging.getLogger("medscribe_local")

HOST = "127.0.0.1"
DEFAULT_WORKERS = 2
EVENT_SOURCE = "aws.transcribe"
EVENT_DETAIL_TYPE = "Transcribe Job State Change"

JOB_NOT_FOUND = "The requested job couldn't be found. Check the job name and try your request again."
JOB_EXISTS = "The requested job name already exists. Use a different job name."
OUTPUT_UNWRITABLE = (
    "Amazon Transcribe can't write to the output location you specified. Check that the bucket exists "
    "and that you have write permission, then try your request again."
)


@dataclass
class ServiceStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0
    max_running: int = 0
    events_put: int = 0
    events_dropped: int = 0


class SpeakerDiarizer(Protocol):
    def speakers(self, audio: np.ndarray, words: Sequence[tuple[float, float]], max_speakers: int) -> list[int]:
        """A speaker number per word (start, end seconds) of a mono recording."""


class TranscribeService:
    """The local Transcribe endpoint, its job store and its worker pool."""

    def __init__(
        self, root: Path, recognizer: Recognizer, settings: PipelineSettings, *, account_id: str = "123456789012",
        region: str = "us-east-1", workers: int = DEFAULT_WORKERS, host: str = HOST, port: int = 0,
        diarizer: SpeakerDiarizer | None = None,
    ) -> None:
        self.root = root
        self.recognizer = recognizer
        self.diarizer = diarizer  # speakers of mono recordings (diarization.py); None: one speaker
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self.workers = max(1, min(workers, settings.max_concurrent_transcriptions))
        self.drop_completion_events: Callable[[str], bool] | None = None
        self.throttle_starts: Callable[[str], bool] | None = None
        self._address = (host, port)
        self._jobs: dict[bool, dict[str, Job]] = {False: {}, True: {}}  # by medical
        self.vocabularies = Vocabularies(root)
        self._lock = threading.Lock()  # the jobs and the stats (the vocabularies have their own)
        self._stats = ServiceStats()
        self._stopping = threading.Event()
        self._server: ApiServer | None = None
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
            "CreateVocabulary": lambda body: self.vocabularies.create(body, medical=False),
            "GetVocabulary": lambda body: self.vocabularies.get(body, medical=False, endpoint=self.endpoint),
            "UpdateVocabulary": lambda body: self.vocabularies.update(body, medical=False),
            "ListVocabularies": self.vocabularies.list_standard,
            "DeleteVocabulary": lambda body: self.vocabularies.delete(body, medical=False),
            "CreateMedicalVocabulary": lambda body: self.vocabularies.create(body, medical=True),
            "GetMedicalVocabulary": lambda body: self.vocabularies.get(body, medical=True, endpoint=self.endpoint),
            "UpdateMedicalVocabulary": lambda body: self.vocabularies.update(body, medical=True),
            "DeleteMedicalVocabulary": lambda body: self.vocabularies.delete(body, medical=True),
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
        for folder in ("jobs", "medical-jobs", "vocabularies", "medical-vocabularies"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="medscribe-transcribe-job")
        self._server = ApiServer(self._address, self)
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
            rejected = [problem for problem in transcribe_problems(operation, body, self.vocabularies.kind)
                        if not problem.startswith(DEPRECATED)]
            if rejected:
                raise bad_request(rejected[0])
            return HTTPStatus.OK, handler(body)
        except ApiError as exc:
            return exc.status, {"__type": exc.code, "Message": exc.message}
        except Exception as exc:  # a bug here answers like the service would, and says so in the log
            log.error("transcribe service: %s failed with %s", operation, type(exc).__name__)
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"__type": "InternalFailureException",
                                                      "Message": INTERNAL_FAILURE}

    # -- jobs --

    def _start_job(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        job = new_job(body, medical=medical, vocabularies=self.vocabularies,
                      speech_model=self.settings.local_speech_model)
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

    def _find(self, body: dict[str, Any], member: str, medical: bool) -> Job:
        name = body.get(member)
        with self._lock:
            job = self._jobs[medical].get(name) if isinstance(name, str) else None
        if job is None:
            raise bad_request(JOB_NOT_FOUND)
        return job

    def _get_job(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        job = self._find(body, "MedicalTranscriptionJobName" if medical else "TranscriptionJobName", medical)
        with self._lock:
            return {("MedicalTranscriptionJob" if medical else "TranscriptionJob"): job.api()}

    def _list_jobs(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        status = body.get("Status")
        if status is not None and status not in STATUSES:
            raise constraint(status, "status", f"Member must satisfy enum value set: {sorted(STATUSES)}")
        contains = str(body.get("JobNameContains") or "").lower()
        with self._lock:
            jobs = sorted(
                (job for job in self._jobs[medical].values()
                 if (status is None or job.status == status) and contains in job.name.lower()),
                key=lambda job: (-job.creation_time, job.name),
            )
            listed, token = page(jobs, body)
            response: dict[str, Any] = {
                ("MedicalTranscriptionJobSummaries" if medical else "TranscriptionJobSummaries"):
                    [job.summary() for job in listed],
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
        attribution = None
        if two_channels:
            channels = attribute_channels(recognition.words, audio.channels[0], audio.channels[1])
        elif self.diarizer is not None and job.settings.get("ShowSpeakerLabels") and recognition.words:
            channels = self.diarizer.speakers(audio.mono, [(w.start, w.end) for w in recognition.words],
                                              int(job.settings.get("MaxSpeakerLabels") or 2))
            attribution = DIARIZATION_METHOD
        else:
            channels = [0] * len(recognition.words)
        words = [LabeledWord(w.text, w.start, w.end, w.confidence, channel)
                 for w, channel in zip(recognition.words, channels, strict=True)]
        job.engine["audio_seconds"] = round(audio.duration, 3)
        return build_transcribe_output(
            job.name, self.account_id, words,
            show_speaker_labels=bool(job.settings.get("ShowSpeakerLabels")),
            channel_identification=bool(job.settings.get("ChannelIdentification")),
            two_channels=two_channels, attribution=attribution,
            language_code=job.language_code if job.identify_language else None,
            language_scores=[(transcribe_locale(code, job.language_options), score)
                             for code, score in recognition.language_scores],
        )

    def _hotwords(self, job: Job) -> str | None:
        """The job's vocabulary (Job.vocabulary_name) as hot words."""
        name = job.vocabulary_name()
        vocabulary = self.vocabularies.find(name, job.medical) if name else None
        return vocabulary.hotwords() if vocabulary else None

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

    def download(self, path: str) -> bytes | None:
        """GET <endpoint>/outputs/... (service-managed transcripts) and /vocabularies/<name>.txt."""
        kind, _, rest = path.lstrip("/").partition("/")
        if kind == "outputs" and rest and ".." not in rest.split("/"):
            file = self.root / "outputs" / rest
            return file.read_bytes() if file.is_file() else None
        if kind == "vocabularies" and rest.endswith(".txt"):
            return self.vocabularies.text(rest[: -len(".txt")])
        return None
