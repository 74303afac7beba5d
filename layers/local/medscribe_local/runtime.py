"""The local runtime: emulator + provisioned resources + local Transcribe service + one poller per
route + schedule timers + DLQ alarms + outbox.

Runs in the calling process (tests, benchmarks, `medscribe local serve`). While it runs, this
process's boto3 clients and handler environment point at the emulator (Transcribe clients at the
local Transcribe service, `runtime.transcribe`); `stop()` restores both.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from medscribe.domain.encounter import utc_now
from medscribe.routes import ROUTES, ScheduleTrigger, StreamTrigger
from medscribe.services.wiring import SQLITE_URL_PREFIX
from medscribe.settings import PipelineSettings, function_env, function_settings, load_settings, project_root
from medscribe_local import diarization
from medscribe_local.alarms import DlqAlarms
from medscribe_local.emulator import Emulator
from medscribe_local.environment import BEDROCK_ENDPOINT_ENV, connect, is_loopback, patch_environ, route_transcribe
from medscribe_local.logs import RuntimeLog
from medscribe_local.outbox import Outbox
from medscribe_local.pollers import SERVICE_NAME_ENV, RoutePoller, RouteStats, ScheduleTimer, StreamPump
from medscribe_local.provision import provision
from medscribe_local.state import Resources, RuntimeInfo, StatePaths, remove_runtime, write_runtime
from medscribe_local.transcribe_service import DEFAULT_WORKERS, SpeakerDiarizer, TranscribeService
from medscribe_local.whisper_engine import Recognizer, WhisperRecognizer

log = logging.getLogger("medscribe_local")


class _Stoppable(Protocol):
    def signal_stop(self) -> None: ...
    def join(self) -> None: ...


def local_function_settings(settings: PipelineSettings) -> PipelineSettings:
    """The settings handlers see locally: the `local_*` timings replace their AWS counterparts, no
    custom language model is trained (the local speech engine has none; its vocabulary is hot words),
    and the engines are the local ones: the note engine of `local_note_engine`, the offline
    keyword heuristic and the offline entity extractor unless entities are off (Amazon Comprehend
    Medical is not emulated)."""
    return settings.updated(
        stuck_after_seconds=settings.local_stuck_after_seconds, selfheal_language_model=False,
        note_engine=local_note_engine(settings), keyword_engine="offline",
        entity_engine="off" if settings.entity_engine == "off" else "offline",
    )


def local_note_engine(settings: PipelineSettings) -> str:
    """The OpenAI-compatible endpoint when the settings name one (`openai_base_url`); Bedrock when a
    Converse endpoint is named on this machine (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, e.g. the strict
    local one, medscribe_local.converse_endpoint); else the offline engine."""
    if settings.openai_base_url:
        return "openai"
    return "bedrock" if is_loopback(os.environ.get(BEDROCK_ENDPOINT_ENV) or "") else "offline"


def search_url(paths: StatePaths) -> str:
    """The local search index: SQLite FTS5 in the state folder."""
    return f"{SQLITE_URL_PREFIX}{paths.search_db}"


def handler_environment(resources: Resources, settings: PipelineSettings,
                        search: str | None = None) -> dict[str, str | None]:
    """What every handler runs with: the stack's function environment (with the local settings, engines
    included) plus Powertools switches."""
    return {
        **function_env(
            table=resources.table, input_bucket=resources.input_bucket,
            artifacts_bucket=resources.artifacts_bucket, topic_arn=resources.topic_arn,
            kms_key_arn=resources.kms_key_arn, settings=local_function_settings(settings), search_url=search,
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "medscribe",
        SERVICE_NAME_ENV: "medscribe",  # each route sets its own before loading its handler
    }


class LocalRuntime:
    """`recognizer` replaces the Whisper engine behind the local Transcribe service (tests); `diarizer`
    numbers the speakers of mono recordings (default: diarization.Diarizer with the real engine when the
    diarization extra is installed, none with a replaced recognizer unless one is given)."""

    def __init__(
        self, paths: StatePaths, settings: PipelineSettings | None = None, recognizer: Recognizer | None = None,
        transcribe_workers: int = DEFAULT_WORKERS, diarizer: SpeakerDiarizer | None = None,
    ) -> None:
        self.paths = paths
        self.settings = settings or load_settings()
        self.log = RuntimeLog(paths.log_file)
        self.emulator = Emulator()
        self.recognizer = recognizer or WhisperRecognizer(workers=transcribe_workers)
        if diarizer is None and recognizer is None and diarization.available():
            diarizer = diarization.Diarizer()
        elif diarizer is None and recognizer is None:
            log.info("mono recordings stay one speaker: the diarization extra (resemblyzer, torch) is not installed")
        self.diarizer = diarizer
        self.transcribe_workers = transcribe_workers
        self._transcribe: TranscribeService | None = None
        self.pollers: dict[str, RoutePoller] = {}
        self.timers: dict[str, ScheduleTimer] = {}
        self.pumps: dict[str, StreamPump] = {}
        self._resources: Resources | None = None
        self._alarms: DlqAlarms | None = None
        self._outbox: Outbox | None = None
        self._restore: list[Callable[[], None]] = []
        self._info: RuntimeInfo | None = None

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            raise RuntimeError("the runtime is not running")
        return self._resources

    @property
    def transcribe(self) -> TranscribeService:
        """The local Transcribe service (its fault hooks: drop_completion_events, throttle_starts)."""
        if self._transcribe is None:
            raise RuntimeError("the runtime is not running")
        return self._transcribe

    @property
    def info(self) -> RuntimeInfo:
        if self._info is None:
            raise RuntimeError("the runtime is not running")
        return self._info

    def start(self) -> RuntimeInfo:
        self.paths.ensure()
        self.log.open()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> RuntimeInfo:
        endpoint = self.emulator.start()
        self._restore.append(connect(endpoint))
        resources = self._resources = provision(self.settings, ROUTES)
        self._transcribe = TranscribeService(
            self.paths.root / "transcribe", self.recognizer, self.settings, account_id=resources.account_id,
            region=resources.region, workers=self.transcribe_workers, diarizer=self.diarizer,
        )
        self._restore.append(route_transcribe(self._transcribe.start()))
        self.paths.reset_search_index()  # the index mirrors this runtime's table, which starts empty
        self._restore.append(patch_environ(handler_environment(resources, self.settings, search_url(self.paths))))
        function_settings.cache_clear()  # handlers read their settings once per process
        root = project_root()
        for route in ROUTES:
            poller = RoutePoller(route, resources, self.settings, root)
            poller.prewarm()
            self.pollers[route.name] = poller
            if isinstance(route.trigger, ScheduleTrigger):
                self.timers[route.name] = ScheduleTimer(route, resources, self.settings)
            if isinstance(route.trigger, StreamTrigger):
                self.pumps[route.name] = StreamPump(route, resources)
        self._alarms = DlqAlarms(resources, resources.routes.values())
        self._outbox = Outbox(resources.outbox_queue_url, self.paths.outbox, self.settings.notification_email)
        for poller in self.pollers.values():
            poller.start()
        for timer in self.timers.values():
            timer.loop.start()
        for pump in self.pumps.values():
            pump.loop.start()
        self._alarms.loop.start()
        self._outbox.loop.start()
        self._info = RuntimeInfo(
            pid=os.getpid(), endpoint=endpoint, state_dir=str(self.paths.root), started_at=utc_now(),
            resources=resources, transcribe_endpoint=self._transcribe.endpoint,
        )
        write_runtime(self.paths, self._info)
        log.info(
            "runtime ready: endpoint %s, routes %s, state %s", endpoint, ", ".join(self.pollers), self.paths.root,
        )
        return self._info

    def stats(self) -> dict[str, RouteStats]:
        return {name: poller.stats() for name, poller in self.pollers.items()}

    def stop(self) -> None:
        # Signal everything first, then wait: the loops wind down in parallel.
        loops: list[_Stoppable] = [*self.pollers.values(), *(timer.loop for timer in self.timers.values()),
                                   *(pump.loop for pump in self.pumps.values())]
        loops += [worker.loop for worker in (self._alarms, self._outbox) if worker is not None]
        for loop in loops:
            loop.signal_stop()
        for loop in loops:
            loop.join()
        for name, stats in self.stats().items():
            log.info("route %s stats: %s", name, stats.as_dict())
        self.pollers.clear()
        self.timers.clear()
        self.pumps.clear()
        self._alarms = self._outbox = None
        if self._transcribe is not None:  # before the emulator: running jobs still write to it
            self._transcribe.stop()
            self._transcribe = None
        self.emulator.stop()
        while self._restore:
            self._restore.pop()()
        function_settings.cache_clear()
        if self._info is not None:
            remove_runtime(self.paths, self._info.pid)
        self._info = self._resources = None
        log.info("runtime stopped")
        self.log.close()

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(paths: StatePaths, on_ready: Callable[[RuntimeInfo], None] | None = None) -> None:
    """Run a runtime in this process until SIGTERM or Ctrl-C (`medscribe local serve` / `up --foreground`)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    runtime = LocalRuntime(paths)
    info = runtime.start()
    try:
        if on_ready is not None:
            on_ready(info)
        while not stop.wait(0.5):
            if not paths.runtime_file.is_file():  # the state folder was removed: nothing can find us
                log.warning("runtime.json is gone (state folder %s removed?): stopping", paths.root)
                break
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
