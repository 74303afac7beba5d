"""A strict local Amazon Bedrock Converse endpoint: Bedrock's request rules, the offline engines' answers.

Point boto3 at it with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME=<url>` and the unmodified Bedrock adapter
(`medscribe.adapters.llm.bedrock`) runs its real path: botocore serialises Converse and
ConverseStream requests (REST-JSON, `POST /model/{modelId}/converse[-stream]`), this server checks
each one against the rules Bedrock applies on its side (`service_rules.converse_problems`: tool
names, top-level schema property keys, toolChoice naming a declared tool, message shape) and answers
a violation as Bedrock does (HTTP 400, `ValidationException`), and botocore parses the answer,
including ConverseStream's binary event stream (`application/vnd.amazon.eventstream`: prelude, headers,
payload, CRC32s).

What is real and what is not: the protocol, the request rules and the response shapes are Bedrock's;
the *content* of an answer is not a model's. `OfflineResponder` answers a forced tool from the
request itself with the project's offline engines: `record_emr` from the delimited note (the rule
extractor), `write_note` from the delimited numbered transcript (the extractive note engine, with
the template whose schema the request carries), `answer_question` by retrieval; free text is a fixed
sentence. Tests pass their own responder to script other answers.

Run one by hand: `python -m medscribe_local.converse_endpoint [--port N]` prints its URL.
"""

from __future__ import annotations

import argparse
import binascii
import json
import re
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from medscribe_local.service_rules import converse_problems

HOST = "127.0.0.1"
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<operation>converse|converse-stream)$")
_BLOCK = re.compile(r"<(?P<tag>(?:clinical-note|transcript)-[0-9a-f]{12})>\n(?P<body>.*?)\n</(?P=tag)>", re.S)
_LINE = re.compile(r"^(?P<n>\d+) \[(?P<speaker>[^\]]*)\] (?P<text>.*)$")
FREE_TEXT = "The local Converse endpoint has no free-text engine."

# (content blocks, stopReason) for one request
Reply = tuple[list[dict[str, Any]], str]
Responder = Callable[[Mapping[str, Any]], Reply]


class OfflineResponder:
    """Answers a forced tool with the offline engines, from the data the request carries."""

    def __call__(self, request: Mapping[str, Any]) -> Reply:
        prompt = "\n".join(str(block.get("text", "")) for message in request.get("messages", [])
                           if message.get("role") == "user" for block in message.get("content", []))
        tool_config = request.get("toolConfig") or {}
        specs = [tool["toolSpec"] for tool in tool_config.get("tools", []) if "toolSpec" in tool]
        if not specs:
            return [{"text": FREE_TEXT}], "end_turn"
        chosen = (tool_config.get("toolChoice") or {}).get("tool", {}).get("name") or specs[0]["name"]
        spec = next(spec for spec in specs if spec["name"] == chosen)
        data = self.tool_input(spec["inputSchema"]["json"], prompt)
        return [{"toolUse": {"toolUseId": "tooluse_local0001", "name": chosen, "input": data}}], "tool_use"

    @staticmethod
    def tool_input(schema: Mapping[str, Any], prompt: str) -> dict[str, Any]:
        from medscribe.domain.emr import WIRE_KEYS, detect_language
        from medscribe.domain.note_writing import answer_question, write_note
        from medscribe.domain.notes import CATALOGUE, load_template
        from medscribe.domain.offline_emr import extract_record

        keys = set((schema.get("properties") or {}).keys())
        block = _BLOCK.search(prompt)
        body = block.group("body") if block else ""
        if keys == set(WIRE_KEYS.values()):
            return extract_record(body, detect_language(body)).to_wire()
        lines = _lines(body)
        if keys == {"sections"}:
            template = next((name for name in CATALOGUE if load_template(name).json_schema() == schema), None)
            if template is None:  # a custom template: its cues are not in the request, so nothing to classify by
                return {"sections": []}
            note = write_note(lines, template=template)
            return {"sections": [section.to_dict() for section in note.sections]}
        if keys == {"answer", "lines", "found"}:
            question = prompt.partition("Question: ")[2].split("\n", 1)[0]
            answer = answer_question(lines, question)
            return {"answer": answer.answer, "lines": list(answer.lines), "found": answer.found}
        if keys == {"verdicts"}:  # the claim judge: the deterministic checker's verdict per claim
            return {"verdicts": _verdicts(prompt)}
        return {}


