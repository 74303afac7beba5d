"""An OpenAI-compatible chat-completions endpoint: the `LanguageModel` port for self-hosted models
(Ray Serve LLM, vLLM, llama.cpp server, Ollama, ...). Standard library only (http.client).

- `POST {base_url}/chat/completions`; `base_url` includes the API prefix, e.g. http://host:8000/v1.
- JSON: `response_format: {"type": "json_schema", ...}` (guided decoding in vLLM / Ray Serve LLM,
  llama.cpp, Ollama). A server that rejects it (HTTP 400/422 naming response_format or json_schema)
  is asked again without it, and from then on; the system prompt always states the schema, and the
  first JSON object of the reply is parsed. Nothing in the reply is executed.
- Text: `stream: true`; server-sent events (`data: {...}` lines, `data: [DONE]`) are assembled.
- Timeouts: `connect_timeout` for the TCP/TLS connect, `timeout` for each read (a stream may run
  longer in total as long as tokens keep arriving). Timeouts, refused or dropped connections,
  HTTP 408/409/429/5xx and broken streams are retried with exponential backoff and jitter (a
  Retry-After header is honoured, capped at `max_delay`), then `TransientError`; other 4xx are
  `PermanentError`.

Configuration (`from_settings`): the typed settings `openai_base_url`, `openai_model` and
`openai_timeout_seconds`, which the stack writes into every function's environment with the rest of
the settings. The API key is a secret, not configuration: it alone comes from the environment
(MEDSCRIBE_OPENAI_API_KEY, optional; sent as a bearer token).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from medscribe.adapters.llm.retry import Retryable, RetryPolicy
from medscribe.domain.errors import PermanentError
from medscribe.domain.llm import Generation, first_json_object
from medscribe.settings import PipelineSettings

ENV_API_KEY = "MEDSCRIBE_OPENAI_API_KEY"
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class _HttpStatus(Exception):
    """A non-200 answer; the caller classifies it."""

    def __init__(self, status: int, retry_after: str | None, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        self.body = body


class OpenAICompatibleModel:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 120.0,
                 connect_timeout: float = 10.0, attempts: int = 4, base_delay: float = 1.0, max_delay: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, json_schema: bool = True,
                 temperature: float = 0.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL such as http://127.0.0.1:8000/v1")
        self.base_url = base_url
        self.model = model
        self._api_key = api_key
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/chat/completions"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry = RetryPolicy(attempts, base_delay, max_delay, sleep, connect_timeout + timeout)
        self.json_schema = json_schema
        self.temperature = temperature

    @classmethod
    def from_settings(cls, settings: PipelineSettings, environ: Mapping[str, str] = os.environ,
                      **options: Any) -> OpenAICompatibleModel:
        """The configured endpoint (`openai_base_url`, `openai_model`); the API key, a secret, from `environ`."""
        if not settings.openai_base_url or not settings.openai_model:
            raise ValueError("the OpenAI-compatible engine needs the settings openai_base_url and openai_model")
        options.setdefault("timeout", settings.openai_timeout_seconds)
        return cls(settings.openai_base_url, settings.openai_model, environ.get(ENV_API_KEY) or None, **options)

    @property
    def engine(self) -> str:
        return f"openai:{self.model}"

    def generate_json(self, *, system: str, prompt: str, schema: dict[str, Any], tool_name: str,
                      max_tokens: int = 4096) -> Generation:
        instruction = (f"{system}\n\nReply with one JSON object only (no prose, no code fence) that conforms to "
                       f"this JSON schema:\n{json.dumps(schema, separators=(',', ':'))}")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": instruction}, {"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
        }
        if self.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": tool_name, "schema": schema}}
            try:
                return self.retry.run(lambda: self._complete(body), engine=self.engine)
            except _SchemaUnsupported:
                self.json_schema = False  # remembered: this server does not do structured output
                body = {k: v for k, v in body.items() if k != "response_format"}
        return self.retry.run(lambda: self._complete(body), engine=self.engine)

    def generate_text(self, *, system: str, prompt: str, max_tokens: int = 1024) -> Generation:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        return self.retry.run(lambda: self._stream(body), engine=self.engine)

    # ---------------------------------------------------------------------------------- internals

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.connect_timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)

    def _post(self, body: Mapping[str, Any]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        connection = self._connection()
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self.timeout)  # connected: from now on the read timeout applies
            connection.request("POST", self._path, body=json.dumps(body).encode("utf-8"), headers=headers)
            response = connection.getresponse()
            if response.status != 200:
                raise _HttpStatus(response.status, response.getheader("Retry-After"), response.read(65536))
        except BaseException:
            connection.close()
            raise
        return connection, response

    def _call(self, body: Mapping[str, Any], read: Callable[[http.client.HTTPResponse], Generation]) -> Generation:
        try:
            connection, response = self._post(body)
            try:
                return read(response)
            finally:
                connection.close()
        except _HttpStatus as exc:
            raise self._classified(exc, "response_format" in body) from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise Retryable(type(exc).__name__) from exc

    def _classified(self, exc: _HttpStatus, asked_for_schema: bool) -> Exception:
        if exc.status in RETRY_STATUSES or exc.status >= 500:
            return Retryable(f"HTTP {exc.status}", _retry_after(exc.retry_after, self.retry.max_delay))
        text = exc.body.decode("utf-8", "replace").lower()
        if asked_for_schema and exc.status in (400, 422) and ("response_format" in text or "json_schema" in text):
            return _SchemaUnsupported()
        return PermanentError(f"{self.engine}: HTTP {exc.status}")

    def _complete(self, body: Mapping[str, Any]) -> Generation:
        return self._call(body, self._read_completion)

    def _read_completion(self, response: http.client.HTTPResponse) -> Generation:
        try:
            payload = json.loads(response.read())
            choice = payload["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise Retryable("MalformedResponse") from exc
        text = str((choice.get("message") or {}).get("content") or "")
        usage = payload.get("usage") or {}
        return Generation(engine=self.engine, data=first_json_object(text), text=text,
                          stop_reason=str(choice.get("finish_reason") or ""),
                          input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"))

    def _stream(self, body: Mapping[str, Any]) -> Generation:
        return self._call(body, self._read_stream)

    def _read_stream(self, response: http.client.HTTPResponse) -> Generation:
        parts: list[str] = []
        finish = ""
        done = False
        usage: Mapping[str, Any] = {}
        while not done:
            raw = response.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments (": ping"), event:/id: fields
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                done = True
                continue
            try:
                event = json.loads(data)
            except json.JSONDecodeError as exc:
                raise Retryable("MalformedStreamEvent") from exc
            if not isinstance(event, dict) or event.get("error"):
                raise Retryable("StreamError")  # e.g. the engine failed mid-generation
            for choice in event.get("choices") or []:
                parts.append(str((choice.get("delta") or {}).get("content") or ""))
                finish = str(choice.get("finish_reason") or finish)
            usage = event.get("usage") or usage
        if not done and not finish:
            raise Retryable("StreamEndedEarly")
        return Generation(engine=self.engine, data=None, text="".join(parts), stop_reason=finish or "stop",
                          input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens"))


class _SchemaUnsupported(Exception):
    """The server rejected response_format: ask again without it."""


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped; None when absent/invalid."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, cap))
