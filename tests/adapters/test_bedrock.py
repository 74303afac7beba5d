"""Bedrock adapter: Converse through botocore's Stubber with real response shapes (toolUse content,
stop reasons tool_use / end_turn / max_tokens), retries and their backoff, error mapping; ConverseStream
through a stand-in stream of documented event shapes, including throttling raised inside the stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EventStreamError, ReadTimeoutError
from botocore.stub import Stubber

from medscribe.adapters import aws_clients
from medscribe.adapters.llm.bedrock import BedrockModel
from medscribe.adapters.llm.retry import Retryable, RetryPolicy
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.invocation import SAFETY_MARGIN_SECONDS, invocation
from medscribe.settings import PipelineSettings

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SCHEMA = {"type": "object", "properties": {"sections": {"type": "array"}}, "required": ["sections"]}
NOTE = {"sections": [{"name": "Plan", "items": [{"text": "Rest and fluids", "lines": [5]}]}]}


def bedrock_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def stubbed() -> tuple[BedrockModel, Stubber, list[float]]:
    client = bedrock_client()
    sleeps: list[float] = []
    return BedrockModel(MODEL, client, sleep=sleeps.append, base_delay=0.5), Stubber(client), sleeps


def converse_response(content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    """A Converse response as the API returns it."""
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 812, "outputTokens": 95, "totalTokens": 907},
        "metrics": {"latencyMs": 1432},
    }


def tool_use(data: dict[str, Any], name: str = "write_note") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": name, "input": data}}


def expected_json_request(max_tokens: int = 4096) -> dict[str, Any]:
    return {
        "modelId": MODEL,
        "system": [{"text": "You write notes."}],
        "messages": [{"role": "user", "content": [{"text": "the transcript"}]}],
        "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.0},
        "toolConfig": {
            "tools": [{"toolSpec": {
                "name": "write_note",
                "description": "Record the structured answer. Call this tool exactly once with the complete answer.",
                "inputSchema": {"json": SCHEMA},
            }}],
            "toolChoice": {"tool": {"name": "write_note"}},
        },
    }


def generate(model: BedrockModel, max_tokens: int = 4096) -> Any:
    return model.generate_json(system="You write notes.", prompt="the transcript", schema=SCHEMA,
                               tool_name="write_note", max_tokens=max_tokens)


def test_tool_use_is_the_structured_output(stubbed) -> None:  # type: ignore[no-untyped-def]
    model, stub, sleeps = stubbed
    stub.add_response("converse", converse_response(
        [{"text": "I'll record the note."}, tool_use(NOTE)], "tool_use"), expected_json_request())
    with stub:
        generation = generate(model)
    stub.assert_no_pending_responses()
    assert generation.data == NOTE
    assert json.loads(generation.text) == NOTE
    assert (generation.stop_reason, generation.truncated) == ("tool_use", False)
    assert (generation.input_tokens, generation.output_tokens) == (812, 95)
    assert generation.engine == f"bedrock:{MODEL}"
    assert sleeps == []


def test_end_turn_without_tool_use_has_no_structured_output(stubbed) -> None:  # type: ignore[no-untyped-def]
    model, stub, _ = stubbed
    stub.add_response("converse", converse_response([{"text": "I cannot help with that."}], "end_turn"), None)
    with stub:
        generation = generate(model)
    assert (generation.data, generation.text, generation.stop_reason) == (None, "I cannot help with that.", "end_turn")


def test_max_tokens_marks_the_output_truncated(stubbed) -> None:  # type: ignore[no-untyped-def]
    model, stub, _ = stubbed
    stub.add_response("converse", converse_response([tool_use({"sections": []})], "max_tokens"), None)
    with stub:
        generation = generate(model)
    assert generation.truncated
    assert generation.stop_reason == "max_tokens"


@pytest.mark.parametrize(("code", "status"), [
    ("ThrottlingException", 429), ("ServiceUnavailableException", 503), ("ModelNotReadyException", 429),
    ("InternalServerException", 500), ("ModelTimeoutException", 408),
])
def test_transient_errors_are_retried_with_backoff(stubbed, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    model, stub, sleeps = stubbed
    stub.add_client_error("converse", code, "Too many requests, please wait before trying again.", status)
    stub.add_client_error("converse", code, "Too many requests, please wait before trying again.", status)
    stub.add_response("converse", converse_response([tool_use(NOTE)], "tool_use"), None)
    with stub:
        assert generate(model).data == NOTE
    stub.assert_no_pending_responses()
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 <= sleeps[1] <= 1.0  # exponential with jitter


def test_throttling_that_persists_becomes_transient(stubbed) -> None:  # type: ignore[no-untyped-def]
    model, stub, sleeps = stubbed
    for _ in range(model.retry.attempts):
        stub.add_client_error("converse", "ThrottlingException", "Rate exceeded", 429)
    with stub, pytest.raises(TransientError, match="ThrottlingException after 4 attempts"):
        generate(model)
    assert len(sleeps) == model.retry.attempts - 1


@pytest.mark.parametrize("code", ["ValidationException", "AccessDeniedException", "ResourceNotFoundException"])
def test_requests_that_cannot_succeed_are_permanent(stubbed, code: str) -> None:  # type: ignore[no-untyped-def]
    model, stub, sleeps = stubbed
    stub.add_client_error("converse", code, "The provided model identifier is invalid.", 400)
    with stub, pytest.raises(PermanentError, match=code):
        generate(model)
    assert sleeps == []


def test_a_read_timeout_is_retried() -> None:
    client = bedrock_client()
    calls: list[int] = []

    def converse(**_: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
        return converse_response([tool_use(NOTE)], "tool_use")

    client.converse = converse
    sleeps: list[float] = []
    assert generate(BedrockModel(MODEL, client, sleep=sleeps.append)).data == NOTE
    assert len(calls) == 2
    assert len(sleeps) == 1


# ------------------------------------------------------------------------------------ ConverseStream


class FakeStream:
    """Stands in for botocore's EventStream: iterable of event dicts, closable."""

    def __init__(self, events: list[dict[str, Any]], error: Exception | None = None) -> None:
        self.events = events
        self.error = error
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.events
        if self.error:
            raise self.error

    def close(self) -> None:
        self.closed = True


