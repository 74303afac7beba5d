"""Amazon Bedrock through the Converse API: the `LanguageModel` port for Claude (Haiku / Sonnet).

- Structured output by tool use: one tool whose `inputSchema.json` is the caller's JSON schema and
  `toolChoice` forcing it; the tool's `input` is `Generation.data`.
- ConverseStream for free text and for long outputs (max_tokens above `stream_above_tokens`): text
  and tool-input JSON fragments of `contentBlockDelta` events are assembled in block order.
- `stopReason` is kept: `max_tokens` makes `Generation.truncated` true (the caller repairs or flags).
- Retries (adapters/llm/retry.py) with exponential backoff and jitter on ThrottlingException,
  ServiceUnavailableException, ModelNotReadyException, InternalServerException,
  ModelTimeoutException and on the same faults arriving as events inside a stream
  (`throttlingException`, `serviceUnavailableException`, `internalServerException`,
  `modelStreamErrorException`), which botocore does not retry; then `TransientError`.
  ValidationException, AccessDeniedException, ResourceNotFoundException and the like are
  `PermanentError`. botocore's own retries are off for this client (aws_clients), so the
  backoff here is the only one and is visible in tests.

Model ids / inference profiles come from settings: `bedrock_model_id` (fast tier) and
`bedrock_long_model_id` (the repair attempt). Prompts and outputs may hold PHI: never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from medscribe.adapters import aws_clients
from medscribe.adapters.errors import error_code
from medscribe.adapters.llm.retry import Retryable, RetryPolicy
from medscribe.domain.errors import PermanentError
from medscribe.domain.llm import Generation
from medscribe.settings import PipelineSettings

RETRYABLE = frozenset(code.lower() for code in (
    "ThrottlingException", "ServiceUnavailableException", "ServiceUnavailable", "ModelNotReadyException",
    "InternalServerException", "ModelTimeoutException", "ModelStreamErrorException",
))
STREAM_ERRORS = ("throttlingException", "serviceUnavailableException", "internalServerException",
                 "modelStreamErrorException", "validationException")


class BedrockModel:
    def __init__(self, model_id: str, client: Any | None = None, *, attempts: int = 4, base_delay: float = 1.0,
                 max_delay: float = 20.0, sleep: Callable[[float], None] = time.sleep,
                 stream_above_tokens: int = 4096, temperature: float = 0.0) -> None:
        self.model_id = model_id
        self._client = client
        self.retry = RetryPolicy(attempts, base_delay, max_delay, sleep, aws_clients.BEDROCK_ATTEMPT_SECONDS)
        self.stream_above_tokens = stream_above_tokens
        self.temperature = temperature

    @classmethod
    def from_settings(cls, settings: PipelineSettings, *, long: bool = False, **options: Any) -> BedrockModel:
        """The fast tier (`bedrock_model_id`) or, with long=True, `bedrock_long_model_id`."""
        return cls(settings.bedrock_long_model_id if long else settings.bedrock_model_id, **options)

    @property
    def engine(self) -> str:
        return f"bedrock:{self.model_id}"

    @property
    def client(self) -> Any:
        return self._client or aws_clients.client("bedrock-runtime")

    def generate_json(self, *, system: str, prompt: str, schema: dict[str, Any], tool_name: str,
                      max_tokens: int = 4096) -> Generation:
        request = self._request(system, prompt, max_tokens)
        request["toolConfig"] = {
            "tools": [{"toolSpec": {
                "name": tool_name,
                "description": "Record the structured answer. Call this tool exactly once with the complete answer.",
                "inputSchema": {"json": schema},
            }}],
            "toolChoice": {"tool": {"name": tool_name}},
        }
        stream = max_tokens > self.stream_above_tokens
        return self.retry.run(lambda: self._converse_stream(request) if stream else self._converse(request),
                              engine=self.engine)

    def generate_text(self, *, system: str, prompt: str, max_tokens: int = 1024) -> Generation:
        request = self._request(system, prompt, max_tokens)
        return self.retry.run(lambda: self._converse_stream(request), engine=self.engine)

    # ---------------------------------------------------------------------------------- internals

    def _request(self, system: str, prompt: str, max_tokens: int) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            "system": [{"text": system}],
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": self.temperature},
        }

    def _converse(self, request: Mapping[str, Any]) -> Generation:
        try:
            response = self.client.converse(**request)
        except (ClientError, BotoCoreError) as exc:
            raise _mapped(exc) from exc
        message = response.get("output", {}).get("message", {})
        texts = [block["text"] for block in message.get("content", []) if "text" in block]
        tool_inputs = [block["toolUse"].get("input") for block in message.get("content", []) if "toolUse" in block]
        usage = response.get("usage", {})
        return self._generation(response.get("stopReason", ""), "".join(texts), tool_inputs,
                                usage.get("inputTokens"), usage.get("outputTokens"))

    def _converse_stream(self, request: Mapping[str, Any]) -> Generation:
        try:
            stream = self.client.converse_stream(**request)["stream"]
            try:
                return self._consume(stream)
            finally:
                close = getattr(stream, "close", None)
                if callable(close):
                    close()
        except (ClientError, BotoCoreError) as exc:  # EventStreamError (in-stream exceptions) is a ClientError
            raise _mapped(exc) from exc

    def _consume(self, stream: Iterable[Mapping[str, Any]]) -> Generation:
        blocks: dict[int, tuple[bool, list[str]]] = {}  # index -> (is tool use, fragments)
        stop_reason = ""
        usage: Mapping[str, Any] = {}
        for event in stream:
            for name in STREAM_ERRORS:
                if name in event:
                    _raise_for(name)
            if "contentBlockStart" in event:
                start = event["contentBlockStart"]
                blocks[int(start.get("contentBlockIndex", 0))] = ("toolUse" in start.get("start", {}), [])
            elif "contentBlockDelta" in event:
                delta_event = event["contentBlockDelta"]
                delta = delta_event.get("delta", {})
                is_tool, fragments = blocks.setdefault(int(delta_event.get("contentBlockIndex", 0)),
                                                       ("toolUse" in delta, []))
                if "toolUse" in delta:
                    fragments.append(str(delta["toolUse"].get("input", "")))
                elif "text" in delta:
                    fragments.append(str(delta["text"]))
            elif "messageStop" in event:
                stop_reason = str(event["messageStop"].get("stopReason", ""))
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {})
        if not stop_reason:
            raise Retryable("StreamEndedWithoutStop")  # a broken stream: try again
        texts = ["".join(parts) for _, (is_tool, parts) in sorted(blocks.items()) if not is_tool]
        tool_inputs: list[Any] = []
        for _, (is_tool, parts) in sorted(blocks.items()):
            if is_tool:
                raw = "".join(parts)
                try:
                    tool_inputs.append(json.loads(raw) if raw.strip() else {})
                except json.JSONDecodeError:
                    tool_inputs.append(raw)  # cut off (max_tokens) or malformed: kept as text for the repair
        return self._generation(stop_reason, "".join(texts), tool_inputs,
                                usage.get("inputTokens"), usage.get("outputTokens"))

    def _generation(self, stop_reason: str, text: str, tool_inputs: list[Any], input_tokens: Any,
                    output_tokens: Any) -> Generation:
        """Structured output is the (first) tool input; a cut-off tool input stays text (data None)."""
        data = next((value for value in tool_inputs if isinstance(value, dict)), None)
        if data is not None:
            shown = json.dumps(data, ensure_ascii=False)
        elif tool_inputs:
            shown = str(tool_inputs[0])
        else:
            shown = text
        return Generation(engine=self.engine, data=data, text=shown, stop_reason=stop_reason,
                          input_tokens=int(input_tokens) if input_tokens is not None else None,
                          output_tokens=int(output_tokens) if output_tokens is not None else None)


def _raise_for(code: str) -> None:
    if code.lower() in RETRYABLE:
        raise Retryable(code)
    raise PermanentError(f"Bedrock {code}")


def _mapped(exc: ClientError | BotoCoreError) -> Exception:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code.lower() in RETRYABLE or status >= 500:
            return Retryable(code or f"HTTP {status}")
        return PermanentError(f"Bedrock {code or status}")
    if isinstance(exc, HTTPClientError | BotoConnectionError):  # read/connect timeouts, dropped connections
        return Retryable(type(exc).__name__)
    return PermanentError(f"Bedrock {type(exc).__name__}")
