"""CLI failures a user can cause end in one clear line on stderr and a non-zero exit, never a traceback
(issue 14, item 7): a damaged or deleted local search index, a runtime that stopped answering (killed,
or its state folder removed), a line break in a file name."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medscribe_local.state import StatePaths, pid_alive, read_runtime
from tests.e2e.conftest import note
from tests.e2e.test_cli import medscribe

pytestmark = pytest.mark.e2e


def cli_env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MEDSCRIBE_STATE_DIR=str(state), COLUMNS="200")
    return env


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_line_break_in_a_file_name_is_one_error_and_nothing_is_uploaded(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = cli_env(state)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "fine.txt").write_bytes(note(1))
    (inputs / "bad\nname.txt").write_bytes(note(2))
    try:
        run = medscribe("local", "run", str(inputs), "--timeout", "30", cwd=tmp_path, env=env)
    finally:
        medscribe("local", "down", cwd=tmp_path, env=env)
    line = one_error_line(run.stderr)
    assert run.returncode == 2
    assert "bad\\nname.txt" in line
    assert "rename" in line
    assert "nothing was uploaded" in line
    assert not (state / "runs").exists()


def test_a_damaged_index_without_a_runtime_says_how_to_rebuild_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "search.db").write_bytes(b"this is not an SQLite file" * 200)
    result = medscribe("search", "knee", cwd=tmp_path, env=cli_env(state))
    line = one_error_line(result.stderr)
    assert result.returncode == 2
    assert "damaged" in line
    assert "medscribe local up" in line


class _HangUp(http.server.BaseHTTPRequestHandler):
    """Answers the runtime's liveness probe, then drops every API request: a runtime dying mid-command."""

    def do_GET(self) -> None:
        if self.path.startswith("/moto-api"):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.close_connection = True
            self.connection.close()

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _HangUp)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_index_rebuild_runtime_gone_and_state_folder_removed(tmp_path: Path, hanging_endpoint: str) -> None:
    state = tmp_path / "state"
    env = cli_env(state)
    inputs = tmp_path / "inputs" / "text"
    inputs.mkdir(parents=True)
    (inputs / "knee.txt").write_bytes(b"Patient reports right knee pain after a fall; ibuprofen 400 mg.")
    try:
        run = medscribe("local", "run", str(inputs.parent), "--timeout", "60", cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        info = read_runtime(StatePaths(state))
        assert info is not None

        # damaged index, runtime running: rebuilt from the records, the hit is found, one line says so
        db = state / "search.db"
        for sidecar in state.glob("search.db-*"):
            sidecar.unlink()
        db.write_bytes(b"\0garbage" * 4096)
        found = medscribe("search", "knee", "--json", cwd=tmp_path, env=env)
        assert found.returncode == 0, found.stderr
        assert "Traceback" not in found.stderr
        assert "rebuilt it from 1 encounter record(s)" in found.stderr
        assert len(json.loads(found.stdout)["hits"]) == 1
        assert list(state.glob("search.db.damaged-*"))

        # deleted index, runtime running: rebuilt the same way
        db.unlink()
        again = medscribe("search", "knee", "--json", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
        assert "was missing" in again.stderr
        assert len(json.loads(again.stdout)["hits"]) == 1

        # the state folder removed under a running runtime: the runtime notices and stops
        (state / "runtime.json").unlink()
        deadline = time.monotonic() + 30
        while pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_alive(info.pid)
    finally:
        medscribe("local", "down", cwd=tmp_path, env=env)

    # a runtime that stops answering mid-command (its liveness probe still passed): one line, exit 1
    dying = info.model_copy(update={"pid": os.getpid(), "endpoint": hanging_endpoint})
    (state / "runtime.json").write_text(dying.model_dump_json(), encoding="utf-8")
    status = medscribe("status", cwd=tmp_path, env=env, timeout=120)
    line = one_error_line(status.stderr)
    assert status.returncode == 1
    assert "stopped answering" in line
    assert "medscribe local up" in line
