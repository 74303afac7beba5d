"""Records the AWS calls the Lambda handlers make while the handler and e2e tests run (a pytest plugin,
registered for every session by tests/conftest.py).

What is recorded: every botocore call (service, operation, request parameters) made while a
handler's code is running, attributed to its route or endpoint, plus the calls the local runtime
makes with a route's IAM role on its behalf:
- caller "handler": a frame of `lambdas/<name>/handler.py` is on the calling thread's stack (the
  handler tests' `load_handler`, the local runtime's pollers and cold starts alike). Module-level
  code counts: it runs at cold start under the function's role.
- caller "event-source-mapping": the local poller of a route receiving, extending and deleting its
  queue's messages (in AWS, Lambda's SQS event source mapping does this with the function's role);
- caller "pipe": the local stream pump of a StreamTrigger route (the EventBridge Pipe's role);
- caller "schedule": the local schedule timer of a ScheduleTrigger route (the schedule's role).
A handler that hands work to a worker thread (the workspace's ASGI app: Starlette runs its blocking
service calls through `anyio.to_thread.run_sync`) keeps its attribution there: the recorder wraps
`run_sync`, and work started while a handler frame is on the stack runs attributed to that handler.
Calls outside these (test setup, provisioning, the local Transcribe service's workers) are not
recorded. Calls a test makes directly through a loaded module's other attributes (for example
`module.SERVICE.reconcile()`) are not under a handler frame and are not recorded either.

Besides botocore, the OpenSearch HTTP calls of opensearch-py's requests transport (SigV4-signed, not
botocore) are recorded as service "es", operation "ESHttp<Method>" (the IAM action that authorizes them),
params {"method", "path"}: the path without the query string, never the body (search text, documents).

Each call also keeps the resource names the function's environment named at that moment
(`Names`: table, buckets, topic, key, stage prefix), so the contract tier can map the test's and the
local runtime's resources to the synthesized stack's.

API (the contract tests use these; ask for the `recordings` fixture of tests/contract/conftest.py
first: when the session ran no handler tests it runs them and loads what they recorded):

    recorded_calls(service=None, function=None, operation=None, caller=None) -> list[Call]
        e.g. recorded_calls(service="transcribe", operation="StartTranscriptionJob"); `service` is the
        botocore service name ("transcribe", "bedrock-runtime", "s3"), `operation` the API name.
    Call.function, .caller, .service, .operation, .params (the request parameters as passed, JSON-safe:
        bytes become "<N bytes>", streams "<stream>"), .names (Names), .error (the error code AWS
        answered, None on success), .test (the node id of the test that was running).
    session_tiers() -> the test tiers (tests/<tier>/) this session ran before the contract tier.

The plugin also moves tests/contract to the end of the session (its checks read what the other tiers
recorded) and, when MEDSCRIBE_CONTRACT_RECORD_TO names a file, writes the recorded calls there as
JSON at the end of the session (how the contract tier runs the handler tier in a subprocess).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import anyio.to_thread
import botocore.handlers
import pytest
from opensearchpy.connection import RequestsHttpConnection
from opensearchpy.exceptions import TransportError

from medscribe.settings import ENV, PipelineSettings

RECORD_TO_ENV = "MEDSCRIBE_CONTRACT_RECORD_TO"
CONTRACT_TIER = "contract"
TESTS = Path(__file__).resolve().parents[1]
LAMBDAS = TESTS.parent / "lambdas"
# The local runtime's stand-ins for the AWS services that call with a route's roles
# (medscribe_local.pollers): (class, method) -> caller. Renaming one of these methods silently stops
# recording; test_recorder_sees_every_caller_in_e2e fails then.
TRIGGER_METHODS = {
    ("RoutePoller", "_receive_once"): "event-source-mapping",
    ("RoutePoller", "_extend_visibility"): "event-source-mapping",
    ("RoutePoller", "_delete"): "event-source-mapping",
    ("StreamPump", "_pump"): "pipe",
    ("ScheduleTimer", "_send"): "schedule",
}
POLLERS_FILE = "medscribe_local/pollers.py"
CALLERS = ("handler", *sorted(set(TRIGGER_METHODS.values())))
_CONTEXT_KEY = "medscribe_contract_call"
# The handler (function, caller) a worker thread's work was started under (see the module docstring).
_inherited: ContextVar[tuple[str, str] | None] = ContextVar("medscribe_contract_inherited", default=None)


@dataclass(frozen=True)
class Names:
    """The resource names the function's environment gave at the time of a call."""

    table: str | None
    input_bucket: str | None
    artifacts_bucket: str | None
    topic_arn: str | None
    kms_key_arn: str | None
    clm_role_arn: str | None
    prefix: str | None  # PipelineSettings.prefix: job, vocabulary, queue and function names start with it


@dataclass
class Call:
    function: str
    caller: str
    service: str
    operation: str
    params: dict[str, Any]
    names: Names
    test: str | None
    error: str | None = field(default=None)


_calls: list[Call] = []
_lock = threading.Lock()
_state: dict[str, Any] = {"test": None, "tiers": frozenset()}
_function_of_code: dict[CodeType, str | None] = {}
_names_cache: dict[tuple[str | None, ...], Names] = {}
_prefix_cache: dict[str, str | None] = {}


def recorded_calls(
    service: str | None = None, function: str | None = None, operation: str | None = None, caller: str | None = None
) -> list[Call]:
    """The calls recorded so far that match every filter given."""
    with _lock:
        calls = list(_calls)
    return [
        call for call in calls
        if (service is None or call.service == service) and (function is None or call.function == function)
        and (operation is None or call.operation == operation) and (caller is None or call.caller == caller)
    ]


