"""Build every service from typed settings: one place, used by the handlers, the ask endpoint and the
`medscribe` CLI. Engine choices are settings (`note_engine`, `keyword_engine`, `entity_engine`, `openai_*`), which the
stack and the local runtime alike write into each function's environment; nothing here reads an
engine choice from anywhere else."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.events import EventPublisher
from medscribe.adapters.notifications import Notifier
from medscribe.adapters.objects import ObjectStore
from medscribe.adapters.scores import ScoreStore
from medscribe.adapters.transcribe_jobs import TranscribeJobs
from medscribe.settings import ENV, FunctionSettings, PipelineSettings, function_settings

if TYPE_CHECKING:  # each service is imported by the factory that builds it: a handler loads its own only
    from medscribe.domain.llm import LanguageModel
    from medscribe.domain.search import SearchDocument, SearchHit, SearchIndex
    from medscribe.services.ask import AskService
    from medscribe.services.documentation_stage import DocumentationStage
    from medscribe.services.entities_stage import EntitiesStage, EntityEngine
    from medscribe.services.erasure import ErasureService
    from medscribe.services.indexing import IndexingService
    from medscribe.services.ingest import IngestService
    from medscribe.services.reprocess import ReprocessService
    from medscribe.services.scoring import ScoringService  # jiwer and requests: only in the scoring layer
    from medscribe.services.selfheal import SelfHealService
    from medscribe.services.transcription_stage import TranscriptionService
    from medscribe.services.workspace import WorkspaceService
    from medscribe.workspace.ports import Recordings, Uploads

SQLITE_URL_PREFIX = "sqlite:///"
ACTIVE_MODEL_TTL_SECONDS = 60.0  # how long a function keeps using the model it read as active


def note_model(settings: PipelineSettings) -> LanguageModel | None:
    """The configured language model; None means the offline engines."""
    from medscribe.adapters.llm.bedrock import BedrockModel
    from medscribe.adapters.llm.openai_compat import OpenAICompatibleModel

    if settings.note_engine == "bedrock":
        return BedrockModel.from_settings(settings)
    if settings.note_engine == "openai":
        return OpenAICompatibleModel.from_settings(settings)
    return None


def repair_model(settings: PipelineSettings) -> LanguageModel | None:
    """The model of the repair attempt (a note or EMR record whose first answer had problems): with
    Bedrock the long tier (`bedrock_long_model_id`), otherwise the note model."""
    from medscribe.adapters.llm.bedrock import BedrockModel

    if settings.note_engine == "bedrock":
        return BedrockModel.from_settings(settings, long=True)
    return note_model(settings)


def judge_model(settings: PipelineSettings) -> LanguageModel | None:
    """The model judge of note claims (`claim_judge`): Bedrock's note model; None when it is off."""
    from medscribe.adapters.llm.bedrock import BedrockModel

    return BedrockModel.from_settings(settings) if settings.claim_judge else None


def active_model(store: ScoreStore, ttl_seconds: float = ACTIVE_MODEL_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic, *,
                 medical: bool = False) -> Callable[[], tuple[str | None, str | None] | None]:
    """The promoted model's (vocabulary, language model), read at most once per `ttl_seconds`; None
    when there is none or it is of the other kind (a standard vocabulary for a Medical deployment or
    the reverse: Transcribe would reject the job)."""
    cached: list[tuple[float, tuple[str | None, str | None] | None]] = []

    def current() -> tuple[str | None, str | None] | None:
        if not cached or clock() - cached[0][0] > ttl_seconds:
            model = store.active()
            usable = model is not None and model.medical == medical
            cached[:] = [(clock(), (model.vocabulary_name, model.language_model_name) if model and usable else None)]
        return cached[0][1]

    return current


def transcription_service() -> TranscriptionService:
    from medscribe.services.transcription_stage import TranscriptionService

    settings = function_settings()
    return TranscriptionService(
        EncounterRepository(settings.table_name), TranscribeJobs(),
        ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn), Notifier(settings.topic_arn), settings,
        EventPublisher(settings.pipeline.stage), active_model=active_model(ScoreStore(settings.table_name),
                                                                     medical=settings.pipeline.transcribe_medical),
    )


