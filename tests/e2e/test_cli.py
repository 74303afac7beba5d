"""The CLI's daemon path, as a user runs it: up, run a folder, status, show, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medscribe_local.state import StatePaths, pid_alive, read_runtime
from tests.e2e.conftest import note
from tests.media import MP3, wav_bytes

pytestmark = pytest.mark.e2e


def medscribe(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medscribe_local", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def test_up_run_status_show_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MEDSCRIBE_STATE_DIR=str(state), COLUMNS="200")
    inputs = tmp_path / "inputs"
    (inputs / "audio").mkdir(parents=True)
    (inputs / "audio" / "morning visit.wav").write_bytes(wav_bytes(1.0))
    (inputs / "call.mp3").write_bytes(MP3)  # not under a prefix: goes to audio/
    (inputs / "notes").mkdir()
    (inputs / "notes" / "note.txt").write_bytes(note(1))  # goes to text/notes/note.txt
    (inputs / "notes" / "empty.txt").write_bytes(b"")
    (inputs / ".DS_Store").write_bytes(b"\0")  # hidden: skipped

    try:
        up = medscribe("local", "up", cwd=tmp_path, env=env)
        assert up.returncode == 0, up.stderr
        info = read_runtime(StatePaths(state))
        assert info is not None
        assert pid_alive(info.pid)
        assert info.endpoint in up.stdout
        assert "already running" in medscribe("local", "up", cwd=tmp_path, env=env).stdout

        run = medscribe("local", "run", str(inputs), "--timeout", "30", cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        [results_file] = (state / "runs").glob("*/results.json")
        results = json.loads(results_file.read_text())
        by_key = {row["source_key"]: row for row in results["encounters"]}
        assert set(by_key) == {
            "audio/morning visit.wav", "audio/call.mp3", "text/notes/note.txt", "text/notes/empty.txt",
        }
        assert results["complete"] is True
        assert by_key["text/notes/empty.txt"]["status"] == "REJECTED"
        assert by_key["text/notes/empty.txt"]["reason"] == "object is empty (0 bytes)"
        assert by_key["audio/call.mp3"]["status"] == "FAILED"  # ID3 header, no real frames
        assert by_key["audio/morning visit.wav"]["status"] == "NEEDS_REVIEW"  # silence: nothing to cite
        assert by_key["text/notes/note.txt"]["status"] in ("DOCUMENTED", "NEEDS_REVIEW")
        assert list((state / "runs").glob("*/report.html"))
        assert all(row["encounter_id"] in run.stdout for row in results["encounters"])

        status = medscribe("status", "--json", cwd=tmp_path, env=env)
        assert status.returncode == 0, status.stderr
        listed = json.loads(status.stdout)
        assert sum(listed["counts"].values()) == 4
        assert listed["counts"]["REJECTED"] == 1
        rejected = json.loads(medscribe("status", "--status", "REJECTED", "--json", cwd=tmp_path, env=env).stdout)
        assert [e["source_key"] for e in rejected["encounters"]] == ["text/notes/empty.txt"]

        encounter_id = by_key["audio/morning visit.wav"]["encounter_id"]
        shown = medscribe("show", encounter_id, "--json", cwd=tmp_path, env=env)
        assert shown.returncode == 0, shown.stderr
        record = json.loads(shown.stdout)
        assert record["encounter_id"] == encounter_id
        assert (record["media_format"], record["duration_seconds"]) == ("wav", 1.0)
        unknown = medscribe("show", "enc-unknown", cwd=tmp_path, env=env)
        assert unknown.returncode == 1
        assert "no encounter" in unknown.stderr
    finally:
        down = medscribe("local", "down", cwd=tmp_path, env=env)

    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert not (state / "runtime.json").exists()
    assert not pid_alive(info.pid)
    after = medscribe("status", cwd=tmp_path, env=env)
    assert after.returncode == 2
    assert "medscribe local up" in after.stderr
    assert "no local runtime is running" in medscribe("local", "down", cwd=tmp_path, env=env).stdout
    log = (state / "logs" / "runtime.log").read_text(encoding="utf-8")
    assert '"message":"ingested"' in log
    assert "morning visit" not in log


def test_local_run_documents_through_a_strict_converse_endpoint(tmp_path: Path) -> None:
    """With AWS_ENDPOINT_URL_BEDROCK_RUNTIME set, the runtime's document stage uses the Bedrock adapter:
    every EMR and note request it makes must pass Bedrock's server-side rules (the strict endpoint
    rejects what Bedrock would)."""
    from medscribe.settings import project_root
    from medscribe_local.converse_endpoint import ConverseEndpoint
    from tests import FIXTURES

    state = tmp_path / "state"
    inputs = tmp_path / "inputs"
    (inputs / "text").mkdir(parents=True)
    for source in sorted((project_root() / "sample-data" / "text").glob("*.txt")):
        (inputs / "text" / source.name).write_bytes(source.read_bytes())
    dialogue = FIXTURES / "dialogues" / "fareez-osce" / "CAR0003.txt"
    (inputs / "text" / "dialogue.txt").write_bytes(dialogue.read_bytes())
    with ConverseEndpoint() as endpoint:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(MEDSCRIBE_STATE_DIR=str(state), COLUMNS="200", AWS_ENDPOINT_URL_BEDROCK_RUNTIME=endpoint.url)
        try:
            run = medscribe("local", "run", str(inputs), "--timeout", "120", cwd=tmp_path, env=env)
            assert run.returncode == 0, run.stdout + run.stderr
            [results_file] = (state / "runs").glob("*/results.json")
            rows = json.loads(results_file.read_text())["encounters"]
            engines = {json.loads(medscribe("show", row["encounter_id"], "--json", cwd=tmp_path, env=env).stdout)
                       .get("note_engine") for row in rows}
        finally:
            medscribe("local", "down", cwd=tmp_path, env=env)
        assert len(rows) == 9
        assert {row["status"] for row in rows} <= {"DOCUMENTED", "NEEDS_REVIEW"}
        assert engines == {"bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0"}
        assert endpoint.rejected == []
        tools = {request["toolConfig"]["toolChoice"]["tool"]["name"] for request in endpoint.requests}
        assert tools == {"record_emr", "write_note", "write_after_visit_summary"}
