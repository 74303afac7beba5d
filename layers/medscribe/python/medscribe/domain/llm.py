"""The language-model port: what the documentation stage needs from any model.

Adapters: Amazon Bedrock (Converse / ConverseStream, structured output by tool use) and an
OpenAI-compatible HTTP endpoint (Ray Serve, vLLM, llama.cpp server, Ollama). Both return a
`Generation`; both raise `TransientError` for throttling/5xx/timeouts after bounded retries and
`PermanentError` for requests that cannot succeed. The offline note engine needs no model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Generation:
    engine: str  # e.g. "bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0", "openai:llama-3.1-8b"
    data: dict[str, Any] | None  # the structured output (tool input / parsed JSON); None when not valid JSON
    text: str  # raw text the model produced (for repairs and diagnostics; may hold PHI: never log it)
    stop_reason: str  # "end_turn" | "tool_use" | "max_tokens" | "stop" | "length" | ...
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def truncated(self) -> bool:
        return self.stop_reason in ("max_tokens", "length")


class LanguageModel(Protocol):
    @property
    def engine(self) -> str: ...

    def generate_json(self, *, system: str, prompt: str, schema: dict[str, Any], tool_name: str,
                      max_tokens: int = 4096) -> Generation:
        """Structured output conforming (ideally) to `schema`; validity is checked by the caller."""
        ...

    def generate_text(self, *, system: str, prompt: str, max_tokens: int = 1024) -> Generation:
        """Free text (streamed where the adapter supports it)."""
        ...


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's text (which may wrap it in prose or a ``` fence), else None.
    Parsing only: nothing in model output is ever executed."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None