def keyword_candidates(engine: str) -> Callable[[Sequence[str], str], list[str]]:
    """Candidate keywords among missed words: the words of clinical entities by Amazon Comprehend
    Medical where it supports the language and region (English), else (Korean, other regions, and the
    local runtime, `keyword_engine` offline) the offline noun heuristic. The self-heal service
    keeps only the clinical terms among them (medscribe.domain.clinical_terms) either way."""
    from medscribe.adapters.customization import ComprehendMedicalTerms
    from medscribe.domain.vocabulary import candidate_nouns_offline

    medical = ComprehendMedicalTerms()

    def candidates(words: Sequence[str], language: str) -> list[str]:
        if engine != "offline" and medical.supports(language):
            return medical.clinical_words(words, language)
        return candidate_nouns_offline(words, language)

    return candidates


def selfheal_service() -> SelfHealService:
    from medscribe.adapters.customization import TranscribeCustomization
    from medscribe.adapters.wikipedia import WikipediaCorpus
    from medscribe.services.selfheal import SelfHealService

    settings = function_settings()
    artifacts = ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn)
    return SelfHealService(
        EncounterRepository(settings.table_name), ScoreStore(settings.table_name), scoring_service(), artifacts,
        ObjectStore(), TranscribeJobs(), TranscribeCustomization(),
        keyword_candidates(settings.pipeline.keyword_engine),
        WikipediaCorpus(artifacts) if settings.pipeline.selfheal_language_model else None, settings,
    )


def scoring_service() -> ScoringService:
    from medscribe.services.scoring import ScoringService

    settings = function_settings()
    return ScoringService(
        EncounterRepository(settings.table_name), ScoreStore(settings.table_name),
        ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn), ObjectStore(), Notifier(settings.topic_arn),
        settings.input_bucket,
    )


def ingest_service() -> IngestService:
    from medscribe.services.ingest import IngestService

    settings = function_settings()
    events = EventPublisher(settings.pipeline.stage)
    return IngestService(
        EncounterRepository(settings.table_name), ObjectStore(), settings.pipeline,
        on_audio_received=transcription_service().request,
        on_text_received=lambda encounter: events.ready_for_documentation(encounter.encounter_id),
        on_ground_truth_received=lambda encounter: events.ready_for_scoring(encounter.encounter_id),
    )


def documentation_stage() -> DocumentationStage:
    from medscribe.services.documentation_stage import DocumentationStage

    settings = function_settings()
    model: list[LanguageModel | None] = []

    repair: list[LanguageModel | None] = []

    def lazy_model() -> LanguageModel | None:  # built on first use: text notes may never need one
        if not model:
            model.append(note_model(settings.pipeline))
        return model[0]

    def lazy_repair_model() -> LanguageModel | None:
        if not repair:
            repair.append(repair_model(settings.pipeline))
        return repair[0]

    return DocumentationStage(
        EncounterRepository(settings.table_name), ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn),
        ObjectStore(), lazy_model, settings.pipeline, repair_model=lazy_repair_model,
        judge_model=lambda: judge_model(settings.pipeline), events=EventPublisher(settings.pipeline.stage),
    )


def entity_engine(settings: PipelineSettings) -> EntityEngine | None:
    """The configured entity engine (`entity_engine`); None when entities are off."""
    if settings.entity_engine == "off":
        return None
    if settings.entity_engine == "comprehend-medical":
        from medscribe.adapters.comprehend_medical import ComprehendMedicalEntities

        return ComprehendMedicalEntities().extract
    from medscribe.domain import offline_entities
    from medscribe.domain.clinical_entities import EntitySet
    from medscribe.domain.errors import PermanentError
    from medscribe.domain.transcript_lines import Line

    def offline(encounter_id: str, lines: Sequence[Line], language: str) -> EntitySet:
        try:  # looked up per call: the module's extractor, whichever it is when the message arrives
            return offline_entities.extract(encounter_id, lines, language)
        except NotImplementedError as exc:  # an engine that cannot do this: recorded, not retried
            raise PermanentError("the offline entity extractor is not available") from exc

    return offline


