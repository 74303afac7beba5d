"""Transcription jobs of the local Transcribe service: the job record (what Get and List answer) and
a Start request made into one, validated as the service validates it.

Validation follows the service: job names `^[0-9a-zA-Z._-]+` (at most 200), media formats,
sample-rate ranges, exactly one of LanguageCode / IdentifyLanguage, Medical en-US only, a vocabulary
that exists and is READY (else a BadRequestException), no custom language models (none can be trained
locally). The job's speech model is chosen here too (settings.local_speech_model; "auto": tiny.en
for English, base otherwise), with the Whisper language codes of Transcribe's locales.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from medscribe_local.transcribe_api import NAME, NAME_CONSTRAINT, NOT_AN_S3_URI, bad_request, constraint, s3_location
from medscribe_local.transcribe_vocabularies import VOCABULARY_NOT_FOUND, Vocabularies
from medscribe_local.whisper_engine import TINY_EN

OUTPUT_KEY = re.compile(r"^[a-zA-Z0-9-_.!*'()/]{1,1024}$")
BUCKET = re.compile(r"^[a-z0-9][.\-a-z0-9]{1,61}[a-z0-9]$")
MEDIA_FORMATS = frozenset({"mp3", "mp4", "wav", "flac", "ogg", "amr", "webm", "m4a"})
STATUSES = frozenset({"QUEUED", "IN_PROGRESS", "FAILED", "COMPLETED"})
LANGUAGE_MODEL_NOT_FOUND = (
    "The requested language model couldn't be found. Check the language model name and try your request again."
)

# Whisper language codes for Transcribe's locales (the part before "-", except these)
_WHISPER_LANGUAGE = {"zh-CN": "zh", "zh-TW": "zh", "zh-HK": "yue", "he-IL": "he", "no-NO": "no"}
_LOCALE_OF = {"en": "en-US", "ko": "ko-KR", "zh": "zh-CN", "ja": "ja-JP", "es": "es-US", "pt": "pt-BR",
              "fr": "fr-FR", "de": "de-DE", "ar": "ar-SA", "hi": "hi-IN", "it": "it-IT"}


def whisper_language(locale: str) -> str:
    return _WHISPER_LANGUAGE.get(locale, locale.split("-")[0].lower())


def transcribe_locale(language: str, options: list[str]) -> str:
    """The Transcribe locale for a Whisper language code: one of the job's options when it has them."""
    for option in options:
        if whisper_language(option) == language:
            return option
    return _LOCALE_OF.get(language, f"{language}-{language.upper()}")


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

    def vocabulary_name(self) -> str | None:
        """Settings.VocabularyName, or with language identification the first LanguageIdSettings entry
        that names one (the language is not known before decoding)."""
        names = [self.settings.get("VocabularyName"),
                 *((entry or {}).get("VocabularyName") for entry in self.language_id_settings.values())]
        return next((found for found in names if found), None)


