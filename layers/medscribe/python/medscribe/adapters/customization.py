"""Vocabulary self-heal adapters: Amazon Transcribe custom vocabularies and custom language models,
Amazon Comprehend Medical entities (clinical words among missed words), and Wikipedia plain-text
extracts as CLM training text.

Transcribe calls go through `TranscribeJobs`' backoff (the codes in `transcribe.RETRYABLE`:
throttling, quota, internal failure, unavailable; exponential backoff with jitter, then
`TransientError`).
Other SDK errors are typed by `errors.classify`. Shapes follow botocore's service models
(transcribe 2017-10-26, comprehendmedical 2018-10-30).

Terms may derive from transcripts (PHI): nothing here logs a term, a phrase or a text; logs carry
counts, sizes, statuses, resource names and the first 12 hex digits of a term's SHA-256.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import classify, error_code
from medscribe.adapters.transcribe_jobs import TranscribeJobs
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.observability import logger

# CreateLanguageModel's `CLMLanguageCode` enum (botocore transcribe 2017-10-26). ko-KR is absent.
CLM_LANGUAGES = frozenset({"en-US", "hi-IN", "es-US", "en-GB", "en-AU", "de-DE", "ja-JP"})
# Amazon Comprehend Medical detects entities in English texts only; DetectEntitiesV2's Text: "Each
# string must contain fewer than 20,000 bytes of characters" (API reference; the model: max length 20000).
MEDICAL_ENTITY_LANGUAGES = frozenset({"en"})
MEDICAL_TEXT_BYTES = 19_999
# Entity categories a learned keyword may come from. Never PROTECTED_HEALTH_INFORMATION (names, ages,
# dates, addresses, identifiers), TIME_EXPRESSION or BEHAVIORAL_ENVIRONMENTAL_SOCIAL.
CLINICAL_CATEGORIES = frozenset({"MEDICATION", "MEDICAL_CONDITION", "TEST_TREATMENT_PROCEDURE", "ANATOMY"})
PHI_CATEGORY = "PROTECTED_HEALTH_INFORMATION"
WIDEBAND_MIN_HZ = 16000  # "16,000 Hz or greater, choose WideBand"


def _is_not_found(exc: ClientError) -> bool:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) == "NotFoundException" or (
        error_code(exc) == "BadRequestException" and "couldn't be found" in message)


class QuotaExceeded(PermanentError):
    """Transcribe's account quota for this kind of resource is used up (e.g. 100 custom vocabularies):
    retrying soon will not help; deleting unused resources will."""


class TranscribeCustomization:
    """Custom vocabularies, standard and medical (Create/Update/Get/Delete[Medical]Vocabulary; table
    format from S3: list format is deprecated and medical vocabularies only take tables), and custom
    language models (Create/Describe/DeleteLanguageModel)."""

    def __init__(self, client: Any | None = None, *, attempts: int = 5, base_delay: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._jobs = TranscribeJobs(client, attempts=attempts, base_delay=base_delay, sleep=sleep)

    @property
    def client(self) -> Any:
        return self._jobs.client

    def _create(self, create: Callable[[], Any], kind: str) -> Any:
        """A Create* call: throttling backs off as every Transcribe call does; a LimitExceededException
        that outlasts the backoff is the account quota (QuotaExceeded), not a reason to retry."""
        try:
            return self._jobs._call(create)
        except TransientError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) == "LimitExceededException":
                raise QuotaExceeded(f"Transcribe's quota for {kind} is reached") from exc
            raise

    def put_vocabulary(self, name: str, language: str, table_uri: str, *, medical: bool = False) -> str:
        """Create the vocabulary from the table at `table_uri` (s3://), or replace it when it exists;
        its VocabularyState. Medical vocabularies are en-US only."""
        params = {"VocabularyName": name, "LanguageCode": language, "VocabularyFileUri": table_uri}
        create = self.client.create_medical_vocabulary if medical else self.client.create_vocabulary
        try:
            response = self._create(lambda: create(**params), "medical vocabularies" if medical else "vocabularies")
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise classify(exc) from exc
            response = self._update_vocabulary(params, medical)
        logger.info("custom vocabulary submitted", extra={
            "vocabulary": name, "language": language, "medical": medical, "state": response["VocabularyState"]})
        return str(response["VocabularyState"])

    def _update_vocabulary(self, params: dict[str, Any], medical: bool) -> dict[str, Any]:
        update = self.client.update_medical_vocabulary if medical else self.client.update_vocabulary
        try:
            return dict(self._jobs._call(lambda: update(**params)))
        except ClientError as exc:
            if error_code(exc) == "ConflictException":
                # "Your custom vocabulary must be in a terminal state (READY or FAILED) before you can update it."
                raise TransientError("custom vocabulary is still PENDING; update later") from exc
            raise classify(exc) from exc

    def vocabulary_state(self, name: str, *, medical: bool = False) -> tuple[str, str | None]:
        """(VocabularyState, FailureReason): PENDING | READY | FAILED, or NOT_FOUND."""
        if medical:
            return self._state(lambda: self.client.get_medical_vocabulary(VocabularyName=name), "VocabularyState")
        return self._state(lambda: self.client.get_vocabulary(VocabularyName=name), "VocabularyState")

    def delete_vocabulary(self, name: str, *, medical: bool = False) -> bool:
        """Delete a vocabulary; False when there was none (deleting twice is not an error)."""
        delete = self.client.delete_medical_vocabulary if medical else self.client.delete_vocabulary
        return self._delete(lambda: delete(VocabularyName=name), "vocabulary", name)

    def delete_language_model(self, name: str) -> bool:
        """Delete a custom language model; False when there was none."""
        return self._delete(lambda: self.client.delete_language_model(ModelName=name), "language model", name)

    def _delete(self, delete: Callable[[], Any], kind: str, name: str) -> bool:
        try:
            self._jobs._call(delete)
        except ClientError as exc:
            if _is_not_found(exc):
                return False
            raise classify(exc) from exc
        logger.info("custom %s deleted", kind, extra={"resource": name})
        return True

    def create_language_model(self, name: str, language: str, base_model: str, s3_uri: str, role_arn: str) -> str:
        """Start training a CLM on the text files under `s3_uri`; its ModelStatus. An existing
        model of that name is described instead (CLMs cannot be updated, only recreated)."""
        if not self.supports_language_model(language):
            raise PermanentError(f"custom language models do not support {language}")
        params = {
            "LanguageCode": language, "BaseModelName": base_model, "ModelName": name,
            "InputDataConfig": {"S3Uri": s3_uri, "DataAccessRoleArn": role_arn},
        }
        try:
            response = self._create(lambda: self.client.create_language_model(**params), "custom language models")
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise classify(exc) from exc
            logger.info("custom language model exists; reading it", extra={"language_model": name})
            return self.language_model_state(name)[0]
        logger.info("custom language model submitted", extra={
            "language_model": name, "language": language, "base_model": base_model, "status": response["ModelStatus"]})
        return str(response["ModelStatus"])

    def language_model_state(self, name: str) -> tuple[str, str | None]:
        """(ModelStatus, FailureReason): IN_PROGRESS | COMPLETED | FAILED, or NOT_FOUND."""
        return self._state(lambda: self.client.describe_language_model(ModelName=name)["LanguageModel"], "ModelStatus")

    def _state(self, describe: Callable[[], Any], state_field: str) -> tuple[str, str | None]:
        try:
            resource = self._jobs._call(describe)
        except ClientError as exc:
            if _is_not_found(exc):
                return "NOT_FOUND", None
            raise classify(exc) from exc
        return str(resource[state_field]), resource.get("FailureReason")

    @staticmethod
    def base_model_for(sample_rate_hz: int) -> Literal["WideBand", "NarrowBand"]:
        """WideBand for audio sampled at 16,000 Hz or more, NarrowBand below (CreateLanguageModel)."""
        return "WideBand" if sample_rate_hz >= WIDEBAND_MIN_HZ else "NarrowBand"

    @staticmethod
    def supports_language_model(language: str) -> bool:
        return language in CLM_LANGUAGES


def utf8_chunks(text: str, max_bytes: int = MEDICAL_TEXT_BYTES) -> list[str]:
    """`text` cut into pieces of at most `max_bytes` UTF-8 bytes, at whitespace where possible and
    never inside a character; whitespace at the cuts is dropped."""
    if max_bytes < 4:  # a UTF-8 character takes up to 4 bytes
        raise ValueError("max_bytes must be at least 4")
    chunks: list[str] = []
    current = ""
    for token in re.findall(r"\S+\s*", text):
        if len((current + token).rstrip().encode("utf-8")) <= max_bytes:
            current += token
            continue
        if current.strip():
            chunks.append(current.rstrip())
        current = ""
        while len(token.rstrip().encode("utf-8")) > max_bytes:  # one word longer than a document
            cut = len(token.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore"))
            chunks.append(token[:cut])
            token = token[cut:]
        current = token
    if current.strip():
        chunks.append(current.rstrip())
    return chunks


class ComprehendMedicalTerms:
    """Clinical words among texts by Amazon Comprehend Medical DetectEntitiesV2: the words of entities
    whose category is clinical (CLINICAL_CATEGORIES), minus every word of a PHI entity."""

    def __init__(self, client: Any | None = None, *, regions: frozenset[str] | None = None) -> None:
        self._client = client
        self._regions = regions

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("comprehendmedical")

    def supports(self, language: str) -> bool:
        """English ("en", "en-US"), in a region that has Comprehend Medical."""
        if language.split("-")[0].lower() not in MEDICAL_ENTITY_LANGUAGES:
            return False
        regions = self._regions
        if regions is None:
            regions = frozenset(boto3.session.Session().get_available_regions("comprehendmedical"))
        return str(self.client.meta.region_name) in regions

    def clinical_words(self, texts: Sequence[str], language: str) -> list[str]:
        """Distinct (case-insensitive) words of clinical entities, in order of appearance. The texts are
        joined and sent in pieces of fewer than 20,000 UTF-8 bytes, one DetectEntitiesV2 call each."""
        if not self.supports(language):
            raise PermanentError(f"Comprehend Medical does not support {language} here")
        documents = utf8_chunks(" ".join(texts), MEDICAL_TEXT_BYTES)
        found: dict[str, str] = {}
        phi: set[str] = set()
        entities = 0
        for document in documents:
            try:
                response = self.client.detect_entities_v2(Text=document)
            except ClientError as exc:
                raise classify(exc) from exc
            for entity in sorted(response.get("Entities", []), key=lambda item: int(item.get("BeginOffset", 0))):
                words = str(entity.get("Text", "")).split()
                if entity.get("Category") == PHI_CATEGORY:
                    phi.update(word.casefold() for word in words)
                elif entity.get("Category") in CLINICAL_CATEGORIES:
                    entities += 1
                    for word in words:
                        found.setdefault(word.casefold(), word)
        kept = [word for key, word in found.items() if key not in phi]
        logger.info("clinical entities detected", extra={
            "documents": len(documents), "clinical_entities": entities, "words": len(kept),
            "phi_words_dropped": len(found) - len(kept)})
        return kept
