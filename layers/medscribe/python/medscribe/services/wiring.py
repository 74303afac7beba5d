"""Build each handler's service from the function settings (one place, used by every handler)."""

from __future__ import annotations

import os

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.events import EventPublisher
from medscribe.adapters.notifications import Notifier
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.transcribe import TranscribeJobs
from medscribe.domain.llm import LanguageModel
from medscribe.domain.search import SearchIndex
from medscribe.services.documentation_stage import DocumentationStage
from medscribe.services.indexing import IndexingService
from medscribe.services.ingest import IngestService
from medscribe.services.transcription import TranscriptionService
from medscribe.settings import ENV, PipelineSettings, function_settings

SQLITE_URL_PREFIX = "sqlite:///"

NOTE_ENGINE_ENV = "MEDSCRIBE_NOTE_ENGINE"  # overrides the note_engine setting (the local runtime sets it)


def note_model(settings: PipelineSettings) -> LanguageModel | None:
    """The configured language model; None means the offline engines."""
    from medscribe.adapters.llm.bedrock import BedrockModel
    from medscribe.adapters.llm.openai_compat import ENV_BASE_URL, OpenAICompatibleModel

    engine = os.environ.get(NOTE_ENGINE_ENV) or settings.note_engine
    if engine == "bedrock":
        return BedrockModel.from_settings(settings)
    if engine == "openai":
        model = OpenAICompatibleModel.from_env()
        if model is None:
            raise RuntimeError(f"note engine 'openai' needs {ENV_BASE_URL}")
        return model
    return None


def transcription_service() -> TranscriptionService:
    settings = function_settings()
    return TranscriptionService(
        EncounterRepository(settings.table_name), TranscribeJobs(),
        ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn), Notifier(settings.topic_arn), settings,
        EventPublisher(settings.pipeline.stage),
    )


def ingest_service() -> IngestService:
    settings = function_settings()
    events = EventPublisher(settings.pipeline.stage)
    return IngestService(
        EncounterRepository(settings.table_name), ObjectStore(), settings.pipeline,
        on_audio_received=transcription_service().request,
        on_text_received=lambda encounter: events.ready_for_documentation(encounter.encounter_id),
    )


def documentation_stage() -> DocumentationStage:
    settings = function_settings()
    model: list[LanguageModel | None] = []

    def lazy_model() -> LanguageModel | None:  # built on first use: text notes may never need one
        if not model:
            model.append(note_model(settings.pipeline))
        return model[0]

    return DocumentationStage(
        EncounterRepository(settings.table_name), ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn),
        ObjectStore(), lazy_model, settings.pipeline,
    )


def search_index(url: str | None, *, ensure_template: bool = False) -> SearchIndex:
    """The search index a URL names: sqlite:///<file> (local) or https://<OpenSearch domain endpoint>."""
    if not url:
        raise RuntimeError(f"no search index configured ({ENV.SEARCH_URL} is not set)")
    if url.startswith(SQLITE_URL_PREFIX):
        from medscribe.adapters.search_sqlite import SqliteSearchIndex

        return SqliteSearchIndex(url.removeprefix(SQLITE_URL_PREFIX))
    if url.startswith(("https://", "http://")):
        import boto3

        from medscribe.adapters.search_opensearch import OpenSearchIndex

        region = boto3.session.Session().region_name or os.environ.get("AWS_REGION") or "us-east-1"
        index = OpenSearchIndex.for_endpoint(url, region=region)
        if ensure_template:
            index.ensure_template()  # idempotent: the template and the index exist before the first write
        return index
    raise RuntimeError(f"unsupported search index URL scheme in {ENV.SEARCH_URL}: {url.split(':', 1)[0]!r}")


def indexing_service() -> IndexingService:
    settings = function_settings()
    return IndexingService(
        EncounterRepository(settings.table_name), ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn),
        ObjectStore(), search_index(settings.search_url, ensure_template=True), settings.pipeline,
    )
