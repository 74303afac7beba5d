"""Plain-text Wikipedia extracts for the self-heal loop's custom language model corpus.

`requests` (and its X-Ray patch) is imported on the first fetch, not with this module: the self-heal
function builds its corpus at init, and most ticks never fetch an article (a candidate language model
is built only when missed clinical terms warrant one), so the import stays off its cold start.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from medscribe import __version__
from medscribe.adapters.artifacts import ArtifactStore
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.observability import logger, trace_library

if TYPE_CHECKING:
    import requests

WIKIPEDIA_API = "https://{lang}.wikipedia.org/w/api.php"
# Wikimedia User-Agent policy: "<client name>/<version> (<contact information>) <library>/<version>".
# The contact is the project's public home; change it here if the project moves.
CONTACT_URL = "https://github.com/medscribe/medscribe"
USER_AGENT = f"medscribe/{__version__} ({CONTACT_URL}; vocabulary self-heal)"  # + python-requests/<version>
CACHE_PREFIX = "selfheal/wikipedia"
MAX_RETRY_AFTER = 30.0  # a longer wait is the queue's job (TransientError), not a Lambda's
_WIKI_LANGUAGE = re.compile(r"[a-z]{2,3}")
_ILLEGAL_TITLE = re.compile(r"[#<>\[\]|{}]")  # characters MediaWiki titles cannot contain ("|" separates titles)


class WikipediaCorpus:
    """Plain-text extracts of Wikipedia articles through the MediaWiki action API, cached in the
    artifacts bucket under selfheal/wikipedia/<lang>/<sha256 of the term>.txt (a cached missing
    page is an empty object, so it is not asked for again).

    Polite by Wikimedia's API etiquette: a descriptive User-Agent with a contact URL, one request
    at a time and at most one per `min_interval` seconds, a timeout, one retry on 429 or 5xx
    after Retry-After (capped at MAX_RETRY_AFTER; longer becomes TransientError)."""

    def __init__(self, artifacts: ArtifactStore, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, min_interval: float = 1.0, *,
                 base_url_template: str = WIKIPEDIA_API, timeout: float = 10.0) -> None:
        self.artifacts = artifacts
        self._session = session
        self.sleep = sleep
        self.min_interval = min_interval
        self.base_url_template = base_url_template
        self.timeout = timeout
        self._lock = threading.Lock()
        self._next_request = 0.0

    def text(self, term: str, language: str) -> str:
        """The article's plain text for `term` ("en-US"/"ko-KR" or "en"/"ko"); "" when there is
        no such page."""
        lang = language.split("-")[0].lower()
        if not _WIKI_LANGUAGE.fullmatch(lang):
            raise PermanentError("unsupported Wikipedia language code")
        title = " ".join(term.split())
        if not title or _ILLEGAL_TITLE.search(title):
            return ""
        digest = hashlib.sha256(title.encode("utf-8")).hexdigest()
        key = f"{CACHE_PREFIX}/{lang}/{digest}.txt"
        cached = self.artifacts.get_text(key)
        if cached is not None:
            logger.info("wikipedia cache hit", extra={"lang": lang, "term_sha256": digest[:12], "chars": len(cached)})
            return cached
        text = self._fetch(lang, title, digest[:12])
        self.artifacts.put(key, text.encode("utf-8"), "text/plain; charset=utf-8")
        return text

    def _fetch(self, lang: str, title: str, term_hash: str) -> str:
        params = {"action": "query", "prop": "extracts", "explaintext": "1", "redirects": "1", "format": "json",
                  "titles": title}
        url = self.base_url_template.format(lang=lang)
        with self._lock:
            for attempt in (1, 2):
                response = self._get(url, params)
                status = response.status_code
                if status == 429 or status >= 500:
                    wait = _retry_after(response.headers.get("Retry-After"), self.min_interval)
                    if attempt == 2 or wait > MAX_RETRY_AFTER:
                        raise TransientError(f"Wikipedia HTTP {status}")
                    logger.warning("wikipedia busy; retrying once", extra={
                        "lang": lang, "term_sha256": term_hash, "status": status, "retry_after": wait})
                    self.sleep(wait)
                    self._next_request = time.monotonic() + max(0.0, self.min_interval - wait)
                    continue
                if status != 200:
                    raise PermanentError(f"Wikipedia HTTP {status}")
                text = _extract(_json(response))
                logger.info("wikipedia fetched", extra={
                    "lang": lang, "term_sha256": term_hash, "status": status, "chars": len(text)})
                return text
        raise AssertionError("unreachable")

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            trace_library("requests")  # X-Ray traces its HTTP calls (patched where it is imported)
            self._session = requests.Session()
        return self._session

    @session.setter
    def session(self, session: requests.Session) -> None:
        self._session = session

    def _get(self, url: str, params: dict[str, str]) -> Any:
        import requests

        wait = self._next_request - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        agent = f"{USER_AGENT} python-requests/{requests.__version__}"
        try:
            return self.session.get(url, params=params, headers={"User-Agent": agent}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransientError(f"Wikipedia request failed: {type(exc).__name__}") from exc
        finally:
            self._next_request = time.monotonic() + self.min_interval


def _retry_after(value: str | None, default: float) -> float:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110); `default` when absent or invalid."""
    if not value:
        return default
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise TransientError("Wikipedia returned a body that is not JSON") from exc


def _extract(data: Any) -> str:
    """The extracts of an action=query&prop=extracts answer (formatversion 1: pages keyed by page
    id, "-1" with "missing" for a missing page; formatversion 2: a list)."""
    if not isinstance(data, dict):
        raise TransientError("Wikipedia returned an unexpected document")
    if "error" in data:
        raise PermanentError(f"Wikipedia API error {data['error'].get('code', '')}")
    pages = data.get("query", {}).get("pages", {})
    page_list = list(pages.values()) if isinstance(pages, dict) else list(pages)
    texts = [str(page.get("extract", "")).strip() for page in page_list
             if "missing" not in page and "invalid" not in page]
    return "\n\n".join(text for text in texts if text)
