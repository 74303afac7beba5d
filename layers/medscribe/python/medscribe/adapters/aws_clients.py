"""The one place boto3 clients are made: explicit retry/timeouts, created once per process.

The endpoint comes from the environment (`AWS_ENDPOINT_URL`, honoured by botocore itself), which is
how the local runtime points the same code at its emulator.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=30,
    tcp_keepalive=True,
)
# BedrockModel retries with backoff itself (it must: throttling raised inside a ConverseStream
# response is not retried by botocore), so botocore's retries are off for it. The read timeout covers
# a whole Converse answer (up to MAX_REPAIR_TOKENS of output) and must stay well below the timeout of
# every function that calls Bedrock, so a slow call ends as a handled TransientError, not as a killed
# invocation (the contract tier checks it; see medscribe.invocation).
BEDROCK_CONNECT_TIMEOUT_SECONDS = 5
BEDROCK_READ_TIMEOUT_SECONDS = 120
BEDROCK_ATTEMPT_SECONDS = BEDROCK_CONNECT_TIMEOUT_SECONDS + BEDROCK_READ_TIMEOUT_SECONDS
_SERVICE_CONFIG = {
    # SigV4 for presigned URLs too: S3 refuses SigV2 links to SSE-KMS objects, and botocore still
    # presigns with SigV2 in us-east-1 unless told (requests themselves are SigV4 either way). Virtual-hosted
    # addressing named explicitly, because only then does botocore presign for the bucket's regional
    # endpoint (`<bucket>.s3.<region>.amazonaws.com`) rather than the global one, which answers a new
    # bucket outside us-east-1 with a redirect a browser's upload cannot follow; an IP endpoint (the
    # local emulator) still gets path-style URLs.
    "s3": _CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "virtual"})),
    "bedrock-runtime": Config(retries={"mode": "standard", "total_max_attempts": 1},
                              connect_timeout=BEDROCK_CONNECT_TIMEOUT_SECONDS,
                              read_timeout=BEDROCK_READ_TIMEOUT_SECONDS, tcp_keepalive=True),
}
_lock = threading.Lock()
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """A shared client for `service` (thread-safe creation; boto3 clients are thread-safe to use)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            _clients[service] = boto3.session.Session().client(service, config=_SERVICE_CONFIG.get(service, _CONFIG))
        return _clients[service]


def reset() -> None:
    """Forget cached clients (tests and the local runtime call this after changing the endpoint)."""
    with _lock:
        _clients.clear()


class TableClient:
    """Base of the DynamoDB table adapters: a table name and a client (the shared one unless given)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or client("dynamodb")