def session_tiers() -> frozenset[str]:
    """The tiers (tests/<tier>/) collected into this session ahead of the contract tier."""
    return frozenset(_state["tiers"])


def load(path: Path) -> list[Call]:
    """Add the calls another session wrote to `path` (see RECORD_TO_ENV) to this session's record."""
    loaded = [
        Call(**{**entry, "names": Names(**entry["names"])})
        for entry in json.loads(path.read_text(encoding="utf-8"))
    ]
    with _lock:
        _calls.extend(loaded)
    return loaded


def dump(path: Path) -> None:
    with _lock:
        calls = list(_calls)
    path.write_text(json.dumps([asdict(call) for call in calls]), encoding="utf-8")


# --- attribution --------------------------------------------------------------------------------


def _handler_function(code: CodeType) -> str | None:
    """`lambdas/<name>/handler.py` -> name (cached per code object: this runs on every call)."""
    try:
        return _function_of_code[code]
    except KeyError:
        path = Path(code.co_filename)
        name = path.parent.name if path.name == "handler.py" and path.parent.parent == LAMBDAS else None
        _function_of_code[code] = name
        return name


def attribution(frame: FrameType | None) -> tuple[str, str] | None:
    """(function, caller) of the innermost handler or trigger frame on the stack, else None."""
    while frame is not None:
        code = frame.f_code
        function = _handler_function(code)
        if function is not None:
            return function, "handler"
        if code.co_filename.endswith(POLLERS_FILE):
            owner = frame.f_locals.get("self")
            caller = TRIGGER_METHODS.get((type(owner).__name__, code.co_name))
            if caller is not None:
                return str(owner.route.name), caller  # type: ignore[union-attr]
        frame = frame.f_back
    return None


def _names() -> Names:
    environ = os.environ
    raw = tuple(environ.get(name) for name in (
        ENV.TABLE, ENV.INPUT_BUCKET, ENV.ARTIFACTS_BUCKET, ENV.TOPIC_ARN, ENV.KMS_KEY_ARN, ENV.CLM_ROLE_ARN,
        ENV.SETTINGS,
    ))
    names = _names_cache.get(raw)
    if names is None:
        names = _names_cache[raw] = Names(*raw[:6], prefix=_prefix(raw[6]))
    return names


def _prefix(settings_json: str | None) -> str | None:
    if settings_json is None:
        return None
    if settings_json not in _prefix_cache:
        _prefix_cache[settings_json] = PipelineSettings.model_validate_json(settings_json).prefix
    return _prefix_cache[settings_json]


def json_safe(value: Any) -> Any:
    """Request parameters as JSON: bodies are replaced by their size, dates by ISO text."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "read"):
        return "<stream>"
    return repr(value)


# --- botocore hooks (registered on every client made after pytest starts) ---------------------


def _attributed(frame: FrameType | None) -> tuple[str, str] | None:
    return attribution(frame) or _inherited.get()


def _record(attributed: tuple[str, str], service: str, operation: str, params: dict[str, Any]) -> Call:
    function, caller = attributed
    call = Call(function=function, caller=caller, service=service, operation=operation, params=json_safe(params),
                names=_names(), test=_state["test"])
    with _lock:
        _calls.append(call)
    return call


def _before_parameter_build(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    attributed = _attributed(sys._getframe(1))
    if attributed is not None:
        context[_CONTEXT_KEY] = _record(attributed, model.service_model.service_name, model.name, params)


def _after_call(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    call = context.get(_CONTEXT_KEY)
    if call is not None:
        error = parsed.get("Error", {}).get("Code")
        call.error = str(error) if error else None


HOOKS = (("before-parameter-build", _before_parameter_build), ("after-call", _after_call))


_original_run_sync = anyio.to_thread.run_sync
_original_perform_request = RequestsHttpConnection.perform_request


async def _run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """anyio's run_sync, with the caller's handler attribution carried into the worker thread."""
    attributed = _attributed(sys._getframe(1))
    if attributed is None:
        return await _original_run_sync(func, *args, **kwargs)

    def attributed_func(*func_args: Any) -> Any:
        token = _inherited.set(attributed)
        try:
            return func(*func_args)
        finally:
            _inherited.reset(token)

    return await _original_run_sync(attributed_func, *args, **kwargs)


def _perform_request(self: RequestsHttpConnection, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
    attributed = _attributed(sys._getframe(1))
    call = None if attributed is None else _record(
        attributed, "es", f"ESHttp{method.capitalize()}", {"method": method, "path": url.split("?", 1)[0]})
    try:
        return _original_perform_request(self, method, url, *args, **kwargs)
    except TransportError as exc:
        if call is not None:
            call.error = str(exc.status_code)
        raise


def install() -> None:
    """Every botocore session made from now on registers the hooks (as moto registers its own); anyio's
    worker threads carry a handler's attribution; opensearch-py's requests transport is recorded."""
    for hook in HOOKS:
        if hook not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(hook)
    anyio.to_thread.run_sync = _run_sync  # type: ignore[assignment]
    RequestsHttpConnection.perform_request = _perform_request  # type: ignore[method-assign]


# --- pytest hooks -------------------------------------------------------------------------------


def tier_of(item: pytest.Item) -> str | None:
    try:
        return item.path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The contract tier runs last: its checks read what the handler and e2e tiers recorded."""
    contract = [item for item in items if tier_of(item) == CONTRACT_TIER]
    others = [item for item in items if tier_of(item) != CONTRACT_TIER]
    items[:] = others + contract
    _state["tiers"] = frozenset(tier for item in others if (tier := tier_of(item)) is not None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _state["test"] = item.nodeid
    try:
        return (yield)
    finally:
        _state["test"] = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(RECORD_TO_ENV)
    if target:
        dump(Path(target))