def _verdicts(prompt: str) -> list[dict[str, Any]]:
    from medscribe.domain.evidence import verify_claim

    verdicts = []
    for match in re.finditer(r"^C(\d+): (.*)\n  cited lines:\n((?:  \d+ \[[^\]]*\] .*\n?)*)", prompt, re.MULTILINE):
        cited = [line.split("] ", 1)[1] for line in match.group(3).splitlines() if "] " in line]
        verdicts.append({"claim": int(match.group(1)), "verdict": verify_claim(match.group(2), cited).status})
    return verdicts


def _lines(body: str) -> list[Any]:
    from medscribe.domain.transcript_lines import Line

    found = (_LINE.match(row) for row in body.splitlines())
    return [Line(int(m["n"]), m["speaker"], 0.0, 0.0, m["text"], None) for m in found if m]


# --- AWS event stream encoding (what botocore's EventStream parser reads) ------------------------


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event_message(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """One event-stream message: prelude (total and header lengths, CRC32), headers, JSON payload, CRC32."""
    headers = (_header(":event-type", event_type) + _header(":content-type", "application/json")
               + _header(":message-type", "event"))
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def stream_events(content: list[dict[str, Any]], stop_reason: str) -> bytes:
    """ConverseStream's events for a reply: messageStart, per block start/deltas/stop, messageStop, metadata."""
    events = [event_message("messageStart", {"role": "assistant"})]
    for index, block in enumerate(content):
        if "toolUse" in block:
            tool = block["toolUse"]
            events.append(event_message("contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}}))
            text = json.dumps(tool["input"], ensure_ascii=False)
            events += [event_message("contentBlockDelta", {"contentBlockIndex": index,
                                                           "delta": {"toolUse": {"input": text[i:i + 200]}}})
                       for i in range(0, len(text), 200)]
        else:
            text = str(block.get("text", ""))
            events += [event_message("contentBlockDelta", {"contentBlockIndex": index,
                                                           "delta": {"text": text[i:i + 200]}})
                       for i in range(0, max(len(text), 1), 200)]
        events.append(event_message("contentBlockStop", {"contentBlockIndex": index}))
    events.append(event_message("messageStop", {"stopReason": stop_reason}))
    events.append(event_message("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                                             "metrics": {"latencyMs": 1}}))
    return b"".join(events)


# --- the server ----------------------------------------------------------------------------------


@dataclass
class ConverseEndpoint:
    """The endpoint on 127.0.0.1: `with ConverseEndpoint() as endpoint: ...endpoint.url...`. Keeps every
    request it received (`requests`) and every rule violation it answered (`rejected`)."""

    responder: Responder = field(default_factory=OfflineResponder)
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[list[str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not running")
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> str:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, headers, body = endpoint.handle(self.path, self.rfile.read(length))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ConverseEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, path: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        match = _PATH.match(path.split("?", 1)[0])
        if match is None:
            return _error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no such operation: {path}")
        try:
            body = json.loads(payload or b"{}")
        except ValueError:
            return _error(HTTPStatus.BAD_REQUEST, "ValidationException", "the request body is not JSON")
        request = {"modelId": unquote(match["model"]), **body}
        problems = converse_problems(request)
        with self._lock:
            self.requests.append(request)
            if problems:
                self.rejected.append(problems)
        if problems:
            return _error(HTTPStatus.BAD_REQUEST, "ValidationException", "; ".join(problems))
        content, stop_reason = self.responder(request)
        if match["operation"] == "converse-stream":
            return HTTPStatus.OK, {"Content-Type": "application/vnd.amazon.eventstream"}, \
                stream_events(content, stop_reason)
        reply = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop_reason,
                 "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}, "metrics": {"latencyMs": 1}}
        return HTTPStatus.OK, {"Content-Type": "application/json"}, json.dumps(reply).encode()


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, \
        json.dumps({"message": message}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description="A strict local Bedrock Converse endpoint (offline answers).")
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    endpoint = ConverseEndpoint(port=port)
    print(f"AWS_ENDPOINT_URL_BEDROCK_RUNTIME={endpoint.start()}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        endpoint.stop()


if __name__ == "__main__":
    main()
