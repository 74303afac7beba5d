"""Keep pipeline output in `<state>/logs/runtime.log`, away from the terminal.

Handlers write Powertools JSON logs and EMF metrics to stdout, as they do in Lambda. While a
runtime runs in this process, `sys.stdout`/`sys.stderr` route writes by thread: the thread that
started the runtime (the CLI, a test, a benchmark) keeps its terminal; every other thread
(handler invocations, pollers, the emulator) writes to the log file. The routers are process-wide
singletons, so a Powertools logger that captured `sys.stdout` during one runtime follows the next.
(Something that replaces `sys.stdout` while the runtime runs, such as pytest's capture between
test phases, takes the EMF metric lines; the Powertools log lines still reach the log.)
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from pathlib import Path
from typing import TextIO


class _ThreadRouter(io.TextIOBase):
    def __init__(self, passthrough: TextIO) -> None:
        super().__init__()
        self._passthrough = passthrough
        self._log: TextIO | None = None
        self._owner: int | None = None

    def route(self, passthrough: TextIO, log: TextIO, owner: int) -> None:
        self._passthrough, self._log, self._owner = passthrough, log, owner

    def stop_routing(self) -> None:
        self._log = self._owner = None

    @property
    def _target(self) -> TextIO:
        if self._log is None or threading.get_ident() == self._owner:
            return self._passthrough
        return self._log

    @property
    def passthrough(self) -> TextIO:
        return self._passthrough

    def write(self, text: str) -> int:
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._passthrough, "encoding", None) or "utf-8"


_routers: dict[str, _ThreadRouter] = {}
_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _router(name: str) -> _ThreadRouter:
    current: TextIO = getattr(sys, name)
    if name not in _routers:
        _routers[name] = _ThreadRouter(current)
    return _routers[name]


class RuntimeLog:
    """Open the log file, route other threads' stdout/stderr into it, and log `medscribe_local` there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._handler: logging.Handler | None = None
        self._saved: dict[str, TextIO] = {}

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        owner = threading.get_ident()
        for name in ("stdout", "stderr"):
            current: object = getattr(sys, name)
            router = _router(name)
            self._saved[name] = router.passthrough if current is router else getattr(sys, name)
            router.route(self._saved[name], self._file, owner)
            setattr(sys, name, router)
        # Powertools loggers made before this runtime (e.g. by an earlier import) hold the stdout of
        # that moment: point them at the router too. Later ones pick the router up from sys.stdout.
        for logger in list(logging.Logger.manager.loggerDict.values()):
            handler = getattr(logger, "powertools_handler", None)
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.setStream(_routers["stdout"])
        self._handler = logging.StreamHandler(self._file)
        self._handler.setFormatter(logging.Formatter(_FORMAT))
        for name in ("medscribe_local", "werkzeug"):
            logger = logging.getLogger(name)
            logger.addHandler(self._handler)
            logger.propagate = False
        logging.getLogger("medscribe_local").setLevel(logging.INFO)

    def close(self) -> None:
        if self._file is None:
            return
        for name in ("medscribe_local", "werkzeug"):
            logger = logging.getLogger(name)
            logger.removeHandler(self._handler)  # type: ignore[arg-type]
            logger.propagate = True
        for name, stream in self._saved.items():
            router = _routers[name]
            router.stop_routing()
            current: object = getattr(sys, name)
            if current is router:
                setattr(sys, name, stream)
        self._file.close()
        self._file = None
