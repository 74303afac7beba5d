"""OpenSearch adapter against a real local HTTP server: the requests opensearch-py actually sends (SigV4
headers, NDJSON bulk bodies, query bodies), answered with OpenSearch's response shapes."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from medscribe.adapters.search_opensearch import (
    DEFAULT_INDEX,
    SEARCH_FIELDS,
    BulkItemFailure,
    BulkItemsRejected,
    BulkItemsThrottled,
    OpenSearchIndex,
    index_template,
)
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.domain.search import SearchDocument, SearchHit
from tests.local_server import serve

REGION = "eu-west-2"
CREDENTIALS = Credentials("AKID", "SECRET", "TOKEN")
Reply = tuple[int, Any]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        text = self.body.decode()
        assert text.endswith("\n")
        return [json.loads(line) for line in text[:-1].split("\n")]


@dataclass
class FakeOpenSearch:
    """Answers each request with the next scripted reply (a reply, or a function of the request)."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    replies: deque[Reply | Callable[[Recorded], Reply]] = field(default_factory=deque)

    def script(self, *replies: Reply | Callable[[Recorded], Reply]) -> None:
        self.replies.extend(replies)


def _handler(fake: FakeOpenSearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            fake.requests.append(recorded)
            reply = fake.replies.popleft() if fake.replies else (418, {"error": "unscripted request"})
            status, payload = reply(recorded) if callable(reply) else reply
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeOpenSearch]:
    fake = FakeOpenSearch()
    with serve(_handler(fake)) as url:
        fake.url = url
        yield fake
    assert not fake.replies, "scripted replies left unused"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def index(fake: FakeOpenSearch, sleeps: list[float]) -> OpenSearchIndex:
    return OpenSearchIndex.for_endpoint(fake.url, region=REGION, credentials=CREDENTIALS, sleep=sleeps.append)


VERSION = 1714644000000  # 2024-05-02T10:00:00Z, the documents' updated_at, in epoch milliseconds


def INDEXED(encounter_id: str, version: int = VERSION) -> dict[str, object]:
    """The bulk action line of an upsert: versioned by the record's update time (external_gte)."""
    return {"_index": "encounters", "_id": encounter_id, "version": version, "version_type": "external_gte"}


def sent_source(document: SearchDocument) -> dict[str, object]:
    """The document's _source as JSON carries it (the codes tuple becomes a list)."""
    return {**asdict(document), "codes": list(document.codes)}


def doc(encounter_id: str, transcript: str = "Patient reports headache.", note: str = "") -> SearchDocument:
    return SearchDocument(encounter_id=encounter_id, status="DOCUMENTED", kind="visit",
                          updated_at="2024-05-02T10:00:00Z", folder="audio/clinic-a", transcript=transcript, note=note)


# --- OpenSearch response shapes -------------------------------------------------------------------------
SHARDS = {"total": 2, "successful": 1, "failed": 0}


def ok_item(action: str, encounter_id: str, status: int = 201, result: str = "created") -> dict[str, Any]:
    return {action: {"_index": DEFAULT_INDEX, "_id": encounter_id, "_version": 1, "result": result,
                     "_shards": SHARDS, "_seq_no": 0, "_primary_term": 1, "status": status}}


def failed_item(action: str, encounter_id: str, status: int, error_type: str, reason: str) -> dict[str, Any]:
    return {action: {"_index": DEFAULT_INDEX, "_id": encounter_id, "status": status,
                     "error": {"type": error_type, "reason": reason}}}


def throttled_item(encounter_id: str) -> dict[str, Any]:
    return failed_item("index", encounter_id, 429, "es_rejected_execution_exception",
                       "rejected execution of coordinating operation [shard_detail=[encounters][0][P]]")


def bulk_reply(*items: dict[str, Any]) -> Reply:
    errors = any(not 200 <= next(iter(i.values()))["status"] < 300 for i in items)
    return 200, {"took": 7, "errors": errors, "items": list(items)}


def error_reply(status: int, error_type: str, reason: str) -> Reply:
    cause = {"type": error_type, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}


