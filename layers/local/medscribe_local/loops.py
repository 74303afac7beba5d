"""A background thread that repeats one step until told to stop (pollers, alarm monitor, outbox)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("medscribe_local")

ERROR_PAUSE_SECONDS = 0.5


class BackgroundLoop:
    """Calls `step` repeatedly on a daemon thread. A failing step is logged (type only, no payloads)
    and retried after a short pause, so one bad response never stops a poller."""

    def __init__(self, name: str, step: Callable[[], None], pause_seconds: float = 0.0) -> None:
        self.name = name
        self._step = step
        self._pause = pause_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"medscribe-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:
                log.warning("%s: step failed with %s; retrying", self.name, type(exc).__name__)
                self._stop.wait(ERROR_PAUSE_SECONDS)
                continue
            if self._pause:
                self._stop.wait(self._pause)
