"""The local runtime: emulator + provisioned resources + one poller per route + DLQ alarms + outbox.

Runs in the calling process (tests, benchmarks, `medscribe local serve`). While it runs, this
process's boto3 clients and handler environment point at the emulator; `stop()` restores both.
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
from medscribe.local.alarms import DlqAlarms
from medscribe.local.emulator import Emulator
from medscribe.local.environment import connect, patch_environ
from medscribe.local.logs import RuntimeLog
from medscribe.local.outbox import Outbox
from medscribe.local.pollers import SERVICE_NAME_ENV, RoutePoller, RouteStats
from medscribe.local.provision import provision
from medscribe.local.state import Resources, RuntimeInfo, StatePaths, remove_runtime, write_runtime
from medscribe.routes import ROUTES
from medscribe.settings import PipelineSettings, function_env, function_settings, load_settings, project_root

log = logging.getLogger("medscribe.local")


class _Stoppable(Protocol):
    def signal_stop(self) -> None: ...
    def join(self) -> None: ...


def handler_environment(resources: Resources, settings: PipelineSettings) -> dict[str, str | None]:
    """What every handler runs with: the stack's function environment plus local Powertools switches."""
    return {
        **function_env(
            table=resources.table, input_bucket=resources.input_bucket,
            artifacts_bucket=resources.artifacts_bucket, topic_arn=resources.topic_arn,
            kms_key_arn=resources.kms_key_arn, settings=settings,
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "medscribe",
        SERVICE_NAME_ENV: "medscribe",  # each route sets its own before loading its handler
    }


class LocalRuntime:
    def __init__(self, paths: StatePaths, settings: PipelineSettings | None = None) -> None:
        self.paths = paths
        self.settings = settings or load_settings()
        self.log = RuntimeLog(paths.log_file)
        self.emulator = Emulator()
        self.pollers: dict[str, RoutePoller] = {}
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
        self._restore.append(patch_environ(handler_environment(resources, self.settings)))
        function_settings.cache_clear()  # handlers read their settings once per process
        root = project_root()
        for route in ROUTES:
            poller = RoutePoller(route, resources, self.settings, root)
            poller.prewarm()
            self.pollers[route.name] = poller
        self._alarms = DlqAlarms(resources, resources.routes.values())
        self._outbox = Outbox(resources.outbox_queue_url, self.paths.outbox, self.settings.notification_email)
        for poller in self.pollers.values():
            poller.start()
        self._alarms.loop.start()
        self._outbox.loop.start()
        self._info = RuntimeInfo(
            pid=os.getpid(), endpoint=endpoint, state_dir=str(self.paths.root), started_at=utc_now(),
            resources=resources,
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
        loops: list[_Stoppable] = [*self.pollers.values()]
        loops += [worker.loop for worker in (self._alarms, self._outbox) if worker is not None]
        for loop in loops:
            loop.signal_stop()
        for loop in loops:
            loop.join()
        for name, stats in self.stats().items():
            log.info("route %s stats: %s", name, stats.as_dict())
        self.pollers.clear()
        self._alarms = self._outbox = None
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
            pass
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
