"""Amazon OpenSearch Service search index (the `SearchIndex` port in AWS; SQLite FTS5 locally).

Requests are signed with SigV4 (service `es`). Writes go through one `_bulk` request; items the cluster
rejects with 429 or 5xx are retried alone, with exponential backoff and jitter. What still fails is
returned by `apply` (the indexer retries those encounters) and raised by `upsert`/`delete` as a typed
error. Failures carry ids, statuses and error types only: OpenSearch error reasons can quote document
text (mapper_parsing_exception shows a preview of the field's value), which is PHI. Indexing the same
document twice changes nothing; deleting a document that is not there succeeds.

Whole requests answered 429/502/503/504, or timing out, are retried by opensearch-py's transport
(`max_retries`), immediately, before any of this code sees them.

`transcript` and `note` are analysed twice: English (stemming, stop words) and Korean (nori morphological
analysis, in the `ko` sub-fields); queries search both, so either language matches.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
from opensearchpy import OpenSearch, RequestsAWSV4SignerAuth, RequestsHttpConnection
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from medscribe.adapters.llm.retry import backoff_delay
from medscribe.domain.errors import MedscribeError, PermanentError, TransientError
from medscribe.domain.search import DEFAULT_INDEX, SearchDocument, SearchHit
from medscribe.observability import logger, trace_library

trace_library("requests")  # X-Ray traces its HTTP calls (patched where it is imported)

SIGNING_SERVICE = "es"
KOREAN_ANALYZER = "medscribe_korean"
KOREAN_TOKENIZER = "medscribe_nori"
TEXT_FIELDS = ("transcript", "note")
SEARCH_FIELDS = ("transcript", "transcript.ko", "note", "note.ko")
RETRY_ON_STATUS = (429, 502, 503, 504)
SNIPPET_CHARS = 100

# opensearch-py logs request and response bodies (transcripts, notes, query text) at DEBUG on `opensearch`
# and as curl commands on `opensearchpy.trace`; PHI must stay out of the logs whatever level a function
# runs at, so both are capped here. Their INFO/WARNING lines carry method, URL, status and duration only.
logging.getLogger("opensearch").setLevel(logging.INFO)
logging.getLogger("opensearchpy.trace").setLevel(logging.WARNING)

# Highlight marks the cluster never sees in clinical text; turned into [ ] once the snippet is cut.
_OPEN, _CLOSE = "\ue000", "\ue001"
_ERROR_TYPE = re.compile(r"[a-z_]{1,80}")


def template_name(index: str) -> str:
    return f"{index}-template"


def index_template(index: str = DEFAULT_INDEX) -> dict[str, Any]:
    """The `_index_template` body for `index`: explicit mappings, unknown fields rejected."""
    text = {"type": "text", "analyzer": "english", "fields": {"ko": {"type": "text", "analyzer": KOREAN_ANALYZER}}}
    keyword = {"type": "keyword"}
    return {
        "index_patterns": [index, f"{index}-*"],
        "priority": 100,
        "template": {
            "settings": {
                "analysis": {
                    # mixed: keep compounds and their parts (가곡역 -> 가곡역, 가곡, 역), so both match.
                    "tokenizer": {KOREAN_TOKENIZER: {"type": "nori_tokenizer", "decompound_mode": "mixed"}},
                    "analyzer": {
                        KOREAN_ANALYZER: {
                            "type": "custom",
                            "tokenizer": KOREAN_TOKENIZER,
                            "filter": ["nori_part_of_speech", "nori_readingform", "lowercase"],
                        },
                    },
                },
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "encounter_id": keyword,
                    "status": keyword,
                    "kind": keyword,
                    "folder": keyword,
                    "language": keyword,
                    "codes": keyword,  # the entities stage's "system:code" strings, filtered exactly
                    "updated_at": {"type": "date"},
                    "transcript": text,
                    "note": text,
                },
            },
        },
    }


@dataclass(frozen=True)
class BulkItemFailure:
    action: str  # "index" | "delete"
    encounter_id: str
    status: int
    error_type: str  # e.g. es_rejected_execution_exception; never the reason (it can quote the document)

    @property
    def retriable(self) -> bool:
        return self.status == 429 or self.status >= 500


class _BulkFailed(MedscribeError):
    def __init__(self, failures: Sequence[BulkItemFailure]) -> None:
        self.failures = tuple(failures)
        super().__init__(f"{len(self.failures)} bulk item(s) failed: " + "; ".join(
            f"{f.action} {f.encounter_id} {f.status} {f.error_type}" for f in self.failures))


class BulkItemsThrottled(_BulkFailed, TransientError):
    """Items still rejected with 429/5xx when the attempts ran out (`failures` lists every failed item)."""


class BulkItemsRejected(_BulkFailed, PermanentError):
    """The cluster refused the items (4xx other than 429): sending them again cannot help."""


@dataclass(frozen=True)
class _Action:
    kind: str  # "index" | "delete"
    encounter_id: str
    source: Mapping[str, Any] | None = None
    version: int | None = None  # external version: the record's updated_at in epoch milliseconds


def document_version(updated_at: str) -> int:
    """The external version of a document: its record's update time (ISO-8601) in epoch milliseconds.
    Written with version_type external_gte, so a stale copy of a record (two indexers racing, an old
    message arriving late) can never replace a newer one."""
    return int(datetime.fromisoformat(updated_at.replace("Z", "+00:00")).timestamp() * 1000)


def _error_type(value: object) -> str:
    """The error type when it is one (`resource_already_exists_exception`); never free text."""
    return value if isinstance(value, str) and _ERROR_TYPE.fullmatch(value) else "error"


def _translate(exc: TransportError, operation: str) -> TransientError | PermanentError:
    """Throttling, 5xx and connection trouble are transient; the rest permanent. Status and type only."""
    status = exc.status_code
    message = f"opensearch {operation}: {status} {_error_type(exc.error)}"
    if isinstance(exc, OpenSearchConnectionError) or status == 429 or (isinstance(status, int) and status >= 500):
        return TransientError(message)
    return PermanentError(message)


def _snippet(highlight: Mapping[str, list[str]], source: Mapping[str, Any]) -> str:
    fragments = [(field, highlight[field][0]) for field in SEARCH_FIELDS if highlight.get(field)]
    if not fragments:
        text = next((str(source[f]) for f in TEXT_FIELDS if source.get(f)), "")
        return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")
    # The fragment with the most matched terms; on a tie, the transcript before the note (as SQLite does).
    field, fragment = max(fragments, key=lambda pair: pair[1].count(_OPEN))
    text = str(source.get(field.split(".")[0], "")).strip()
    plain = fragment.replace(_OPEN, "").replace(_CLOSE, "").strip()
    marked = fragment.strip().replace(_OPEN, "[").replace(_CLOSE, "]")
    return ("" if text.startswith(plain) else "…") + marked + ("" if text.endswith(plain) else "…")


class OpenSearchIndex:
    """`SearchIndex` over one OpenSearch index (`DEFAULT_INDEX`), with its template (`template_name`)."""

    def __init__(self, client: OpenSearch, *, index: str = DEFAULT_INDEX, attempts: int = 4,
                 base_delay: float = 0.2, max_delay: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.client = client
        self.index = index
        self.template_name = template_name(index)
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    @classmethod
    def for_endpoint(cls, endpoint: str, *, region: str, index: str = DEFAULT_INDEX, credentials: Any = None,
                     timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> OpenSearchIndex:
        """A SigV4-signing client for a domain endpoint: `https://host[:port]`, a bare host (as CloudFormation
        gives it; HTTPS), or `http://127.0.0.1:port` for tests. Credentials default to boto3's chain."""
        parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an OpenSearch endpoint URL: {endpoint!r}")
        use_ssl = parsed.scheme == "https"
        credentials = credentials if credentials is not None else boto3.Session().get_credentials()
        if credentials is None:
            raise PermanentError("no AWS credentials to sign OpenSearch requests with")
        client = OpenSearch(
            hosts=[{"host": parsed.hostname, "port": parsed.port or (443 if use_ssl else 80)}],
            http_auth=RequestsAWSV4SignerAuth(credentials, region, SIGNING_SERVICE),
            use_ssl=use_ssl,
            verify_certs=use_ssl,
            connection_class=RequestsHttpConnection,
            timeout=timeout,
            max_retries=3,
            retry_on_status=RETRY_ON_STATUS,
            retry_on_timeout=True,
        )
        return cls(client, index=index, sleep=sleep)

    def ensure_template(self) -> None:
        """Put the index template, then create the index if it does not exist (both idempotent).

        An index created before the template keeps its old mappings (the template applies at creation only),
        so an existing index is given the template's mappings too: adding a field (such as `codes`) is
        allowed on a live index, and the fields it has already are unchanged.
        """
        try:
            self.client.indices.put_index_template(name=self.template_name, body=index_template(self.index))
        except TransportError as exc:
            raise _translate(exc, "put index template") from None
        try:
            self.client.indices.create(index=self.index)
            logger.info("search index created", extra={"index": self.index})
        except TransportError as exc:
            if exc.status_code != 400 or exc.error != "resource_already_exists_exception":
                raise _translate(exc, "create index") from None
            try:
                self.client.indices.put_mapping(index=self.index,
                                                body=index_template(self.index)["template"]["mappings"])
            except TransportError as error:
                raise _translate(error, "put mapping") from None

    def upsert(self, document: SearchDocument) -> None:
        self._raise_for(self._write([document], []))

    def delete(self, encounter_id: str) -> None:
        self._raise_for(self._write([], [encounter_id]))

    def apply(self, upserts: Sequence[SearchDocument], deletes: Sequence[str]) -> set[str]:
        """Many upserts and deletes in one `_bulk` request; returns the encounter ids that still failed."""
        return {failure.encounter_id for failure in self._write(upserts, deletes)}

    @staticmethod
    def _raise_for(failures: list[BulkItemFailure]) -> None:
        if any(failure.retriable for failure in failures):
            raise BulkItemsThrottled(failures)
        if failures:
            raise BulkItemsRejected(failures)

    def _write(self, upserts: Sequence[SearchDocument], deletes: Sequence[str]) -> list[BulkItemFailure]:
        """Send the writes, then resend the items throttled or hit by a 5xx, alone, until they succeed or the
        attempts run out; returns the items still failing. Deletes go first, so an id in both ends indexed
        (as in SqliteSearchIndex)."""
        pending = [_Action("delete", encounter_id) for encounter_id in deletes]
        pending += [_Action("index", d.encounter_id, asdict(d), document_version(d.updated_at)) for d in upserts]
        if not pending:
            return []
        refused: list[BulkItemFailure] = []
        throttled: list[tuple[_Action, BulkItemFailure]] = []
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                self._sleep(backoff_delay(attempt - 1, self._base_delay, self._max_delay))
            throttled, newly_refused = self._send(pending)
            refused += newly_refused
            logger.info("search bulk sent", extra={"index": self.index, "attempt": attempt, "items": len(pending),
                                                    "throttled": len(throttled), "refused": len(newly_refused)})
            pending = [action for action, _ in throttled]
            if not pending:
                break
        failures = [failure for _, failure in throttled] + refused
        if failures:
            logger.warning("search items failed", extra={"index": self.index, "failures": [
                {"encounter_id": f.encounter_id, "action": f.action, "status": f.status, "error_type": f.error_type}
                for f in failures]})
        return failures

    def _send(self, actions: list[_Action]) -> tuple[list[tuple[_Action, BulkItemFailure]], list[BulkItemFailure]]:
        """One `_bulk` request: (items to retry, items refused for good)."""
        lines: list[Mapping[str, Any]] = []
        for action in actions:
            meta: dict[str, Any] = {"_index": self.index, "_id": action.encounter_id}
            if action.version is not None:
                meta |= {"version": action.version, "version_type": "external_gte"}
            lines.append({action.kind: meta})
            if action.source is not None:
                lines.append(action.source)
        try:
            response = self.client.bulk(body=lines, headers={"content-type": "application/x-ndjson"})
        except TransportError as exc:
            raise _translate(exc, "bulk") from None
        items = response.get("items", [])
        if len(items) != len(actions):
            raise TransientError(f"opensearch bulk: {len(items)} results for {len(actions)} actions")
        throttled: list[tuple[_Action, BulkItemFailure]] = []
        refused: list[BulkItemFailure] = []
        for action, item in zip(actions, items, strict=True):
            result = item.get(action.kind, {})
            status = int(result.get("status", 0))
            if 200 <= status < 300 or (action.kind == "delete" and status == 404):
                continue
            if action.version is not None and status == 409:
                continue  # version conflict: a newer (or the same) copy of the record is indexed already
            failure = BulkItemFailure(action.kind, action.encounter_id, status,
                                      _error_type(result.get("error", {}).get("type")))
            if failure.retriable:
                throttled.append((action, failure))
            else:
                refused.append(failure)
        return throttled, refused

    def search(self, text: str, *, status: str | None = None, since: str | None = None,
               limit: int = 20, code: str | None = None) -> list[SearchHit]:
        if not text.strip() and not code:
            return []
        filters: list[dict[str, Any]] = [{"term": {"codes": code}}] if code else []
        if status:
            filters.append({"term": {"status": status}})
        if since:
            filters.append({"range": {"updated_at": {"gte": since}}})
        body = {
            "size": limit,
            "track_total_hits": False,
            "_source": ["status", "updated_at", *TEXT_FIELDS],  # the text tells whether a snippet was cut (…)
            "query": {"bool": {
                "must": [{"multi_match": {"query": text, "fields": list(SEARCH_FIELDS), "operator": "and"}}
                         if text.strip() else {"match_all": {}}],
                "filter": filters,
            }},
            "highlight": {
                "pre_tags": [_OPEN], "post_tags": [_CLOSE],
                "fragment_size": SNIPPET_CHARS, "number_of_fragments": 1,
                "fields": {field: {} for field in SEARCH_FIELDS},
            },
        }
        try:
            response = self.client.search(index=self.index, body=body)
        except TransportError as exc:
            raise _translate(exc, "search") from None
        hits = [
            SearchHit(encounter_id=hit["_id"], status=hit["_source"]["status"],
                      updated_at=hit["_source"]["updated_at"], score=float(hit.get("_score") or 0.0),
                      snippet=_snippet(hit.get("highlight", {}), hit["_source"]))
            for hit in response["hits"]["hits"]
        ]
        logger.info("search done", extra={"index": self.index, "hits": len(hits), "took_ms": response.get("took")})
        return hits
