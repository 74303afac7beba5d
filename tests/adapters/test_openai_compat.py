"""OpenAI-compatible adapter against a real HTTP server on 127.0.0.1 started by the test: JSON mode,
streaming (chunked SSE), 429 with Retry-After, 5xx backoff, timeouts, 4xx, and the fallback for
servers without json_schema support."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from medscribe.adapters.llm.openai_compat import OpenAICompatibleModel
from medscribe.domain.errors import PermanentError, TransientError
from medscribe.settings import PipelineSettings

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict (JSON) or bytes
    headers: dict[str, str] = field(default_factory=dict)
    events: list[str] | None = None  # SSE data payloads, sent chunked
    delay: float = 0.0  # seconds before answering


def completion(content: str, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1735689600, "model": "qwen-2.5-7b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 41, "completion_tokens": 9, "total_tokens": 50},
    }


def delta(content: str | None, finish: str | None = None) -> str:
    return json.dumps({"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": "qwen-2.5-7b",
                       "choices": [{"index": 0, "delta": {"content": content} if content is not None else {},
                                    "finish_reason": finish}]})


class Server:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                reply = server.replies.pop(0)
                time.sleep(reply.delay)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    self._send(reply)

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                if reply.events is not None:
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for event in reply.events:
                        chunk = f"data: {event}\n\n".encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    return
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def model(self, **options: Any) -> tuple[OpenAICompatibleModel, list[float]]:
        sleeps: list[float] = []
        options.setdefault("timeout", 5.0)
        return OpenAICompatibleModel(self.url, "qwen-2.5-7b", "sk-local", sleep=sleeps.append, **options), sleeps


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def ask_json(model: OpenAICompatibleModel) -> Any:
    return model.generate_json(system="Answer briefly.", prompt="What did the patient report?", schema=SCHEMA,
                               tool_name="answer", max_tokens=256)


def test_json_mode_request_and_response(server: Server) -> None:
    server.replies.append(Reply(body=completion('{"answer": "a cough"}')))
    model, sleeps = server.model()
    generation = ask_json(model)
    assert generation.data == {"answer": "a cough"}
    assert (generation.stop_reason, generation.truncated, generation.engine) == ("stop", False, "openai:qwen-2.5-7b")
    assert (generation.input_tokens, generation.output_tokens) == (41, 9)
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-local"
    body = request["body"]
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    assert body["model"] == "qwen-2.5-7b"
    assert body["max_tokens"] == 256
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert json.dumps(SCHEMA, separators=(",", ":")) in body["messages"][0]["content"]
    assert "stream" not in body
    assert sleeps == []


def test_json_wrapped_in_prose_and_truncation(server: Server) -> None:
    server.replies += [Reply(body=completion('Here you go:\n```json\n{"answer": "fever"}\n```')),
                       Reply(body=completion('{"answer": "fev', finish="length"))]
    model, _ = server.model()
    assert ask_json(model).data == {"answer": "fever"}
    cut = ask_json(model)
    assert cut.truncated
    assert cut.data is None


def test_streaming_text_is_assembled(server: Server) -> None:
    server.replies.append(Reply(events=[delta("The patient"), delta(" reports"), delta(" a cough."),
                                        delta(None, "stop"), "[DONE]"]))
    model, _ = server.model()
    generation = model.generate_text(system="Summarise.", prompt="transcript", max_tokens=64)
    assert (generation.text, generation.stop_reason, generation.data) == ("The patient reports a cough.", "stop", None)
    assert server.requests[0]["body"]["stream"] is True


def test_429_with_retry_after_is_honoured(server: Server) -> None:
    server.replies += [Reply(status=429, body={"error": {"message": "rate limited"}}, headers={"Retry-After": "2"}),
                       Reply(body=completion('{"answer": "ok"}'))]
    model, sleeps = server.model()
    assert ask_json(model).data == {"answer": "ok"}
    assert sleeps == [2.0]
    assert len(server.requests) == 2


def test_5xx_backs_off_then_becomes_transient(server: Server) -> None:
    server.replies += [Reply(status=503, body={"error": "overloaded"}) for _ in range(3)]
    model, sleeps = server.model(attempts=3, base_delay=0.5)
    with pytest.raises(TransientError, match="HTTP 503 after 3 attempts"):
        ask_json(model)
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 <= sleeps[1] <= 1.0


def test_a_read_timeout_is_transient(server: Server) -> None:
    server.replies += [Reply(body=completion('{"answer": "late"}'), delay=1.0) for _ in range(2)]
    model, sleeps = server.model(timeout=0.2, attempts=2)
    started = time.monotonic()
    with pytest.raises(TransientError, match="TimeoutError"):
        ask_json(model)
    assert time.monotonic() - started < 1.5  # gave up on each attempt at the read timeout
    assert len(server.requests) == 2
    assert len(sleeps) == 1


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", "m", attempts=2, sleep=sleeps.append)
    with pytest.raises(TransientError, match="ConnectionRefusedError"):
        model.generate_text(system="s", prompt="p")
    assert len(sleeps) == 1


def test_client_errors_are_permanent(server: Server) -> None:
    server.replies.append(Reply(status=404, body={"error": {"message": "The model `qwen` does not exist."}}))
    model, sleeps = server.model()
    with pytest.raises(PermanentError, match="HTTP 404"):
        ask_json(model)
    assert sleeps == []


def test_servers_without_json_schema_get_plain_json_instructions(server: Server) -> None:
    unsupported = {"error": {"message": "response_format type json_schema is not supported", "type": "invalid_request"}}
    server.replies += [Reply(status=400, body=unsupported), Reply(body=completion('{"answer": "rash"}')),
                       Reply(body=completion('{"answer": "itch"}'))]
    model, sleeps = server.model()
    assert ask_json(model).data == {"answer": "rash"}
    assert ask_json(model).data == {"answer": "itch"}
    assert ["response_format" in r["body"] for r in server.requests] == [True, False, False]  # remembered
    assert "JSON schema" in server.requests[1]["body"]["messages"][0]["content"]
    assert sleeps == []


def test_a_stream_that_fails_midway_is_retried(server: Server) -> None:
    server.replies += [Reply(events=[delta("The pat"), json.dumps({"error": {"message": "engine died"}})]),
                       Reply(events=[delta("half")]),  # ends without finish_reason or [DONE]
                       Reply(events=[delta("Whole."), delta(None, "stop"), "[DONE]"])]
    model, sleeps = server.model()
    assert model.generate_text(system="s", prompt="p").text == "Whole."
    assert len(sleeps) == 2


def test_configuration_from_the_settings_and_the_key_from_the_environment() -> None:
    settings = PipelineSettings(note_engine="openai", openai_base_url="http://ray-head:8000/v1",
                                openai_model="qwen-2.5-7b", openai_timeout_seconds=45)
    model = OpenAICompatibleModel.from_settings(settings, {"MEDSCRIBE_OPENAI_API_KEY": "sk-gateway"})
    assert (model.engine, model.timeout, model.base_url) == ("openai:qwen-2.5-7b", 45.0, "http://ray-head:8000/v1")
    assert model._api_key == "sk-gateway"
    assert OpenAICompatibleModel.from_settings(settings, {})._api_key is None
    with pytest.raises(ValueError, match="openai_base_url"):
        OpenAICompatibleModel.from_settings(PipelineSettings(), {})
    with pytest.raises(ValidationError, match="openai_model"):
        PipelineSettings(openai_base_url="http://x/v1")
    with pytest.raises(ValidationError, match="openai_base_url"):
        PipelineSettings(note_engine="openai")
    with pytest.raises(ValidationError, match="openai_base_url"):
        PipelineSettings(openai_base_url="ftp://x", openai_model="m")
    with pytest.raises(ValueError, match="http"):
        OpenAICompatibleModel("ftp://x", "m")


def test_the_documented_ray_serve_config_serves_the_model_the_docs_name() -> None:
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "docs" / "ray-serve" / "serve_config.yaml").read_text(encoding="utf-8"))
    (app,) = config["applications"]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    assert app["route_prefix"] == "/"  # so the API is at /v1/chat/completions
    (llm,) = app["args"]["llm_configs"]
    model_id = llm["model_loading_config"]["model_id"]
    guide = (root / "docs" / "self-hosting.md").read_text(encoding="utf-8")
    assert f"| `openai_model` | the served model name (`model_id`) | `{model_id}` |" in guide
    assert config["http_options"]["port"] == 8000
    assert f":{config['http_options']['port']}/v1" in guide
