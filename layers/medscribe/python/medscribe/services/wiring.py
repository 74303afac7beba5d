"""Build each handler's service from the function settings (one place, used by every handler)."""

from __future__ import annotations

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.notifications import Notifier
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.transcribe import TranscribeJobs
from medscribe.services.ingest import IngestService
from medscribe.services.transcription import TranscriptionService
from medscribe.settings import function_settings


def transcription_service() -> TranscriptionService:
    settings = function_settings()
    return TranscriptionService(
        EncounterRepository(settings.table_name), TranscribeJobs(),
        ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn), Notifier(settings.topic_arn), settings,
    )


def ingest_service() -> IngestService:
    settings = function_settings()
    return IngestService(
        EncounterRepository(settings.table_name), ObjectStore(), settings.pipeline,
        on_audio_received=transcription_service().request,
    )
