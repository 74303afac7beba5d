"""Amazon Transcribe's JSON 1.1 protocol for the local Transcribe service (transcribe_service.py):
the HTTP server on 127.0.0.1, the error shape, paging, and what the job and vocabulary modules share.

A request is POST / with X-Amz-Target: Transcribe.<Operation> and a JSON body; an error is an
`ApiError`, answered as HTTP 400 (unless it says otherwise) with {"__type": <code>, "Message":
<text>}, in the service's own wording. GET serves what the service hosts itself: service-managed
transcripts and vocabulary downloads.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

NAME = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")  # job and vocabulary names
NAME_CONSTRAINT = "Member must satisfy regular expression pattern: ^[0-9a-zA-Z._-]+"
DEFAULT_MAX_RESULTS = 5

NOT_AN_S3_URI = "The URI that you provided doesn't point to an S3 object. Check the URI and try again."
MEDIA_UNREADABLE = (
    "The S3 URI that you provided can't be accessed. Make sure that you have read permission "
    "and try your request again."
)
INTERNAL_FAILURE = "Internal failure. Please try your request again."


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def bad_request(message: str) -> ApiError:
    return ApiError("BadRequestException", message)


def constraint(value: Any, member: str, constraint: str) -> ApiError:
    return bad_request(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def s3_location(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of s3://bucket/key or https://s3[.region].amazonaws.com/bucket/key."""
    parts = urlsplit(uri)
    if parts.scheme == "s3" and parts.netloc and parts.path.strip("/"):
        return parts.netloc, parts.path[1:]
    if parts.scheme == "https" and parts.netloc.startswith("s3") and parts.netloc.endswith(".amazonaws.com"):
        bucket, _, key = parts.path[1:].partition("/")
        return (bucket, key) if bucket and key else None
    return None


def page(found: list[Any], body: dict[str, Any]) -> tuple[list[Any], str | None]:
    """One page of `found` for MaxResults / NextToken (an opaque offset)."""
    size = body.get("MaxResults", DEFAULT_MAX_RESULTS)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise constraint(size, "maxResults", "Member must have value between 1 and 100")
    offset = 0
    if body.get("NextToken"):
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(str(body["NextToken"])))["offset"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise bad_request("The NextToken is not valid.") from exc
    end = offset + size
    token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(found) else None
    return found[offset:end], token


class Api(Protocol):
    """What the HTTP server serves: the service behind it."""

    def dispatch(self, target: str, payload: bytes) -> tuple[int, dict[str, Any]]: ...

    def download(self, path: str) -> bytes | None: ...


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def do_POST(self) -> None:
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.server.api.dispatch(self.headers.get("X-Amz-Target", ""), payload)
        self._send(status, json.dumps(body).encode(), "application/x-amz-json-1.1")

    def do_GET(self) -> None:
        data = self.server.api.download(urlsplit(self.path).path)
        if data is None:
            self._send(HTTPStatus.NOT_FOUND, b"", "text/plain")
        else:
            self._send(HTTPStatus.OK, data, "application/octet-stream")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry job names only, but nothing here needs them