def new_job(body: dict[str, Any], *, medical: bool, vocabularies: Vocabularies, speech_model: str) -> Job:
    """The job a Start(Medical)TranscriptionJob request asks for, or the ApiError the service answers.
    `speech_model` is settings.local_speech_model."""
    name_member = "MedicalTranscriptionJobName" if medical else "TranscriptionJobName"
    name = body.get(name_member)
    if not isinstance(name, str) or not NAME.match(name):
        raise constraint(name, name_member[0].lower() + name_member[1:], NAME_CONSTRAINT)
    media = body.get("Media") or {}
    uri = media.get("MediaFileUri") if isinstance(media, dict) else None
    if not isinstance(uri, str) or s3_location(uri) is None:
        raise bad_request(NOT_AN_S3_URI)
    media_format = body.get("MediaFormat")
    if media_format is not None and media_format not in MEDIA_FORMATS:
        raise constraint(media_format, "mediaFormat", f"Member must satisfy enum value set: {sorted(MEDIA_FORMATS)}")
    rate = body.get("MediaSampleRateHertz")
    low = 16000 if medical else 8000
    if rate is not None and not (isinstance(rate, int) and low <= rate <= 48000):
        raise constraint(rate, "mediaSampleRateHertz", f"Member must have value between {low} and 48000")
    bucket = body.get("OutputBucketName")
    if bucket is not None and not (isinstance(bucket, str) and BUCKET.match(bucket)):
        raise constraint(bucket, "outputBucketName", "Member must satisfy regular expression pattern")
    if medical and bucket is None:
        raise bad_request("OutputBucketName is required for medical transcription jobs.")
    output_key = body.get("OutputKey")
    if output_key is not None and not (isinstance(output_key, str) and OUTPUT_KEY.match(output_key)):
        raise constraint(output_key, "outputKey", "Member must satisfy regular expression pattern")
    settings = dict(body.get("Settings") or {})
    _check_settings(settings)
    language_code, identify, options = _language(body, medical=medical)
    model_settings = body.get("ModelSettings") or None
    if model_settings and model_settings.get("LanguageModelName"):
        raise bad_request(LANGUAGE_MODEL_NOT_FOUND)
    id_settings = dict(body.get("LanguageIdSettings") or {})
    if any((entry or {}).get("LanguageModelName") for entry in id_settings.values()):
        raise bad_request(LANGUAGE_MODEL_NOT_FOUND)
    for language, vocabulary_name in [(language_code, settings.get("VocabularyName")),
                                      *((lang, (entry or {}).get("VocabularyName"))
                                        for lang, entry in id_settings.items())]:
        if vocabulary_name is None:
            continue
        vocabulary = vocabularies.find(vocabulary_name, medical)
        if vocabulary is None or vocabulary.state != "READY":
            raise bad_request(VOCABULARY_NOT_FOUND)
        if language is not None and vocabulary.language_code != language:
            raise bad_request("The language code of the vocabulary doesn't match the job's language code.")
    job = Job(
        name=name, medical=medical, media_uri=uri, media_format=media_format, sample_rate=rate,
        language_code=language_code, identify_language=identify, language_options=options,
        output_bucket=bucket, output_key=_output_key(name, bucket, output_key, medical),
        kms_key_id=body.get("OutputEncryptionKMSKeyId"), settings=settings, model_settings=model_settings,
        language_id_settings=id_settings,
    )
    if medical:
        specialty, kind = body.get("Specialty"), body.get("Type")
        if specialty != "PRIMARYCARE":
            raise constraint(specialty, "specialty", "Member must satisfy enum value set: [PRIMARYCARE]")
        if kind not in ("CONVERSATION", "DICTATION"):
            raise constraint(kind, "type", "Member must satisfy enum value set: [CONVERSATION, DICTATION]")
        job.specialty, job.type = specialty, kind
    job.engine["model"] = _model_for(job, speech_model)
    return job


def _check_settings(settings: dict[str, Any]) -> None:
    show, most = settings.get("ShowSpeakerLabels"), settings.get("MaxSpeakerLabels")
    if show and most is None:
        raise bad_request("When ShowSpeakerLabels is true, you must also set MaxSpeakerLabels.")
    if most is not None and not show:
        raise bad_request("MaxSpeakerLabels can only be set when ShowSpeakerLabels is true.")
    if most is not None and not (isinstance(most, int) and 2 <= most <= 30):
        raise constraint(most, "settings.maxSpeakerLabels", "Member must have value between 2 and 30")


def _language(body: dict[str, Any], *, medical: bool) -> tuple[str | None, bool, list[str]]:
    code = body.get("LanguageCode")
    identify = bool(body.get("IdentifyLanguage")) or bool(body.get("IdentifyMultipleLanguages"))
    options = list(body.get("LanguageOptions") or [])
    if medical:
        if code != "en-US":
            raise bad_request("The language code must be en-US for medical transcription jobs.")
        return code, False, []
    if bool(code) == identify:
        raise bad_request("Specify exactly one of LanguageCode, IdentifyLanguage or IdentifyMultipleLanguages.")
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # the languages Whisper knows

    for locale in [code, *options] if code else options:
        if not isinstance(locale, str) or whisper_language(locale) not in _LANGUAGE_CODES:
            raise bad_request(f"The language code {locale!r} isn't supported by the local speech engine.")
    return code, identify, options


def _model_for(job: Job, configured: str) -> str:
    english_only = job.language_code is not None and whisper_language(job.language_code) == "en"
    if configured == "auto":
        return TINY_EN.name if english_only else "base"
    if configured == TINY_EN.name and not english_only:
        raise bad_request("The local speech model tiny.en transcribes English only; set local_speech_model "
                          "to base or auto for this language.")
    return configured


def _output_key(name: str, bucket: str | None, key: str | None, medical: bool) -> str:
    if not key:
        return f"medical/{name}.json" if medical and bucket else f"{name}.json"
    if key.endswith(".json"):
        return key
    return f"{key.rstrip('/')}/{name}.json"
