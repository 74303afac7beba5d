"""Self-heal adapters: Transcribe custom vocabularies / language models and Comprehend Medical against
botocore's Stubber (which validates requests and responses against the service models), and the
Wikipedia corpus against a local HTTP server replaying hand-written MediaWiki API responses
(tests/fixtures/wikipedia, see its SOURCE.txt) with an S3 cache in moto."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import pytest
import requests
from botocore.stub import Stubber

from medscribe.adapters.artifacts import ArtifactStore
from medscribe.adapters.customization import (
    CLINICAL_CATEGORIES,
    CLM_LANGUAGES,
    MEDICAL_TEXT_BYTES,
    PHI_CATEGORY,
    ComprehendMedicalTerms,
    QuotaExceeded,
    TranscribeCustomization,
    utf8_chunks,
)
from medscribe.adapters.wikipedia import WikipediaCorpus
from medscribe.domain.errors import PermanentError, TransientError
from tests.local_server import serve

WHEN = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
VOCABULARY = "medscribe-dev-selfheal-en-US"
MODEL = "medscribe-dev-clm-en-US"
ROLE = "arn:aws:iam::111122223333:role/medscribe-transcribe-data-access"
TRAINING = "s3://medscribe-artifacts/selfheal/clm/en-US/train/"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wikipedia"


def credentials() -> dict[str, str]:
    return {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


# --- Transcribe ---------------------------------------------------------------------------------

def vocabulary(state: str, **extra: Any) -> dict[str, Any]:
    return {"VocabularyName": VOCABULARY, "LanguageCode": "en-US", "VocabularyState": state,
            "LastModifiedTime": WHEN, **extra}


def language_model(status: str, **extra: Any) -> dict[str, Any]:
    return {"ModelName": MODEL, "CreateTime": WHEN, "LastModifiedTime": WHEN, "LanguageCode": "en-US",
            "BaseModelName": "WideBand", "ModelStatus": status, "UpgradeAvailability": False,
            "InputDataConfig": {"S3Uri": TRAINING, "DataAccessRoleArn": ROLE}, **extra}


@pytest.fixture
def transcribe() -> tuple[TranscribeCustomization, Stubber, list[float]]:
    client = boto3.client("transcribe", **credentials())
    sleeps: list[float] = []
    return TranscribeCustomization(client, sleep=sleeps.append), Stubber(client), sleeps


TABLE_URI = "s3://artifacts/selfheal/vocabularies/medscribe-dev-sh-0123456789.txt"


def test_put_vocabulary_creates_it_from_a_table_in_s3(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    stub.add_response("create_vocabulary", vocabulary("PENDING"),
                      {"VocabularyName": VOCABULARY, "LanguageCode": "en-US", "VocabularyFileUri": TABLE_URI})
    with stub:
        assert custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI) == "PENDING"
    stub.assert_no_pending_responses()


def test_a_medical_vocabulary_is_created_read_and_deleted_with_the_medical_calls(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    request = {"VocabularyName": VOCABULARY, "LanguageCode": "en-US", "VocabularyFileUri": TABLE_URI}
    stub.add_response("create_medical_vocabulary", vocabulary("PENDING"), request)
    stub.add_response("get_medical_vocabulary", vocabulary("READY"), {"VocabularyName": VOCABULARY})
    stub.add_response("delete_medical_vocabulary", {}, {"VocabularyName": VOCABULARY})
    stub.add_client_error("delete_medical_vocabulary", "NotFoundException",
                          "The requested vocabulary couldn't be found.", 400,
                          expected_params={"VocabularyName": VOCABULARY})
    with stub:
        assert custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI, medical=True) == "PENDING"
        assert custom.vocabulary_state(VOCABULARY, medical=True) == ("READY", None)
        assert custom.delete_vocabulary(VOCABULARY, medical=True) is True
        assert custom.delete_vocabulary(VOCABULARY, medical=True) is False  # deleting twice is not an error
    stub.assert_no_pending_responses()


def test_a_language_model_is_deleted_and_a_missing_one_is_no_error(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    stub.add_response("delete_language_model", {}, {"ModelName": MODEL})
    stub.add_client_error("delete_language_model", "BadRequestException",
                          "The requested language model couldn't be found.", 400)
    with stub:
        assert custom.delete_language_model(MODEL) is True
        assert custom.delete_language_model(MODEL) is False


def test_a_limit_that_outlasts_the_backoff_is_the_quota_not_a_transient_error(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, sleeps = transcribe
    for _ in range(5):
        stub.add_client_error("create_vocabulary", "LimitExceededException",
                              "The maximum number of vocabularies has been reached.", 400)
    with stub, pytest.raises(QuotaExceeded, match="quota for vocabularies"):
        custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI)
    assert len(sleeps) == 4
    assert issubclass(QuotaExceeded, PermanentError)


def test_existing_vocabulary_is_updated(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    request = {"VocabularyName": VOCABULARY, "LanguageCode": "en-US", "VocabularyFileUri": TABLE_URI}
    stub.add_client_error("create_vocabulary", "ConflictException",
                          "A resource already exists with this name. Resource names must be unique within an "
                          "Amazon Web Services account.", 400, expected_params=request)
    stub.add_response("update_vocabulary", vocabulary("PENDING"), request)
    with stub:
        assert custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI) == "PENDING"
    stub.assert_no_pending_responses()


def test_update_of_a_pending_vocabulary_is_transient(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    stub.add_client_error("create_vocabulary", "ConflictException", "already exists", 400)
    stub.add_client_error("update_vocabulary", "ConflictException", "The vocabulary is being processed.", 400)
    with stub, pytest.raises(TransientError, match="PENDING"):
        custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI)


def test_invalid_vocabulary_is_permanent(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    stub.add_client_error("create_vocabulary", "BadRequestException", "Invalid vocabulary entry.", 400)
    with stub, pytest.raises(PermanentError, match="BadRequestException"):
        custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI)


@pytest.mark.parametrize("code", ["ThrottlingException", "LimitExceededException"])
def test_throttling_backs_off_and_retries(transcribe, code: str) -> None:  # type: ignore[no-untyped-def]
    custom, stub, sleeps = transcribe
    stub.add_client_error("create_vocabulary", code, "Rate exceeded", 400)
    stub.add_client_error("create_vocabulary", code, "Rate exceeded", 400)
    stub.add_response("create_vocabulary", vocabulary("PENDING"))
    with stub:
        assert custom.put_vocabulary(VOCABULARY, "en-US", TABLE_URI) == "PENDING"
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 <= sleeps[1] <= 1.0


def test_vocabulary_state_ready_failed_and_missing(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    uri = "https://s3.us-east-1.amazonaws.com/aws-transcribe-dictionary-model-us-east-1-prod/111122223333/v.txt"
    reason = "Invalid vocabulary: the entry contains characters that are not in the language's character set."
    stub.add_response("get_vocabulary", vocabulary("READY", DownloadUri=uri), {"VocabularyName": VOCABULARY})
    stub.add_response("get_vocabulary", vocabulary("FAILED", FailureReason=reason), {"VocabularyName": VOCABULARY})
    stub.add_client_error("get_vocabulary", "NotFoundException", "The requested vocabulary couldn't be found.", 400)
    stub.add_client_error("get_vocabulary", "BadRequestException",
                          "The requested vocabulary couldn't be found. Check the vocabulary name and try again.", 400)
    with stub:
        assert custom.vocabulary_state(VOCABULARY) == ("READY", None)
        assert custom.vocabulary_state(VOCABULARY) == ("FAILED", reason)
        assert custom.vocabulary_state(VOCABULARY) == ("NOT_FOUND", None)
        assert custom.vocabulary_state(VOCABULARY) == ("NOT_FOUND", None)


def test_create_language_model_sends_input_data_config(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    config = {"S3Uri": TRAINING, "DataAccessRoleArn": ROLE}
    stub.add_response("create_language_model", {
        "LanguageCode": "en-US", "BaseModelName": "WideBand", "ModelName": MODEL, "InputDataConfig": config,
        "ModelStatus": "IN_PROGRESS",
    }, {"LanguageCode": "en-US", "BaseModelName": "WideBand", "ModelName": MODEL, "InputDataConfig": config})
    with stub:
        assert custom.create_language_model(MODEL, "en-US", "WideBand", TRAINING, ROLE) == "IN_PROGRESS"
    stub.assert_no_pending_responses()


def test_existing_language_model_is_described(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    stub.add_client_error("create_language_model", "ConflictException", "already exists", 400)
    stub.add_response("describe_language_model", {"LanguageModel": language_model("COMPLETED")}, {"ModelName": MODEL})
    with stub:
        assert custom.create_language_model(MODEL, "en-US", "WideBand", TRAINING, ROLE) == "COMPLETED"


def test_language_model_state(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    reason = "The training data contains fewer words than the minimum required."
    stub.add_response("describe_language_model", {"LanguageModel": language_model("IN_PROGRESS")})
    stub.add_response("describe_language_model", {"LanguageModel": language_model("FAILED", FailureReason=reason)})
    stub.add_client_error("describe_language_model", "NotFoundException", "not found", 400)
    for _ in range(5):  # retried like throttling, then left to the queue
        stub.add_client_error("describe_language_model", "InternalFailureException", "internal", 500)
    with stub:
        assert custom.language_model_state(MODEL) == ("IN_PROGRESS", None)
        assert custom.language_model_state(MODEL) == ("FAILED", reason)
        assert custom.language_model_state(MODEL) == ("NOT_FOUND", None)
        with pytest.raises(TransientError):
            custom.language_model_state(MODEL)


def test_korean_language_model_is_refused_without_a_call(transcribe) -> None:  # type: ignore[no-untyped-def]
    custom, stub, _ = transcribe
    with stub, pytest.raises(PermanentError, match="ko-KR"):
        custom.create_language_model(MODEL, "ko-KR", "WideBand", TRAINING, ROLE)
    stub.assert_no_pending_responses()


def test_base_model_and_supported_languages_match_the_service_models() -> None:
    assert TranscribeCustomization.base_model_for(8000) == "NarrowBand"
    assert TranscribeCustomization.base_model_for(15999) == "NarrowBand"
    assert TranscribeCustomization.base_model_for(16000) == "WideBand"
    assert TranscribeCustomization.base_model_for(44100) == "WideBand"
    session = botocore.session.get_session()
    transcribe_model = session.get_service_model("transcribe")
    medical_model = session.get_service_model("comprehendmedical")
    assert set(transcribe_model.shape_for("CLMLanguageCode").enum) == CLM_LANGUAGES
    categories = set(medical_model.shape_for("EntityType").enum)
    assert CLINICAL_CATEGORIES | {PHI_CATEGORY} <= categories
    text = medical_model.operation_model("DetectEntitiesV2").input_shape.members["Text"].metadata
    assert text["max"] == 20000
    assert MEDICAL_TEXT_BYTES < 20000  # "fewer than 20,000 bytes"
    assert TranscribeCustomization.supports_language_model("en-US")
    assert not TranscribeCustomization.supports_language_model("ko-KR")


# --- Comprehend Medical -------------------------------------------------------------------------

CATEGORIES = {"dyspnoea": ("MEDICAL_CONDITION", "DX_NAME"), "metformin": ("MEDICATION", "GENERIC_NAME"),
              "femur": ("ANATOMY", "SYSTEM_ORGAN_SITE"), "spirometry": ("TEST_TREATMENT_PROCEDURE", "TEST_NAME"),
              "quackenbush": ("PROTECTED_HEALTH_INFORMATION", "NAME"),
              "tuesday": ("TIME_EXPRESSION", "TIME_EXPRESSION"),
              "smoker": ("BEHAVIORAL_ENVIRONMENTAL_SOCIAL", "TOBACCO_USE")}


def detected(text: str, override: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """A DetectEntitiesV2 answer: one entity per word of `text` known to CATEGORIES (or `override`)."""
    known = {**CATEGORIES, **(override or {})}
    found, offset = [], 0
    for number, word in enumerate(text.split()):
        begin = text.index(word, offset)
        offset = begin + len(word)
        if word in known:
            category, kind = known[word]
            found.append({"Id": number, "BeginOffset": begin, "EndOffset": offset, "Score": 0.9, "Text": word,
                          "Category": category, "Type": kind, "Traits": [], "Attributes": []})
    return {"Entities": list(reversed(found)), "ModelVersion": "2.4.0"}  # order of the answer: not relied on


@pytest.fixture
def medical() -> tuple[ComprehendMedicalTerms, Stubber]:
    client = boto3.client("comprehendmedical", **credentials())
    return ComprehendMedicalTerms(client), Stubber(client)


def test_only_words_of_clinical_entities_are_kept_never_phi(medical) -> None:  # type: ignore[no-untyped-def]
    terms, stub = medical
    words = ["quackenbush", "dyspnoea", "tuesday", "metformin", "smoker", "femur", "spirometry", "the"]
    stub.add_response("detect_entities_v2", detected(" ".join(words)), {"Text": " ".join(words)})
    with stub:
        assert terms.clinical_words(words, "en-US") == ["dyspnoea", "metformin", "femur", "spirometry"]
    stub.assert_no_pending_responses()


def test_a_word_also_inside_a_phi_entity_is_dropped(medical) -> None:  # type: ignore[no-untyped-def]
    """A lower-cased surname the model reads as a condition in one place and as a NAME in another."""
    terms, stub = medical
    text = "graves dyspnoea graves"
    answer = detected(text, {"graves": ("MEDICAL_CONDITION", "DX_NAME")})
    answer["Entities"].append({"Id": 9, "BeginOffset": 16, "EndOffset": 22, "Score": 0.8, "Text": "graves",
                               "Category": PHI_CATEGORY, "Type": "NAME", "Traits": [], "Attributes": []})
    stub.add_response("detect_entities_v2", answer, {"Text": text})
    with stub:
        assert terms.clinical_words(text.split(), "en") == ["dyspnoea"]


def test_long_texts_are_sent_in_pieces_below_20000_utf8_bytes(medical) -> None:  # type: ignore[no-untyped-def]
    terms, stub = medical
    words = ["dyspnoea"] * 2500 + ["metformin"]  # 9 bytes a word: 22,509 bytes
    chunks = utf8_chunks(" ".join(words), MEDICAL_TEXT_BYTES)
    assert len(chunks) == 2
    assert all(len(chunk.encode("utf-8")) < 20000 for chunk in chunks)
    for chunk in chunks:
        stub.add_response("detect_entities_v2", detected(chunk), {"Text": chunk})
    with stub:
        assert terms.clinical_words(words, "en-US") == ["dyspnoea", "metformin"]
    stub.assert_no_pending_responses()


def test_comprehend_medical_is_english_only_and_regional() -> None:
    client = boto3.client("comprehendmedical", **{**credentials(), "region_name": "us-east-1"})
    assert ComprehendMedicalTerms(client).supports("en-US")
    assert not ComprehendMedicalTerms(client).supports("ko-KR")  # Korean: the term list only
    seoul = boto3.client("comprehendmedical", **{**credentials(), "region_name": "ap-northeast-2"})
    assert not ComprehendMedicalTerms(seoul).supports("en-US")  # no endpoint there: the term list only
    with pytest.raises(PermanentError):
        ComprehendMedicalTerms(client).clinical_words(["무릎"], "ko-KR")


def test_utf8_chunks_cut_at_spaces_and_never_inside_a_character() -> None:
    text = "심근 경색 " * 2000
    chunks = utf8_chunks(text, 4999)
    assert all(len(chunk.encode("utf-8")) <= 4999 for chunk in chunks)
    assert " ".join(chunks).split() == text.split()
    word = "가" * 3000  # 9,000 bytes, no space to cut at
    pieces = utf8_chunks(word, 4999)
    assert [len(piece.encode("utf-8")) for piece in pieces] == [4998, 4002]
    assert "".join(pieces) == word
    assert utf8_chunks("  \n ") == []
    with pytest.raises(ValueError, match="at least 4"):
        utf8_chunks("abc", 3)


def test_comprehend_medical_errors_are_typed(medical) -> None:  # type: ignore[no-untyped-def]
    terms, stub = medical
    stub.add_client_error("detect_entities_v2", "TooManyRequestsException", "Rate exceeded", 400)
    stub.add_client_error("detect_entities_v2", "TextSizeLimitExceededException", "too long", 400)
    with stub:
        with pytest.raises(TransientError):
            terms.clinical_words(["dyspnoea"], "en")
        with pytest.raises(PermanentError):
            terms.clinical_words(["dyspnoea"], "en")


# --- Wikipedia ----------------------------------------------------------------------------------

@dataclass
class WikiServer:
    """A local MediaWiki API stand-in: replays queued responses and records the requests."""

    base_url_template: str = ""
    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, fixture: str | None = None, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = (FIXTURES / f"{fixture}.json").read_bytes() if fixture else b'{"error":"busy"}'
        self.responses.append((status, headers or {}, body))


@pytest.fixture
def wiki() -> Iterator[WikiServer]:
    state = WikiServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            state.requests.append({"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers)})
            status, headers, body = state.responses.pop(0) if state.responses else (500, {}, b"{}")
            self.send_response(status)
            for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Handler) as url:
        state.base_url_template = f"{url}/{{lang}}/w/api.php"
        yield state


@pytest.fixture
def corpus(bucket: str, wiki: WikiServer) -> tuple[WikipediaCorpus, ArtifactStore, list[float]]:
    artifacts = ArtifactStore(bucket, None)
    session = requests.Session()
    session.trust_env = False  # no proxy between the test and its local server
    sleeps: list[float] = []
    return (WikipediaCorpus(artifacts, session, sleeps.append, 1.0, base_url_template=wiki.base_url_template),
            artifacts, sleeps)


def cache_key(lang: str, term: str) -> str:
    return f"selfheal/wikipedia/{lang}/{hashlib.sha256(term.encode()).hexdigest()}.txt"


def test_extract_is_fetched_politely_and_cached(corpus, wiki: WikiServer, caplog) -> None:  # type: ignore[no-untyped-def]
    wikipedia, artifacts, _ = corpus
    wiki.reply("en-purkinje-fibres")
    expected = json.loads((FIXTURES / "en-purkinje-fibres.json").read_text())["query"]["pages"]["1000001"]["extract"]

    assert wikipedia.text("Purkinje  fibres", "en-US") == expected
    assert wikipedia.text("Purkinje fibres", "en") == expected  # second call: the cache, no request
    assert len(wiki.requests) == 1
    sent = wiki.requests[0]
    assert sent["path"] == "/en/w/api.php"
    assert sent["query"] == {"action": ["query"], "prop": ["extracts"], "explaintext": ["1"], "redirects": ["1"],
                             "format": ["json"], "titles": ["Purkinje fibres"]}
    agent = sent["headers"]["User-Agent"]
    assert agent.startswith("medscribe/")
    assert "(https://" in agent  # contact information, as Wikimedia's User-Agent policy asks
    assert "python-requests/" in agent
    assert artifacts.get_text(cache_key("en", "Purkinje fibres")) == expected
    logged = " ".join(str(vars(record)) for record in caplog.records)
    assert "wikipedia fetched" in logged
    assert "Purkinje" not in logged  # terms may be PHI-derived: only hashes are logged
    assert hashlib.sha256(b"Purkinje fibres").hexdigest()[:12] in logged


def test_korean_extract(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, _, _ = corpus
    wiki.reply("ko-myocardium")
    text = wikipedia.text("심근", "ko-KR")
    assert text.startswith("심근은 심장의 벽을 이루는 근육 조직이다.")
    assert wiki.requests[0]["path"] == "/ko/w/api.php"
    assert wiki.requests[0]["query"]["titles"] == ["심근"]


def test_missing_page_is_empty_and_cached(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, artifacts, _ = corpus
    wiki.reply("en-missing")
    assert wikipedia.text("xyzzy nonexistent term", "en-US") == ""
    assert wikipedia.text("xyzzy nonexistent term", "en-US") == ""
    assert len(wiki.requests) == 1
    assert artifacts.get_text(cache_key("en", "xyzzy nonexistent term")) == ""


def test_requests_are_spaced_by_min_interval(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, _, sleeps = corpus
    wiki.reply("en-purkinje-fibres")
    wiki.reply("en-missing")
    wikipedia.text("Purkinje fibres", "en-US")
    assert sleeps == []
    wikipedia.text("xyzzy nonexistent term", "en-US")
    assert len(wiki.requests) == 2
    assert len(sleeps) == 1
    assert 0.5 < sleeps[0] <= 1.0


def test_429_is_retried_once_after_retry_after(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, _, sleeps = corpus
    wiki.reply(status=429, headers={"Retry-After": "3"})
    wiki.reply("ko-myocardium")
    assert wikipedia.text("심근", "ko").startswith("심근은")
    assert len(wiki.requests) == 2
    assert sleeps == [3.0]  # Retry-After, and no extra spacing on top of it


def test_server_errors_twice_are_transient_and_not_cached(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, artifacts, sleeps = corpus
    wiki.reply(status=503)
    wiki.reply(status=503)
    with pytest.raises(TransientError, match="503"):
        wikipedia.text("Purkinje fibres", "en")
    assert len(wiki.requests) == 2
    assert sleeps[0] == 1.0  # no Retry-After: min_interval
    assert artifacts.get_text(cache_key("en", "Purkinje fibres")) is None


def test_long_retry_after_is_left_to_the_queue(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, _, sleeps = corpus
    wiki.reply(status=429, headers={"Retry-After": "120"})
    with pytest.raises(TransientError, match="429"):
        wikipedia.text("Purkinje fibres", "en")
    assert sleeps == []
    assert len(wiki.requests) == 1


def test_client_errors_and_impossible_titles(corpus, wiki: WikiServer) -> None:  # type: ignore[no-untyped-def]
    wikipedia, _, _ = corpus
    wiki.reply(status=404)
    with pytest.raises(PermanentError, match="404"):
        wikipedia.text("Purkinje fibres", "en")
    assert wikipedia.text("Purkinje|Heart", "en") == ""  # "|" would ask for two pages
    assert wikipedia.text("   ", "en") == ""
    with pytest.raises(PermanentError):
        wikipedia.text("Heart", "en.evil.example/x?")
    assert len(wiki.requests) == 1
