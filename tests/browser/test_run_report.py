"""The run report (what `medscribe demo` writes) in headless Chromium: it renders under its
Content-Security-Policy without a script error or a policy violation, the leaderboard chart has one
bar per model, the accuracy table one row per score, and an encounter label carrying markup stays text.

Same harness as test_review_page.py: a test-only error collector and self-check are added to the page
(with their hashes in its CSP) and the verdict is read from the DOM Chromium dumps."""

from __future__ import annotations

import re
from pathlib import Path

from medscribe.domain.selfheal import BASELINE, ScoreRow, leaderboard
from medscribe.review.page import IndexEntry, render_index_page
from tests.browser.test_review_page import COLLECT_ERRORS, INJECTED, SelfCheck, _digest, chromium, run_chromium

REPORT_CHECK = """
function reportCheck() {
  var out = document.createElement("div");
  out.id = "selfcheck";
  var errors = window.__errors || [];
  out.setAttribute("data-bars", String(document.querySelectorAll("svg.leaderboard rect").length));
  out.setAttribute("data-scores", String(document.querySelectorAll("table.scores tbody tr").length));
  out.setAttribute("data-links", String(document.querySelectorAll("table.encounters a").length));
  out.setAttribute("data-chart-width", String(document.querySelector("svg.leaderboard").getBoundingClientRect().width));
  out.setAttribute("data-pwned", String(window.__pwned === true));
  out.setAttribute("data-errors", errors.join(" | "));
  document.body.appendChild(out);
}
window.addEventListener("load", function () { setTimeout(reportCheck, 100); });
"""


def score(encounter: str, model: str, rate: float) -> ScoreRow:
    return ScoreRow(encounter_id=encounter, model=model, metric="wer", error_rate=rate, wer=rate, mer=rate,
                    substitutions=4, deletions=2, insertions=1, hits=90, reference_words=96,
                    timestamp="2026-11-21T10:00:00.000Z")


def test_run_report_renders_chart_and_tables_without_errors(tmp_path: Path) -> None:
    browser = chromium()
    rows = [score("enc-1", BASELINE, 0.15), score("enc-2", BASELINE, 0.30),
            score("enc-1", "medscribe-dev-sh-1", 0.21), score("enc-2", "medscribe-dev-sh-1", 0.20)]
    standings = leaderboard(rows, {"medscribe-dev-sh-1": "CANDIDATE"})
    entries = [IndexEntry("enc-1", "encounters/enc-1.html", "DOCUMENTED", "offline", "visit.mp3"),
               IndexEntry("enc-2", "encounters/enc-2.html", "NEEDS_REVIEW", "offline", INJECTED)]
    page = render_index_page(entries, title="medscribe demo", scores=rows, standings=standings, active=BASELINE)
    page = re.sub(r"(script-src [^;\"]+)", lambda m: f"{m.group(1)} {_digest(COLLECT_ERRORS)} {_digest(REPORT_CHECK)}",
                  page, count=1)
    page = page.replace("</title>", f"</title>\n<script>{COLLECT_ERRORS}</script>", 1)
    page = page.replace("</body>", f"<script>{REPORT_CHECK}</script>\n</body>", 1)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    result = run_chromium(browser, path, tmp_path / "profile", "--dump-dom")
    verdict = SelfCheck(result.stdout).result
    assert verdict is not None, result.stderr[-2000:]
    assert verdict["data-errors"] == ""  # no script error, no CSP violation
    assert verdict["data-pwned"] == "false"
    assert verdict["data-bars"] == "2"  # baseline and the candidate
    assert verdict["data-scores"] == "4"
    assert verdict["data-links"] == "2"
    assert float(verdict["data-chart-width"]) > 100
