"""Fault injection for the local runtime's AWS calls, and the registry of reliability figures.

`FaultInjector` hooks botocore events on the shared clients of `medscribe.adapters.aws_clients`
(one per service per process: the handlers' execution environments share them with the pollers, the
local Transcribe service and the test) and answers a seeded fraction of the matching calls with
the error a throttled or failing AWS service returns. Three ways to inject:

- `Stage.SEND` (`before-send`): the attempt gets the service's HTTP error response instead of
  reaching the emulator. botocore parses it into the modeled error, and its retry handler sees it
  (the clients' standard mode retries throttling and 5xx with backoff), so the application sees a
  ClientError only when every attempt failed ("surfaced"), or when the client's retry quota is
  spent: standard mode keeps 500 tokens per client, a retry costs 5 after throttling and 14 after
  a 5xx (botocore 1.44), a success without retry gives 1 back, so a sustained fault rate drains it
  and then faults surface at their first attempt. This is how a throttled or flaky service looks to
  a Lambda function.
- `Stage.CALL` (`before-call`): the call raises the modeled ClientError at once, with no botocore
  retry, so the application's own handling runs: adapter backoff, or TransientError failing the SQS
  message so it is delivered again.
- `Stage.LOST_RESPONSE` (`before-send`): the attempt reaches the service, which acts on it, and its
  answer is replaced by the error: the ambiguous failure (a timeout, a 5xx after the write) that makes
  retries meet their own earlier success, e.g. a ConflictException for a job that was started.

The calls that can fail are those made on handler threads (the pollers' invocation threads,
`medscribe-<route>_<n>`), not the pollers' own SQS traffic, the local Transcribe service's work or
the test's reads. Optionally narrower: some routes, some operations, calls whose parameters mention
a text.

Deterministic: one `random.Random(seed)`, behind a lock, decides every matching call in turn. With
concurrent handlers, which call draws which decision depends on scheduling; the rate does not.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from random import Random
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.httpsession import URLLib3Session

from medscribe.adapters import aws_clients
from medscribe.routes import ROUTES

FAULT_HEADER = "x-medscribe-injected-fault"
MESSAGE = "Injected fault: the request rate is too high or the service is failing; try again."


@dataclass(frozen=True)
class FaultKind:
    code: str
    status: int

    @property
    def family(self) -> str:
        return "5xx" if self.status >= 500 else "throttling"


# What each service answers when it throttles or fails (codes and statuses as the services send them).
TRANSIENT_FAULTS: dict[str, tuple[FaultKind, ...]] = {
    "dynamodb": (FaultKind("ProvisionedThroughputExceededException", 400), FaultKind("ThrottlingException", 400),
                 FaultKind("InternalServerError", 500)),
    "s3": (FaultKind("SlowDown", 503), FaultKind("InternalError", 500), FaultKind("ServiceUnavailable", 503)),
    "events": (FaultKind("ThrottlingException", 400), FaultKind("InternalException", 500)),
    "sns": (FaultKind("Throttled", 429), FaultKind("InternalError", 500)),
    "transcribe": (FaultKind("LimitExceededException", 429), FaultKind("ThrottlingException", 400),
                   FaultKind("InternalFailureException", 500)),
}


class Stage(StrEnum):
    SEND = "send"
    CALL = "call"
    LOST_RESPONSE = "lost-response"

    @property
    def event(self) -> str:
        return "before-call" if self is Stage.CALL else "before-send"


@dataclass
class FaultStats:
    """`matching`: calls (CALL) or attempts (SEND, LOST_RESPONSE) that could have failed; `injected`:
    per "<service> <code>"; `families`: throttling / 5xx; `surfaced`: injected failures the
    application saw as a ClientError."""

    matching: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    surfaced: int = 0

    @property
    def total(self) -> int:
        return sum(self.injected.values())


class _Body:
    """The `raw` of an AWSResponse: botocore reads an error body through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def error_body(protocol: str, kind: FaultKind, request_id: str) -> tuple[bytes, dict[str, str]]:
    """The error response body and headers a service of this protocol sends."""
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": kind.code, "message": MESSAGE}).encode()
        return body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": kind.code}
    code, message = escape(kind.code), escape(MESSAGE)
    if protocol == "rest-xml":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    elif protocol == "query":
        party = "Receiver" if kind.status >= 500 else "Sender"
        xml = (f"<ErrorResponse><Error><Type>{party}</Type><Code>{code}</Code><Message>{message}</Message>"
               f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    else:
        raise ValueError(f"no error body for protocol {protocol!r}")
    return xml.encode(), {"Content-Type": "text/xml"}


def handler_threads(routes: Collection[str] | None = None) -> re.Pattern[str]:
    """Names of the threads the local runtime's pollers invoke handlers on (all routes, or these)."""
    names = sorted(routes) if routes is not None else sorted(route.name for route in ROUTES)
    return re.compile(rf"^medscribe-({'|'.join(map(re.escape, names))})_\d+$")


class FaultInjector:
    """Fail `rate` of the matching calls on the shared clients while entered (a context manager)."""

    def __init__(
        self, rate: float, *, stage: Stage = Stage.SEND, seed: int = 7,
        faults: Mapping[str, Sequence[FaultKind]] = TRANSIENT_FAULTS, routes: Collection[str] | None = None,
        operations: Collection[str] | None = None, mentioning: str | None = None, limit: int | None = None,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be within [0, 1], not {rate}")
        self.rate = rate
        self.stage = stage
        self.faults = {service: tuple(kinds) for service, kinds in faults.items()}
        self.threads = handler_threads(routes)
        self.operations = frozenset(operations) if operations is not None else None
        self.mentioning = mentioning
        self.limit = limit  # at most this many faults (None: no limit)
        self._http = URLLib3Session()
        self._random = Random(seed)  # noqa: S311 - fault sampling, not cryptography
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stats = FaultStats()
        self._registered: list[tuple[Any, str, str]] = []

    def stats(self) -> FaultStats:
        with self._lock:
            return FaultStats(self._stats.matching, Counter(self._stats.injected), Counter(self._stats.families),
                              self._stats.surfaced)

    # -- installing ----------------------------------------------------------------------------

    def __enter__(self) -> FaultInjector:
        for service in self.faults:
            events = aws_clients.client(service).meta.events
            service_id = aws_clients.client(service).meta.service_model.service_id.hyphenize()
            hooks = {
                f"before-parameter-build.{service_id}": self._remember_params,
                f"{self.stage.event}.{service_id}": self._on_call if self.stage is Stage.CALL else self._on_send,
                f"after-call.{service_id}": self._after_call,
            }
            for event, hook in hooks.items():
                unique_id = f"medscribe-fault-{id(self)}-{event}"
                events.register_first(event, _bind(hook, service), unique_id=unique_id)
                self._registered.append((events, event, unique_id))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        while self._registered:
            events, event, unique_id = self._registered.pop()
            events.unregister(event, unique_id=unique_id)

    # -- deciding ------------------------------------------------------------------------------

    def _remember_params(self, service: str, params: dict[str, Any], **_: Any) -> None:
        self._local.params = params

    def _draw(self, service: str, event_name: str) -> FaultKind | None:
        """The fault for this call or attempt, or None to let it through."""
        if not self.threads.match(threading.current_thread().name):
            return None
        operation = event_name.rsplit(".", 1)[-1]
        if self.operations is not None and operation not in self.operations:
            return None
        if self.mentioning is not None:
            params = getattr(self._local, "params", None)
            if self.mentioning not in json.dumps(params, default=str):
                return None
        with self._lock:
            self._stats.matching += 1
            if self._random.random() >= self.rate or self._stats.total == self.limit:
                return None
            kind = self._random.choice(self.faults[service])
            self._stats.injected[f"{service} {kind.code}"] += 1
            self._stats.families[kind.family] += 1
            return kind

    def _on_send(self, service: str, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        kind = self._draw(service, event_name)
        if kind is None:
            return None
        if self.stage is Stage.LOST_RESPONSE:
            self._http.send(request).raw.read()  # the service acts on the request; its answer is lost
        protocol = aws_clients.client(service).meta.service_model.resolved_protocol
        request_id = str(uuid.uuid4())
        body, headers = error_body(protocol, kind, request_id)
        headers.update({FAULT_HEADER: kind.code, "x-amzn-RequestId": request_id, "Content-Length": str(len(body))})
        return AWSResponse(request.url, kind.status, headers, _Body(body))

    def _on_call(self, service: str, event_name: str, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        kind = self._draw(service, event_name)
        if kind is None:
            return None
        request_id = str(uuid.uuid4())
        headers = {FAULT_HEADER: kind.code, "x-amzn-RequestId": request_id}
        parsed = {
            "Error": {"Code": kind.code, "Message": MESSAGE},
            "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": kind.status,
                                 "HTTPHeaders": headers, "RetryAttempts": 0},
        }
        return AWSResponse("", kind.status, headers, _Body(b"")), parsed

    def _after_call(self, service: str, http_response: Any, **_: Any) -> None:
        if FAULT_HEADER in getattr(http_response, "headers", {}):
            with self._lock:
                self._stats.surfaced += 1


def _bind(hook: Any, service: str) -> Any:
    """`hook` with its service; botocore calls handlers with keyword arguments only."""

    def bound(**kwargs: Any) -> Any:
        return hook(service, **kwargs)

    return bound


# -- figures ---------------------------------------------------------------------------------------

# (section, figure, value), in the order the reliability tests recorded them; printed at the end of
# the pytest run by tests/e2e/conftest.py (pytest_terminal_summary).
FIGURES: list[tuple[str, str, str]] = []


def record_figure(section: str, figure: str, value: object) -> None:
    FIGURES.append((section, figure, str(value)))