def entities_stage() -> EntitiesStage:
    """The entities stage; with Comprehend Medical, its DetectPHI adds to the redaction rules."""
    from medscribe.services.entities_stage import EntitiesStage

    settings = function_settings()
    repository = EncounterRepository(settings.table_name)
    artifacts = ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn)
    if settings.pipeline.entity_engine == "comprehend-medical":
        from medscribe.adapters.comprehend_medical import ComprehendMedicalEntities

        comprehend = ComprehendMedicalEntities()  # one client and one backoff for the entities and DetectPHI
        return EntitiesStage(repository, artifacts, ObjectStore(), comprehend.extract, settings.pipeline,
                             phi=comprehend.detect_phi, phi_engine="comprehend-medical+rules")
    return EntitiesStage(repository, artifacts, ObjectStore(), entity_engine(settings.pipeline), settings.pipeline)


def search_url_checked(url: str | None) -> str:
    """The search index URL, if its scheme is one `search_index` builds (a clear error otherwise)."""
    if not url:
        raise RuntimeError(f"no search index configured ({ENV.SEARCH_URL} is not set)")
    if not url.startswith((SQLITE_URL_PREFIX, "https://", "http://")):
        raise RuntimeError(f"unsupported search index URL scheme in {ENV.SEARCH_URL}: {url.split(':', 1)[0]!r}")
    return url


def search_index(url: str | None, *, ensure_template: bool = False) -> SearchIndex:
    """The search index a URL names: sqlite:///<file> (local) or https://<OpenSearch domain endpoint>."""
    url = search_url_checked(url)
    if url.startswith(SQLITE_URL_PREFIX):
        from medscribe.adapters.search_sqlite import SqliteSearchIndex

        return SqliteSearchIndex(url.removeprefix(SQLITE_URL_PREFIX))
    import boto3

    from medscribe.adapters.search_opensearch import OpenSearchIndex

    region = boto3.session.Session().region_name or os.environ.get("AWS_REGION") or "us-east-1"
    index = OpenSearchIndex.for_endpoint(url, region=region)
    if ensure_template:
        index.ensure_template()  # idempotent: the template and the index exist before the first write
    return index


class LazySearchIndex:
    """The search index a URL names, built on first use: the OpenSearch client (and its template
    request) belongs to the first batch, not to the function's init (no client or request at import)."""

    def __init__(self, url: str | None) -> None:
        self.url = search_url_checked(url)  # a missing or unsupported URL is still an error at cold start
        self._index: SearchIndex | None = None

    @property
    def index(self) -> SearchIndex:
        if self._index is None:
            self._index = search_index(self.url, ensure_template=True)
        return self._index

    def upsert(self, document: SearchDocument) -> None:
        self.index.upsert(document)

    def delete(self, encounter_id: str) -> None:
        self.index.delete(encounter_id)

    def apply(self, upserts: Sequence[SearchDocument], deletes: Sequence[str]) -> set[str]:
        return self.index.apply(upserts, deletes)

    def search(self, text: str, *, status: str | None = None, since: str | None = None,
               limit: int = 20, code: str | None = None) -> list[SearchHit]:
        return self.index.search(text, status=status, since=since, limit=limit, code=code)


def indexing_service(settings: FunctionSettings | None = None, index: SearchIndex | None = None) -> IndexingService:
    """The indexer's service (its function settings); the CLI's index rebuild passes the runtime's
    settings and its own index."""
    from medscribe.adapters.workspace_store import WorkspaceStore
    from medscribe.services.indexing import IndexingService

    settings = settings or function_settings()
    return IndexingService(
        EncounterRepository(settings.table_name),
        WorkspaceStore(settings.table_name, audit_retention_days=settings.pipeline.audit_retention_days),
        ArtifactStore(settings.artifacts_bucket, settings.kms_key_arn),
        ObjectStore(), index or LazySearchIndex(settings.search_url), settings.pipeline,
    )


