"""Run the local runtime as a background process (`medscribe local up`) and stop it (`local down`).

The daemon is `python -m medscribe_local local serve` in its own session, with stdout and stderr appended
to the runtime log. It writes runtime.json once it is ready and removes it when it stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from medscribe_local.state import STATE_ENV, RuntimeInfo, StatePaths, pid_alive, read_runtime, remove_runtime

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.1


class DaemonError(RuntimeError):
    pass


def start_daemon(paths: StatePaths, timeout: float = START_TIMEOUT_SECONDS) -> RuntimeInfo:
    paths.ensure()
    remove_runtime(paths)  # a leftover from a runtime that did not stop cleanly
    with paths.log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "medscribe_local", "local", "serve"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, STATE_ENV: str(paths.root)}, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_runtime(paths)
        if info is not None and info.pid == process.pid:
            return info
        code = process.poll()
        if code is not None:
            raise DaemonError(f"the runtime exited during start (code {code}); see {paths.log_file}")
        time.sleep(POLL_SECONDS)
    process.terminate()
    raise DaemonError(f"the runtime was not ready after {timeout:.0f} s; see {paths.log_file}")


def stop_daemon(paths: StatePaths, info: RuntimeInfo, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """SIGTERM the runtime and wait for it to exit; SIGKILL if it does not. True if it stopped cleanly."""
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        remove_runtime(paths, info.pid)
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(info.pid):
            remove_runtime(paths, info.pid)
            return True
        time.sleep(POLL_SECONDS)
    os.kill(info.pid, signal.SIGKILL)
    remove_runtime(paths, info.pid)
    return False