def tool_stream(data: dict[str, Any], stop: str = "tool_use", cut: int | None = None) -> list[dict[str, Any]]:
    encoded = json.dumps(data)
    encoded = encoded[:cut] if cut else encoded
    fragments = [encoded[i:i + 17] for i in range(0, len(encoded), 17)]
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Recording the note."}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tooluse_1", "name": "write_note"}},
                               "contentBlockIndex": 1}},
        *({"contentBlockDelta": {"delta": {"toolUse": {"input": f}}, "contentBlockIndex": 1}} for f in fragments),
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": stop}},
        {"metadata": {"usage": {"inputTokens": 900, "outputTokens": 120, "totalTokens": 1020},
                      "metrics": {"latencyMs": 2100}}},
    ]


def text_stream(*parts: str, stop: str = "end_turn") -> list[dict[str, Any]]:
    return [
        {"messageStart": {"role": "assistant"}},
        *({"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in parts),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": stop}},
        {"metadata": {"usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14}, "metrics": {"latencyMs": 9}}},
    ]


class StreamingClient:
    """A real bedrock-runtime client whose converse_stream replays scripted streams and records requests."""

    def __init__(self, *streams: FakeStream | Exception) -> None:
        self.client = bedrock_client()
        self.streams = list(streams)
        self.requests: list[dict[str, Any]] = []
        self.client.converse_stream = self.converse_stream

    def converse_stream(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream
        return {"stream": stream, "ResponseMetadata": {"HTTPStatusCode": 200}}


def test_long_structured_output_is_streamed_and_assembled() -> None:
    streams = StreamingClient(FakeStream(tool_stream(NOTE)))
    model = BedrockModel(MODEL, streams.client, stream_above_tokens=4096)
    generation = generate(model, max_tokens=8192)
    assert generation.data == NOTE
    assert (generation.stop_reason, generation.output_tokens) == ("tool_use", 120)
    assert streams.requests[0] == expected_json_request(8192)


def test_generate_text_streams() -> None:
    stream = FakeStream(text_stream("The patient ", "reports a cough."))
    streams = StreamingClient(stream)
    generation = BedrockModel(MODEL, streams.client).generate_text(system="s", prompt="p", max_tokens=300)
    assert generation.text == "The patient reports a cough."
    assert (generation.data, generation.stop_reason) == (None, "end_turn")
    assert "toolConfig" not in streams.requests[0]
    assert streams.requests[0]["inferenceConfig"]["maxTokens"] == 300
    assert stream.closed


def test_throttling_inside_the_stream_is_retried() -> None:
    """botocore retries a throttled request, but not a throttlingException event in the response stream."""
    broken = FakeStream([*tool_stream(NOTE)[:5], {"throttlingException": {"message": "Too many tokens, please wait."}}])
    streams = StreamingClient(broken, FakeStream(tool_stream(NOTE)))
    sleeps: list[float] = []
    generation = generate(BedrockModel(MODEL, streams.client, sleep=sleeps.append), max_tokens=10_000)
    assert generation.data == NOTE
    assert len(streams.requests) == 2
    assert len(sleeps) == 1
    assert broken.closed


@pytest.mark.parametrize("event", ["serviceUnavailableException", "internalServerException",
                                   "modelStreamErrorException"])
def test_other_stream_faults_are_retried_then_transient(event: str) -> None:
    streams = StreamingClient(*[FakeStream([{"messageStart": {"role": "assistant"}}, {event: {"message": "x"}}])
                                for _ in range(3)])
    sleeps: list[float] = []
    with pytest.raises(TransientError, match=event):
        BedrockModel(MODEL, streams.client, attempts=3, sleep=sleeps.append).generate_text(system="s", prompt="p")
    assert len(sleeps) == 2


def test_event_stream_errors_raised_by_botocore_are_retried() -> None:
    """The real EventStream raises EventStreamError (a ClientError) for an exception event."""
    error = EventStreamError({"Error": {"Code": "throttlingException", "Message": "Too many requests"}},
                             "ConverseStream")
    streams = StreamingClient(FakeStream(text_stream("partial")[:2], error), FakeStream(text_stream("whole")))
    sleeps: list[float] = []
    model = BedrockModel(MODEL, streams.client, sleep=sleeps.append)
    assert model.generate_text(system="s", prompt="p").text == "whole"
    assert len(sleeps) == 1


def test_validation_inside_the_stream_is_permanent() -> None:
    streams = StreamingClient(FakeStream([{"validationException": {"message": "Input is too long."}}]))
    sleeps: list[float] = []
    with pytest.raises(PermanentError, match="validationException"):
        BedrockModel(MODEL, streams.client, sleep=sleeps.append).generate_text(system="s", prompt="p")
    assert sleeps == []


def test_a_stream_cut_at_max_tokens_is_truncated_text() -> None:
    streams = StreamingClient(FakeStream(tool_stream(NOTE, stop="max_tokens", cut=40)))
    generation = generate(BedrockModel(MODEL, streams.client), max_tokens=9000)
    assert generation.truncated
    assert generation.data is None
    assert generation.text == json.dumps(NOTE)[:40]  # kept for the repair prompt


def test_a_stream_that_ends_without_stop_is_retried() -> None:
    streams = StreamingClient(FakeStream(text_stream("half")[:2]), FakeStream(text_stream("whole")))
    sleeps: list[float] = []
    model = BedrockModel(MODEL, streams.client, sleep=sleeps.append)
    assert model.generate_text(system="s", prompt="p").text == "whole"
    assert len(sleeps) == 1


def test_model_ids_come_from_settings() -> None:
    settings = PipelineSettings()
    assert BedrockModel.from_settings(settings).model_id == settings.bedrock_model_id
    assert BedrockModel.from_settings(settings, long=True).model_id == settings.bedrock_long_model_id


def test_the_shared_client_leaves_retries_to_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_clients.reset()
    try:
        config = aws_clients.client("bedrock-runtime").meta.config
        assert config.retries["total_max_attempts"] == 1
        assert config.read_timeout == aws_clients.BEDROCK_READ_TIMEOUT_SECONDS
        assert aws_clients.client("s3").meta.config.retries["total_max_attempts"] > 1
    finally:
        aws_clients.reset()


class _Context:
    """A Lambda context with `left` seconds remaining."""

    def __init__(self, left: float) -> None:
        self.left = left

    def get_remaining_time_in_millis(self) -> int:
        return int(self.left * 1000)


def test_a_call_that_may_outlast_the_invocation_is_not_started() -> None:
    """A Bedrock call may take the client's read timeout: with less left in the invocation, the adapter
    answers TransientError (the message returns to its queue) instead of being killed mid-call."""
    calls: list[dict[str, Any]] = []

    class Client:
        def converse(self, **request: Any) -> dict[str, Any]:
            calls.append(request)
            return converse_response([tool_use({"answer": "x"})], "tool_use")

    model = BedrockModel("m", Client())
    with invocation(_Context(aws_clients.BEDROCK_ATTEMPT_SECONDS - 10)), pytest.raises(TransientError, match="left"):
        model.generate_json(system="s", prompt="p", schema={"type": "object"}, tool_name="t")
    assert calls == []
    with invocation(_Context(aws_clients.BEDROCK_ATTEMPT_SECONDS + 30)):
        assert model.generate_json(system="s", prompt="p", schema={"type": "object"}, tool_name="t").data
    assert model.generate_json(system="s", prompt="p", schema={"type": "object"}, tool_name="t").data  # no limit


def test_a_backoff_that_would_end_past_the_invocation_is_not_slept() -> None:
    sleeps: list[float] = []
    attempts: list[int] = []
    policy = RetryPolicy(attempts=3, base_delay=30.0, max_delay=30.0, sleep=sleeps.append, attempt_seconds=60.0)

    def throttled() -> None:
        attempts.append(1)
        raise Retryable("ThrottlingException")

    with invocation(_Context(70 + SAFETY_MARGIN_SECONDS)), pytest.raises(TransientError, match="left"):
        policy.run(throttled, engine="e")
    assert (len(attempts), sleeps) == (1, [])  # 15-30 s of backoff + a 60 s attempt do not fit in ~70 s


def test_every_function_that_calls_bedrock_outlives_one_call() -> None:
    """The old read timeout equalled the document function's timeout: a slow call killed the invocation."""
    from medscribe.routes import ENDPOINTS, ROUTES, Access

    for handler in (*ROUTES, *ENDPOINTS):
        if Access.BEDROCK_INVOKE in handler.access:
            assert handler.timeout_seconds >= aws_clients.BEDROCK_ATTEMPT_SECONDS + SAFETY_MARGIN_SECONDS + 30, \
                handler.name