def ask_service(settings: FunctionSettings | None = None) -> AskService:
    """The ask endpoint's service (its function settings); the CLI passes the local runtime's."""
    from medscribe.services.ask import AskService

    current = settings or function_settings()
    return AskService(
        EncounterRepository(current.table_name), ArtifactStore(current.artifacts_bucket, current.kms_key_arn),
        lambda: note_model(current.pipeline), lambda: repair_model(current.pipeline),
    )


def reprocess_service(*, table_name: str, artifacts_bucket: str, kms_key_arn: str | None,
                      settings: PipelineSettings) -> ReprocessService:
    """`medscribe reprocess`: the local runtime's table and artifacts bucket, or the deployed stack's (its
    TableName, ArtifactsBucketName and KmsKeyArn outputs)."""
    from medscribe.adapters.workspace_store import WorkspaceStore
    from medscribe.services.reprocess import ReprocessService

    return ReprocessService(EncounterRepository(table_name), EventPublisher(settings.stage),
                            WorkspaceStore(table_name, audit_retention_days=settings.audit_retention_days),
                            ArtifactStore(artifacts_bucket, kms_key_arn))


def erasure_service(*, table_name: str, input_bucket: str, artifacts_bucket: str, kms_key_arn: str | None,
                    search_url: str | None, medical: bool) -> ErasureService:
    """`medscribe erase`: an operator action with no function of its own, on the local runtime's stores or
    the deployed stack's (its outputs); no search index when `search_url` is None."""
    from medscribe.adapters.erasure import JobDeleter, ObjectVersions, TableItems
    from medscribe.services.erasure import ErasureService

    return ErasureService(
        EncounterRepository(table_name), ScoreStore(table_name), TableItems(table_name), ObjectVersions(),
        JobDeleter(medical_first=medical), search_index(search_url) if search_url else None,
        ArtifactStore(artifacts_bucket, kms_key_arn), input_bucket=input_bucket,
    )


def workspace_service(settings: FunctionSettings | None = None) -> WorkspaceService:
    """The clinician workspace (the web app's function, `medscribe serve`); erasure, and with it the
    search index client, is built on the first erase."""
    from medscribe.adapters.workspace_store import WorkspaceStore
    from medscribe.services.workspace import WorkspaceService

    current = settings or function_settings()
    return WorkspaceService(
        EncounterRepository(current.table_name),
        WorkspaceStore(current.table_name, audit_retention_days=current.pipeline.audit_retention_days),
        ArtifactStore(current.artifacts_bucket, current.kms_key_arn), ScoreStore(current.table_name),
        lambda: erasure_service(table_name=current.table_name, input_bucket=current.input_bucket,
                                artifacts_bucket=current.artifacts_bucket, kms_key_arn=current.kms_key_arn,
                                search_url=current.search_url, medical=current.pipeline.transcribe_medical),
        current.pipeline,
    )


def workspace_search(settings: FunctionSettings | None = None) -> SearchIndex:
    """The workspace's search: queries only (no index template: the indexer owns the index), the client built
    on the first search. The OpenSearch domain in AWS, SQLite for `medscribe serve`."""
    current = settings or function_settings()
    return search_index(current.search_url)


def workspace_recordings(settings: FunctionSettings | None = None, *, presigned: bool) -> Recordings:
    """The workspace's recordings: presigned SigV4 links to the input bucket in AWS (`presigned`), or
    streamed through the app (`medscribe serve`: the browser cannot reach the local emulator)."""
    from medscribe.workspace.recordings import S3Recordings

    current = settings or function_settings()
    objects = ObjectStore()
    return S3Recordings(EncounterRepository(current.table_name), objects,
                        presign=objects.presigned_get if presigned else None)


def workspace_uploads(settings: FunctionSettings | None = None) -> Uploads:
    """The workspace's upload forms: presigned POSTs to the input bucket, SSE-KMS with the project key (in
    AWS to the bucket, locally to the emulator's S3)."""
    from medscribe.workspace.uploads import S3Uploads

    current = settings or function_settings()
    return S3Uploads(ObjectStore(), current.input_bucket, kms_key_id=current.kms_key_arn, settings=current.pipeline)