# --- template -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("create_reply", [
    (200, {"acknowledged": True, "shards_acknowledged": True, "index": DEFAULT_INDEX}),
    error_reply(400, "resource_already_exists_exception", "index [encounters/x1Yq] already exists"),
])
def test_ensure_template_puts_the_mappings_then_creates_the_index(fake: FakeOpenSearch, index: OpenSearchIndex,
                                                                 create_reply: Reply) -> None:
    exists = create_reply[0] == 400
    fake.script((200, {"acknowledged": True}), create_reply, *([(200, {"acknowledged": True})] if exists else []))
    index.ensure_template()

    put_template, create, *put_mapping = fake.requests
    if exists:  # an index made before a field was added (e.g. codes) is given the template's mappings
        (mapping,) = put_mapping
        assert (mapping.method, mapping.path) == ("PUT", "/encounters/_mapping")
        assert mapping.json() == index_template(DEFAULT_INDEX)["template"]["mappings"]
    assert (put_template.method, put_template.path) == ("PUT", "/_index_template/encounters-template")
    sent = put_template.json()
    assert sent == index_template(DEFAULT_INDEX)
    assert sent["index_patterns"] == ["encounters", "encounters-*"]
    mappings = sent["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    properties = mappings["properties"]
    for keyword in ("encounter_id", "status", "kind", "folder", "language", "codes"):
        assert properties[keyword] == {"type": "keyword"}
    assert properties["updated_at"] == {"type": "date"}
    for text in ("transcript", "note"):
        assert properties[text] == {"type": "text", "analyzer": "english",
                                    "fields": {"ko": {"type": "text", "analyzer": "medscribe_korean"}}}
    analysis = sent["template"]["settings"]["analysis"]
    korean = analysis["analyzer"]["medscribe_korean"]
    assert korean["type"] == "custom"
    assert analysis["tokenizer"][korean["tokenizer"]] == {"type": "nori_tokenizer", "decompound_mode": "mixed"}
    assert "nori_part_of_speech" in korean["filter"]
    assert (create.method, create.path, create.body) == ("PUT", "/encounters", b"")


def test_ensure_template_refused_is_permanent_and_creates_nothing(fake: FakeOpenSearch,
                                                                  index: OpenSearchIndex) -> None:
    fake.script((403, {"Message": "User: arn:aws:sts::111122223333:assumed-role/x is not authorized to "
                                  "perform: es:ESHttpPut"}))
    with pytest.raises(PermanentError, match=r"put index template: 403"):
        index.ensure_template()
    assert len(fake.requests) == 1


# --- signing --------------------------------------------------------------------------------------------
def test_requests_carry_a_valid_sigv4_signature(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    fake.script(bulk_reply(ok_item("index", "enc-1")))
    index.upsert(doc("enc-1", transcript="두통이 있어요"))

    (sent,) = fake.requests
    match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=AKID/(\d{8})/eu-west-2/es/aws4_request, "
                         r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", sent.headers["authorization"])
    assert match, sent.headers["authorization"]
    date, signed_headers, signature = match.groups()
    assert re.fullmatch(date + r"T\d{6}Z", sent.headers["x-amz-date"])
    assert sent.headers["x-amz-security-token"] == "TOKEN"
    assert sent.headers["x-amz-content-sha256"] == hashlib.sha256(sent.body).hexdigest()
    assert set(signed_headers.split(";")) >= {"host", "x-amz-date", "x-amz-security-token"}

    # Recompute the signature over what the server received: the body sent is the body signed.
    request = AWSRequest(method=sent.method, url=f"http://{sent.headers['host']}{sent.path}", data=sent.body,
                         headers={name: sent.headers[name] for name in signed_headers.split(";")})
    request.context["timestamp"] = sent.headers["x-amz-date"]
    signer = SigV4Auth(ReadOnlyCredentials("AKID", "SECRET", "TOKEN"), "es", REGION)
    assert signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) == signature


# --- bulk -----------------------------------------------------------------------------------------------
def test_apply_sends_one_ndjson_request(fake: FakeOpenSearch, index: OpenSearchIndex, sleeps: list[float]) -> None:
    korean = doc("enc-1", transcript="어제부터 두통이 있어요")
    english = SearchDocument("enc-2", "SCORED", "text", "2024-05-03T08:00:00Z", "notes", "en", "", "Tension headache.")
    fake.script(bulk_reply(ok_item("delete", "enc-3", 200, "deleted"), ok_item("index", "enc-1"),
                           ok_item("index", "enc-2", 200, "updated")))
    assert index.apply([korean, english], ["enc-3"]) == set()

    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/_bulk")
    assert sent.headers["content-type"] == "application/x-ndjson"
    assert sent.body.endswith(b"}\n")
    assert "어제부터 두통이".encode() in sent.body  # UTF-8, not \u escapes
    assert sent.ndjson() == [
        {"delete": {"_index": "encounters", "_id": "enc-3"}},
        {"index": INDEXED("enc-1")}, sent_source(korean),
        {"index": INDEXED("enc-2", 1714723200000)},  # 2024-05-03T08:00:00Z
        {"encounter_id": "enc-2", "status": "SCORED", "kind": "text", "updated_at": "2024-05-03T08:00:00Z",
         "folder": "notes", "language": "en", "transcript": "", "note": "Tension headache.", "codes": []},
    ]
    assert sleeps == []


def test_an_id_both_deleted_and_upserted_ends_indexed(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    fake.script(bulk_reply(ok_item("delete", "enc-1", 200, "deleted"), ok_item("index", "enc-1")))
    assert index.apply([doc("enc-1")], ["enc-1"]) == set()
    assert [next(iter(line)) for line in fake.requests[0].ndjson()] == ["delete", "index", "encounter_id"]


def test_apply_with_nothing_sends_nothing(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    assert index.apply([], []) == set()
    assert fake.requests == []


def test_whole_request_429_is_retried_by_the_transport(fake: FakeOpenSearch, index: OpenSearchIndex,
                                                       sleeps: list[float]) -> None:
    fake.script(error_reply(429, "rejected_execution_exception", "rejected execution of coordinating operation"),
                bulk_reply(ok_item("index", "enc-1")))
    index.upsert(doc("enc-1"))

    first, second = fake.requests
    assert first.body == second.body
    assert first.path == second.path == "/_bulk"
    assert second.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    assert sleeps == []  # the transport's retry, not the per-item backoff


def test_whole_request_unavailable_past_the_retries_is_transient(fake: FakeOpenSearch,
                                                                 index: OpenSearchIndex) -> None:
    fake.script(*[(503, {"message": "Service Unavailable"})] * 4)
    with pytest.raises(TransientError, match=r"^opensearch bulk: 503 error$"):
        index.apply([doc("enc-1")], [])
    assert len(fake.requests) == 4  # the first try and max_retries=3


def test_a_throttled_item_is_retried_alone(fake: FakeOpenSearch, index: OpenSearchIndex,
                                           sleeps: list[float]) -> None:
    second = doc("enc-2")
    fake.script(bulk_reply(ok_item("delete", "enc-3", 200, "deleted"), ok_item("index", "enc-1"),
                           throttled_item("enc-2")),
                bulk_reply(ok_item("index", "enc-2")))
    assert index.apply([doc("enc-1"), second], ["enc-3"]) == set()

    assert len(fake.requests) == 2
    assert fake.requests[1].ndjson() == [{"index": INDEXED("enc-2")}, sent_source(second)]
    (delay,) = sleeps
    assert 0.1 <= delay <= 0.2  # base 0.2 s, jitter in [0.5, 1)


def test_items_still_failing_after_the_attempts(fake: FakeOpenSearch, index: OpenSearchIndex,
                                                sleeps: list[float]) -> None:
    down = failed_item("index", "enc-2", 503, "unavailable_shards_exception", "primary shard is not active")
    fake.script(bulk_reply(ok_item("index", "enc-1"), down), *[bulk_reply(down)] * 3)
    assert index.apply([doc("enc-1"), doc("enc-2")], []) == {"enc-2"}

    assert len(fake.requests) == 4
    assert all(r.ndjson()[0] == {"index": INDEXED("enc-2")} for r in fake.requests[1:])
    assert len(sleeps) == 3
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(sleeps, [0.2, 0.4, 0.8], strict=True))


def test_upsert_raises_transient_when_its_item_stays_throttled(fake: FakeOpenSearch,
                                                               index: OpenSearchIndex) -> None:
    fake.script(*[bulk_reply(throttled_item("enc-1"))] * 4)
    with pytest.raises(BulkItemsThrottled) as raised:
        index.upsert(doc("enc-1"))
    assert isinstance(raised.value, TransientError)
    assert raised.value.failures == (BulkItemFailure("index", "enc-1", 429, "es_rejected_execution_exception"),)
    assert str(raised.value) == "1 bulk item(s) failed: index enc-1 429 es_rejected_execution_exception"


REFUSED = failed_item("index", "enc-1", 400, "mapper_parsing_exception",
                      "failed to parse field [updated_at] of type [date] in document with id 'enc-1'. "
                      "Preview of field's value: '어제부터 두통'")


def test_a_refused_item_is_reported_not_retried(fake: FakeOpenSearch, index: OpenSearchIndex,
                                                sleeps: list[float]) -> None:
    fake.script(bulk_reply(REFUSED, throttled_item("enc-2")), bulk_reply(ok_item("index", "enc-2")))
    assert index.apply([doc("enc-1"), doc("enc-2")], []) == {"enc-1"}
    assert [r.ndjson()[0]["index"]["_id"] for r in fake.requests] == ["enc-1", "enc-2"]  # enc-2 retried alone
    assert len(sleeps) == 1


def test_upsert_refused_is_permanent_and_does_not_repeat_the_text(fake: FakeOpenSearch, index: OpenSearchIndex,
                                                                 sleeps: list[float]) -> None:
    fake.script(bulk_reply(REFUSED))
    with pytest.raises(BulkItemsRejected) as raised:
        index.upsert(doc("enc-1"))
    assert isinstance(raised.value, PermanentError)
    assert raised.value.failures == (BulkItemFailure("index", "enc-1", 400, "mapper_parsing_exception"),)
    assert str(raised.value) == "1 bulk item(s) failed: index enc-1 400 mapper_parsing_exception"
    assert (len(fake.requests), sleeps) == (1, [])


def test_deleting_a_missing_document_succeeds(fake: FakeOpenSearch, index: OpenSearchIndex,
                                              sleeps: list[float]) -> None:
    fake.script(bulk_reply(ok_item("delete", "enc-404", 404, "not_found")))
    index.delete("enc-404")

    (sent,) = fake.requests
    assert sent.body == b'{"delete":{"_index":"encounters","_id":"enc-404"}}\n'
    assert sleeps == []


def test_document_text_is_not_logged(fake: FakeOpenSearch, index: OpenSearchIndex,
                                     caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script(bulk_reply(ok_item("index", "enc-1")), bulk_reply(REFUSED),
                error_reply(400, "illegal_argument_exception", "Preview of field's value: '어제부터 두통'"))
    index.upsert(doc("enc-1", transcript="어제부터 두통이 있어요"))
    assert index.apply([doc("enc-1", transcript="어제부터 두통이 있어요")], []) == {"enc-1"}
    with pytest.raises(PermanentError):
        index.upsert(doc("enc-1", transcript="어제부터 두통이 있어요"))

    out, err = capfd.readouterr()
    logged = caplog.text + out + err + "".join(str(vars(record)) for record in caplog.records)  # extras too
    assert "POST http://127.0.0.1" in caplog.text  # the client still logs its request lines
    failed = next(r for r in caplog.records if r.getMessage() == "search items failed")
    assert failed.failures == [{"encounter_id": "enc-1", "action": "index", "status": 400,  # ids, not text
                                "error_type": "mapper_parsing_exception"}]
    assert "두통" not in logged


# --- search ---------------------------------------------------------------------------------------------
HEADACHE = "Patient reports headache since Monday. No fever. Sleeps badly."
DUTONG = "환자가 어제부터 두통이 있다고 합니다. 열은 없습니다."
NOTE = "Plan: fluids. Recheck headache in a week. Return if worse."


def search_reply(request: Recorded) -> Reply:
    """Hits highlighted with the tags the request asked for, as OpenSearch does."""
    tags = request.json()["highlight"]
    o, c = tags["pre_tags"][0], tags["post_tags"][0]

    def hit(encounter_id: str, score: float, source: dict[str, str], highlight: dict[str, list[str]]) -> Any:
        return {"_index": DEFAULT_INDEX, "_id": encounter_id, "_score": score,
                "_source": {"status": "DOCUMENTED", "updated_at": "2024-05-02T10:00:00Z", **source},
                "highlight": highlight}

    return 200, {"took": 4, "timed_out": False,
                 "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                 "hits": {"max_score": 3.2, "hits": [
                     hit("enc-1", 3.2, {"transcript": HEADACHE, "note": ""},
                         {"transcript": [f"Patient reports {o}headache{c} since Monday."]}),
                     hit("enc-2", 2.5, {"transcript": DUTONG, "note": ""},
                         {"transcript.ko": [f"환자가 어제부터 {o}두통{c}이 있다고 합니다."]}),
                     hit("enc-3", 1.25, {"transcript": "", "note": NOTE},
                         {"note": [f"Recheck {o}headache{c} in a week."]}),
                     hit("enc-4", 0.5, {"transcript": "Headache.", "note": ""},
                         {"transcript": [f"{o}Headache{c}."], "transcript.ko": [f"{o}Headache{c}."]}),
                 ]}}


def test_search_sends_the_query_and_maps_hits_and_highlights(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    fake.script(search_reply)
    hits = index.search("headache 두통", status="DOCUMENTED", since="2024-05-01T00:00:00Z", limit=5)

    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/encounters/_search")
    body = sent.json()
    assert body["size"] == 5
    assert body["query"]["bool"]["must"] == [{"multi_match": {
        "query": "headache 두통", "fields": ["transcript", "transcript.ko", "note", "note.ko"], "operator": "and"}}]
    assert body["query"]["bool"]["filter"] == [{"term": {"status": "DOCUMENTED"}},
                                               {"range": {"updated_at": {"gte": "2024-05-01T00:00:00Z"}}}]
    assert sorted(body["highlight"]["fields"]) == sorted(SEARCH_FIELDS)
    assert hits == [
        SearchHit("enc-1", "DOCUMENTED", "2024-05-02T10:00:00Z", 3.2, "Patient reports [headache] since Monday.…"),
        SearchHit("enc-2", "DOCUMENTED", "2024-05-02T10:00:00Z", 2.5, "환자가 어제부터 [두통]이 있다고 합니다.…"),
        SearchHit("enc-3", "DOCUMENTED", "2024-05-02T10:00:00Z", 1.25, "…Recheck [headache] in a week.…"),
        SearchHit("enc-4", "DOCUMENTED", "2024-05-02T10:00:00Z", 0.5, "[Headache]."),
    ]


def test_search_without_filters_and_blank_text(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    assert index.search("   ") == []
    assert fake.requests == []
    fake.script((200, {"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []}}))
    assert index.search("fever") == []
    body = fake.requests[0].json()
    assert body["query"]["bool"]["filter"] == []
    assert body["size"] == 20


def test_search_by_code_filters_exactly_with_or_without_words(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    empty = (200, {"took": 1, "timed_out": False, "hits": {"max_score": None, "hits": []}})
    fake.script(empty, empty)
    assert index.search("", code="ICD-10-CM:R50.9") == []
    assert index.search("fever", code="RxNorm:197806", status="DOCUMENTED") == []
    code_only, with_words = (request.json()["query"]["bool"] for request in fake.requests)
    assert code_only == {"must": [{"match_all": {}}], "filter": [{"term": {"codes": "ICD-10-CM:R50.9"}}]}
    assert with_words["must"][0]["multi_match"]["query"] == "fever"
    assert with_words["filter"] == [{"term": {"codes": "RxNorm:197806"}}, {"term": {"status": "DOCUMENTED"}}]


def test_a_document_carries_its_codes(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    fake.script(bulk_reply(ok_item("index", "enc-1")))
    index.upsert(SearchDocument(**{**doc("enc-1").__dict__, "codes": ("ICD-10-CM:R50.9",)}))
    (sent,) = fake.requests
    assert sent.ndjson()[1]["codes"] == ["ICD-10-CM:R50.9"]


def test_search_errors_are_typed_and_do_not_repeat_the_query(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    fake.script(error_reply(400, "search_phase_execution_exception", "failed to create query: 두통 [[["))
    with pytest.raises(PermanentError) as raised:
        index.search("두통 [[[")
    assert str(raised.value) == "opensearch search: 400 search_phase_execution_exception"
    assert raised.value.__suppress_context__  # the client's exception (with the reason) is not chained


# --- construction ---------------------------------------------------------------------------------------
def test_for_endpoint_uses_https_for_an_aws_domain() -> None:
    built = OpenSearchIndex.for_endpoint("search-medscribe-abc.eu-west-2.es.amazonaws.com", region=REGION,
                                         credentials=CREDENTIALS)
    transport = built.client.transport
    (connection,) = transport.connection_pool.connections
    assert connection.host == "https://search-medscribe-abc.eu-west-2.es.amazonaws.com:443"
    assert connection.use_ssl is True
    assert connection.session.verify  # a CA bundle: certificates are verified
    assert (transport.max_retries, tuple(transport.retry_on_status), transport.retry_on_timeout) == (
        3, (429, 502, 503, 504), True)
    assert connection.session.auth.signer.region == REGION
    assert connection.session.auth.signer.service == "es"
    assert built.index == DEFAULT_INDEX


def test_for_endpoint_rejects_a_non_url() -> None:
    with pytest.raises(ValueError, match="not an OpenSearch endpoint"):
        OpenSearchIndex.for_endpoint("ftp://example.com", region=REGION, credentials=CREDENTIALS)


def test_a_stale_copy_of_a_record_never_replaces_a_newer_one(fake: FakeOpenSearch, index: OpenSearchIndex) -> None:
    """Two indexers racing: the one that read the record earlier writes last. Its version (the record's
    update time) is lower, OpenSearch answers 409 for that item, and that counts as done."""
    fake.script(bulk_reply(failed_item("index", "enc-1", 409, "version_conflict_engine_exception",
                                       "[enc-1]: version conflict, current version [1714644000001] is higher")))
    assert index.apply([doc("enc-1")], []) == set()
    assert len(fake.requests) == 1  # not retried
    assert fake.requests[0].ndjson()[0] == {"index": INDEXED("enc-1")}
