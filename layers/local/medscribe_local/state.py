"""The local runtime's state folder and the record of a running runtime.

Layout (default `.medscribe/` in the current directory; override with MEDSCRIBE_STATE_DIR):
  runtime.json   written once the runtime is ready (pid, endpoint, resource names); removed on stop
  logs/          runtime.log: handler (Powertools JSON) and runtime logs
  outbox/        one .eml file per notification published to the topic
  runs/          one folder per `medscribe local run` with its results.json
"""

from __future__ import annotations

import contextlib
import http.client
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from medscribe.settings import FunctionSettings, PipelineSettings

STATE_ENV = "MEDSCRIBE_STATE_DIR"


class RouteResources(BaseModel):
    """What the emulator holds for one route: its queue, dead-letter queue and function name."""

    name: str
    function_name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    max_concurrency: int


class Resources(BaseModel):
    """Every resource the runtime provisioned in the emulator."""

    region: str
    account_id: str
    kms_key_arn: str
    input_bucket: str
    artifacts_bucket: str
    table: str
    topic_arn: str
    outbox_queue_url: str
    routes: dict[str, RouteResources]

    def function_settings(self, pipeline: PipelineSettings, search_url: str | None = None) -> FunctionSettings:
        """What the runtime's handlers read from their environment, with `pipeline`: how a command in
        another process (the CLI) builds a handler's service through medscribe.services.wiring."""
        return FunctionSettings(table_name=self.table, input_bucket=self.input_bucket,
                                artifacts_bucket=self.artifacts_bucket, topic_arn=self.topic_arn,
                                kms_key_arn=self.kms_key_arn, pipeline=pipeline, search_url=search_url)


class RuntimeInfo(BaseModel):
    """The content of runtime.json."""

    pid: int
    endpoint: str
    state_dir: str
    started_at: str
    resources: Resources
    transcribe_endpoint: str | None = None  # the local Transcribe service (medscribe erase deletes jobs there)


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @classmethod
    def resolve(cls) -> StatePaths:
        configured = os.environ.get(STATE_ENV)
        return cls((Path(configured) if configured else Path.cwd() / ".medscribe").resolve())

    @property
    def runtime_file(self) -> Path:
        return self.root / "runtime.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "runtime.log"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def search_db(self) -> Path:
        return self.root / "search.db"

    def reset_search_index(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            self.search_db.with_name(self.search_db.name + suffix).unlink(missing_ok=True)

    def ensure(self) -> StatePaths:
        for folder in (self.root, self.logs, self.outbox, self.runs):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def write_atomically(path: Path, text: str) -> None:
    """Readers never see a half-written file: write beside it, then rename over it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def read_runtime(paths: StatePaths) -> RuntimeInfo | None:
    try:
        return RuntimeInfo.model_validate_json(paths.runtime_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValidationError):
        return None


def write_runtime(paths: StatePaths, info: RuntimeInfo) -> None:
    write_atomically(paths.runtime_file, info.model_dump_json(indent=2))


def remove_runtime(paths: StatePaths, pid: int | None = None) -> None:
    """Remove runtime.json; with `pid`, only when it still describes that process."""
    info = read_runtime(paths)
    if pid is not None and info is not None and info.pid != pid:
        return
    paths.runtime_file.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited child nobody has reaped yet still answers kill(0): treat a zombie as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    return True


def endpoint_answers(endpoint: str, timeout: float = 3.0) -> bool:
    parts = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", "/moto-api/")
        connection.getresponse().read()
    except OSError:
        return False
    finally:
        connection.close()
    return True


def owns_process(info: RuntimeInfo) -> bool:
    """Whether runtime.json's pid is still the runtime (not a reused pid): its endpoint answers, or
    (a runtime too busy or hung to answer) its command line is medscribe's."""
    if not pid_alive(info.pid):
        return False
    if endpoint_answers(info.endpoint):
        return True
    try:
        return b"medscribe" in Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return False


def running_runtime(paths: StatePaths) -> RuntimeInfo | None:
    """The runtime recorded in the state folder, if its process is alive and its endpoint answers."""
    info = read_runtime(paths)
    if info is None or not pid_alive(info.pid) or not endpoint_answers(info.endpoint):
        return None
    return info
