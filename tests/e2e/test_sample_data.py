"""sample-data end to end, as a user runs it, in one local runtime: `make demo`, the README's first
command, literally (in CI the venv is already installed, so it goes straight to `medscribe demo`,
which runs `local run sample-data`, waits for scoring and runs one self-heal cycle):

- search: `medscribe search` finds every transcribed or documented encounter by a phrase of its
  transcript and by a term of its note (English and Korean, the Korean recording too), through the
  DynamoDB stream -> index queue -> index handler -> SQLite FTS5;
- languages: the Korean recording (audio/ko-KR/) is transcribed in Korean under the en-US setting;
- scoring: the three recordings with ground truth are scored against their ground truth, and the emails carry numbers;
- self-heal: the demo's cycle leaves the baseline and one candidate on `medscribe leaderboard` with
  their measured error rates — whether or not the candidate is better;
- the demo's report opens in headless Chromium without a script error or CSP violation, with the
  accuracy table and the leaderboard chart."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from medscribe.settings import project_root
from medscribe_local.state import StatePaths, read_runtime
from tests.e2e.test_cli import medscribe

pytestmark = pytest.mark.e2e

SAMPLE_DATA = project_root() / "sample-data"


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text) if len(w) >= 3 and not w.isdigit()]


def _phrase(text: str) -> str:
    """Three consecutive words of the longest line (a phrase a user would remember)."""
    line = max(text.splitlines(), key=lambda x: len(_words(x)))
    return " ".join(_words(line)[:3])


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _values(item)]
    if isinstance(value, list):
        return [text for item in value for text in _values(item)]
    return []


def _note_term(note: dict[str, Any]) -> str:
    """The longest word of the note: a clinical note's claims, or an EMR record's values."""
    claims = [item["text"] for section in note.get("sections", []) for item in section["items"]]
    return max(_words(" ".join(claims or _values(note.get("record", {})))), key=len)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp_path = tmp_path_factory.mktemp("search")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MEDSCRIBE_STATE_DIR=str(state), COLUMNS="200")
    try:
        run = subprocess.run(["make", "--no-print-directory", "demo"], cwd=project_root(), env=env,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "report" in run.stdout
        info = read_runtime(StatePaths(state))
        assert info is not None
        [results_file] = (state / "runs").glob("*/results.json")
        results = json.loads(results_file.read_text())
        s3 = boto3.client("s3", endpoint_url=info.endpoint, region_name=info.resources.region,
                          aws_access_key_id="local", aws_secret_access_key="local")
        texts = {}
        for row in results["encounters"]:
            if row["kind"] not in ("audio", "text"):
                continue
            record = json.loads(medscribe("show", row["encounter_id"], "--json", cwd=tmp_path, env=env).stdout)

            def artifact(key: str) -> dict[str, Any]:
                return dict(json.loads(s3.get_object(Bucket=info.resources.artifacts_bucket, Key=key)["Body"].read()))

            if row["kind"] == "audio":
                transcript = "\n".join(line["text"] for line in artifact(record["transcript_key"])["lines"])
            else:
                transcript = (SAMPLE_DATA / row["source_key"]).read_text(encoding="utf-8")
            texts[row["encounter_id"]] = (row["source_key"], transcript, artifact(record["note_key"]))
        yield tmp_path, env, texts, state
    finally:
        medscribe("local", "down", cwd=tmp_path, env=env)


def _found(tmp_path: Path, env: dict[str, str], text: str, *extra: str) -> list[str]:
    result = medscribe("search", text, "--json", "--limit", "50", *extra, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return [hit["encounter_id"] for hit in json.loads(result.stdout)["hits"]]


def test_every_sample_encounter_is_found_by_transcript_phrase_and_note_term(sample_run) -> None:  # type: ignore[no-untyped-def]
    tmp_path, env, texts, _state = sample_run
    kinds = {source.split("/")[0] for source, _, _ in texts.values()}
    assert kinds == {"audio", "text"}
    assert len(texts) == 12  # 4 recordings (3 English with ground truth, 1 Korean), 8 notes (4 English, 4 Korean)
    for encounter_id, (source, transcript, note) in texts.items():
        phrase = _phrase(transcript)
        assert encounter_id in _found(tmp_path, env, phrase), (source, phrase)
        term = _note_term(note)
        assert encounter_id in _found(tmp_path, env, term), (source, term)


def test_korean_query_finds_only_korean_notes_and_filters_apply(sample_run) -> None:  # type: ignore[no-untyped-def]
    tmp_path, env, texts, _state = sample_run
    korean = {i for i, (source, _, _) in texts.items() if source.startswith("text/ko-")}
    hits = _found(tmp_path, env, "진료")  # "medical care": in every Korean sample note's header
    assert set(hits) == korean
    assert _found(tmp_path, env, "진료", "--status", "FAILED") == []
    assert _found(tmp_path, env, "진료", "--since", "2999-01-01") == []
    table = medscribe("search", "무릎 통증", cwd=tmp_path, env=env)
    assert table.returncode == 0
    assert "[무릎]" in table.stdout  # a snippet with the match marked
    nothing = medscribe("search", "zzzyyyxxx", cwd=tmp_path, env=env)
    assert "no encounter matches" in nothing.stdout


def _leaderboard(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    result = medscribe("leaderboard", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_recordings_are_scored_against_ground_truth_and_emailed(sample_run) -> None:  # type: ignore[no-untyped-def]
    tmp_path, env, texts, state = sample_run
    board = _leaderboard(tmp_path, env)
    # the recordings with ground truth (the Korean one, audio/ko-KR/, has none: it is not scored)
    audio = {i for i, (source, _, _) in texts.items() if source.startswith("audio/fareez/")}
    baseline = [row for row in board["scores"] if row["model"] == "baseline"]
    assert {row["encounter_id"] for row in baseline} == audio
    assert all(0 < row["error_rate"] < 0.6 for row in baseline)
    emails = [p.read_text(encoding="utf-8") for p in (state / "outbox").glob("*.eml")]
    scored = [e for e in emails if "medscribe scores:" in e]
    assert scored
    truths = [(SAMPLE_DATA / "ground-truth" / "fareez" / f"{name}.txt").read_text(encoding="utf-8")
              for name in ("CAR0003", "GAS0001", "RES0006")]
    for email in scored:
        for truth in truths:
            assert _phrase(truth) not in email  # ids and numbers, never the words
        assert "fareez/" not in email  # nor the uploader's keys


def test_one_selfheal_cycle_and_the_leaderboard(sample_run) -> None:  # type: ignore[no-untyped-def]
    tmp_path, env, _texts, _state = sample_run
    board = _leaderboard(tmp_path, env)
    models = {row["model"]: row for row in board["leaderboard"]}
    assert "baseline" in models
    candidates = [name for name in models if name != "baseline"]
    assert len(candidates) == 1, board
    (candidate,) = candidates
    assert models[candidate]["files"] == models["baseline"]["files"] == 3
    assert models[candidate]["status"] in ("ACTIVE", "CANDIDATE")
    # promoted exactly when it beat the baseline by the margin (0.01)
    better = models["baseline"]["mean_error_rate"] - models[candidate]["mean_error_rate"] >= 0.01
    assert (models[candidate]["status"] == "ACTIVE") == better
    assert board["active"] == (candidate if better else "baseline")
    print(f"\nself-heal on sample-data: baseline {models['baseline']['mean_error_rate']:.2%}, "
          f"{candidate} {models[candidate]['mean_error_rate']:.2%} ({models[candidate]['status']})")
    # another cycle now: the same missed words and keywords, so nothing new is built
    again = medscribe("selfheal", "--timeout", "400", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no new candidate" in again.stdout
    assert candidate in again.stdout  # the leaderboard table is printed
    assert len(_leaderboard(tmp_path, env)["leaderboard"]) == 2


def test_the_demo_report_opens_in_chromium_with_scores_and_leaderboard(sample_run) -> None:  # type: ignore[no-untyped-def]
    import re

    from tests.browser.test_review_page import COLLECT_ERRORS, SelfCheck, _digest, chromium, run_chromium
    from tests.browser.test_run_report import REPORT_CHECK

    tmp_path, _env, texts, state = sample_run
    browser = chromium()
    (report,) = [p for p in (state / "runs").glob("*/report.html") if "leaderboard" in p.read_text(encoding="utf-8")]
    page = report.read_text(encoding="utf-8")
    page = re.sub(r"(script-src [^;\"]+)", lambda m: f"{m.group(1)} {_digest(COLLECT_ERRORS)} {_digest(REPORT_CHECK)}",
                  page, count=1)
    page = page.replace("</title>", f"</title>\n<script>{COLLECT_ERRORS}</script>", 1)
    page = page.replace("</body>", f"<script>{REPORT_CHECK}</script>\n</body>", 1)
    checked = report.with_name("report-checked.html")
    checked.write_text(page, encoding="utf-8")
    result = run_chromium(browser, checked, tmp_path / "profile", "--dump-dom")
    verdict = SelfCheck(result.stdout).result
    assert verdict is not None, result.stderr[-2000:]
    assert verdict["data-errors"] == ""
    assert verdict["data-bars"] == "2"  # baseline and the candidate
    assert verdict["data-scores"] == "6"  # 3 recordings x 2 models
    assert int(verdict["data-links"]) == len(texts)  # every transcribed or documented encounter has a page


def test_the_korean_recording_is_transcribed_in_korean_under_the_en_us_setting(sample_run) -> None:  # type: ignore[no-untyped-def]
    _tmp_path, _env, texts, _state = sample_run
    [transcript] = [text for source, text, _ in texts.values() if source.startswith("audio/ko-KR/")]
    letters = re.findall(r"[^\W\d_]", transcript)
    assert len(re.findall(r"[\uac00-\ud7a3]", transcript)) >= 0.9 * len(letters), transcript
