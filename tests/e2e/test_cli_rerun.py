"""Running a folder again is not a second set of encounters; a re-run is asked for by id
(`medscribe reprocess`), through the CLI as a user runs it (issue 14, item 7)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import note
from tests.e2e.test_cli import medscribe
from tests.e2e.test_cli_errors import cli_env, one_error_line
from tests.media import wav_bytes

pytestmark = pytest.mark.e2e


def results(state: Path) -> list[dict[str, object]]:
    newest = sorted((state / "runs").glob("*/results.json"))[-1]
    return list(json.loads(newest.read_text())["encounters"])


def test_a_folder_run_twice_is_the_same_encounters_and_reprocess_reruns_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = cli_env(state)
    inputs = tmp_path / "inputs"
    (inputs / "audio").mkdir(parents=True)
    (inputs / "audio" / "visit.wav").write_bytes(wav_bytes(1.0))
    (inputs / "text").mkdir()
    (inputs / "text" / "note.txt").write_bytes(note(1))
    try:
        first = medscribe("local", "run", str(inputs), "--timeout", "60", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        before = {row["source_key"]: row for row in results(state)}
        time.sleep(0.01)  # a new run folder name
        second = medscribe("local", "run", str(inputs), "--timeout", "60", cwd=tmp_path, env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        after = {row["source_key"]: row for row in results(state)}
        assert {k: r["encounter_id"] for k, r in after.items()} == {k: r["encounter_id"] for k, r in before.items()}
        assert {k: r["status"] for k, r in after.items()} == {k: r["status"] for k, r in before.items()}
        listed = json.loads(medscribe("status", "--json", cwd=tmp_path, env=env).stdout)
        assert listed["total"] == 2  # not 4

        unknown = medscribe("reprocess", "enc-unknown", cwd=tmp_path, env=env)
        assert unknown.returncode == 1
        assert "no encounter with id 'enc-unknown'" in one_error_line(unknown.stderr)

        text_id = str(after["text/note.txt"]["encounter_id"])
        shown = json.loads(medscribe("show", text_id, "--json", cwd=tmp_path, env=env).stdout)
        rerun = medscribe("reprocess", text_id, cwd=tmp_path, env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert "run 2 started" in rerun.stdout
        deadline = time.monotonic() + 60
        record = shown
        while time.monotonic() < deadline:
            record = json.loads(medscribe("show", text_id, "--json", cwd=tmp_path, env=env).stdout)
            if record["run"] == 2 and record["status"] in ("DOCUMENTED", "NEEDS_REVIEW"):
                break
            time.sleep(0.5)
        assert record["run"] == 2
        assert record["status"] == shown["status"]
        assert record["updated_at"] > shown["updated_at"]
        assert json.loads(medscribe("status", "--json", cwd=tmp_path, env=env).stdout)["total"] == 2
    finally:
        medscribe("local", "down", cwd=tmp_path, env=env)
