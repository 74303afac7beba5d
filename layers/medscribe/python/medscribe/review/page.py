"""HTML review pages: one per encounter (note claims with clickable citations beside the transcript),
and an index page for a run report. Pure: strings in, a string out.

A page is a single self-contained file: the CSS and the small script are inline (review/page.html,
shipped as package data) and nothing is loaded from anywhere. A Content-Security-Policy meta tag
allows only that inline style and script, by their SHA-256 hashes (`default-src 'none'`), so even
markup that slipped through could not run a script or fetch a resource. Every piece of text
(transcript lines are untrusted input, and so is model output) is HTML-escaped.

Citations: each claim is followed by links like [12] (href="#L12") to the transcript line with
id="L12"; following one scrolls to the line, `:target` styles it, and the script adds the class
`hl` (cleared from the previous line). A cited line that is not in the transcript is shown as a
red [n] without a link; a claim without citations is marked "uncited".

The after-visit summary (`summary_panel`, also used by the workspace) is shown the same way: each
sentence with its citations, a sentence the checker does not accept flagged "unsupported", the
summary's own status and what its engine could not do. For a text note (no transcript lines in the
note) the transcript panel shows the note's numbered lines the summary cites.

Coded entities (the entities stage's `entities/<id>.json`, when the page is drawn after it): under each
claim, the entities whose evidence lines overlap the claim's cited lines, each with its text, category,
codes (system and code) and "negated" where the finding is denied; a page without claims (an EMR
record) lists every entity with its lines.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from medscribe.domain.clinical_entities import Entity, EntitySet, claim_entities
from medscribe.domain.emr import FIELDS, LIST_FIELDS, detect_language
from medscribe.domain.evidence import REASONS
from medscribe.domain.notes import NoteStatus
from medscribe.domain.selfheal import ScoreRow, Standing

NEEDS_REVIEW = NoteStatus.NEEDS_REVIEW.value


def _e(value: object) -> str:
    return escape(str(value), quote=True)


@cache
def _template() -> str:
    return resources.files("medscribe.review").joinpath("page.html").read_text(encoding="utf-8")


def _digest(content: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(content.encode("utf-8")).digest()).decode("ascii") + "'"


@cache
def content_security_policy() -> str:
    """Only the template's own inline style and script (by hash); nothing else, from nowhere."""
    template = _template()
    styles = re.findall(r"<style>(.*?)</style>", template, flags=re.DOTALL)
    scripts = re.findall(r"<script>(.*?)</script>", template, flags=re.DOTALL)
    return (
        "default-src 'none'; "
        f"style-src {' '.join(map(_digest, styles))}; "
        f"script-src {' '.join(map(_digest, scripts))}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )


def _page(title: str, body: str, lang: str) -> str:
    return string.Template(_template()).substitute(
        # the policy is our own constant text without '"', '<' or '&': written as is, so it reads as sent
        lang=_e(lang), csp=content_security_policy(), title=_e(title), body=body)


def _status_badge(status: str) -> str:
    return f'<span class="status status-{_e(status.lower())}">{_e(status)}</span>'


def _problem_text(problem: object) -> str:
    if isinstance(problem, Mapping):
        message = problem.get("message")
        code = problem.get("code")
        text = _e(message) if message is not None else _e(json.dumps(problem, ensure_ascii=False, default=str))
        return f"{text} <code>{_e(code)}</code>" if code else text
    return _e(problem)


def _banner(heading: str, problems: Sequence[object]) -> str:
    items = "".join(f"<li>{_problem_text(p)}</li>" for p in problems) or "<li>No problem was recorded.</li>"
    return f'<section class="banner" role="alert"><h2>{_e(heading)}</h2><ul>{items}</ul></section>'


def _citations(lines: Sequence[Any], known: set[int]) -> str:
    if not lines:
        return '<span class="uncited" title="this claim cites no transcript line">uncited</span>'
    links: list[str] = []
    for raw in lines:
        n = int(raw) if isinstance(raw, int | str) and str(raw).strip().isdigit() else None
        if n is not None and n in known:
            links.append(f'<a class="cite" href="#L{n}" data-line="{n}">[{n}]</a>')
        else:
            links.append(f'<span class="cite-missing" title="not a line of this transcript">[{_e(raw)}]</span>')
    return "".join(links)


def claim_problems(note: Mapping[str, Any]) -> dict[tuple[str, int], list[Mapping[str, Any]]]:
    """Claim-level problems (those naming a section and item) by (section, item number)."""
    found: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for problem in note.get("problems") or []:
        if isinstance(problem, Mapping) and problem.get("section") and str(problem.get("item", "")).isdigit():
            found.setdefault((str(problem["section"]), int(problem["item"])), []).append(problem)
    return found


def _entity(entity: Entity, *, with_lines: bool = False) -> str:
    """One coded entity: text, category, codes (or why none), negation; every value escaped."""
    codes = "".join(f'<code class="entity-code" title="{_e(code.description)}">{_e(code.system)} {_e(code.code)}'
                    "</code>" for code in entity.codes)
    if not codes:
        codes = f'<span class="not-coded" title="{_e(entity.not_coded or "")}">not coded</span>'
    negated = '<span class="negated">negated</span>' if entity.negated else ""
    lines = (f'<span class="entity-lines">lines {_e(", ".join(map(str, entity.lines)))}</span>'
             if with_lines else "")
    return (f'<li class="entity{" entity-negated" if entity.negated else ""}" data-category="{_e(entity.category)}">'
            f'<span class="entity-text">{_e(entity.text)}</span> '
            f'<span class="entity-category">{_e(entity.category.replace("_", " ").lower())}</span> '
            f"{codes}{negated}{lines}</li>")


def _claim_entities(found: Sequence[Entity]) -> str:
    if not found:
        return ""
    return f'<ul class="claim-entities" aria-label="coded entities">{"".join(map(_entity, found))}</ul>'


def _claim(item: Mapping[str, Any], known: set[int], problems: Sequence[Mapping[str, Any]],
           entities: EntitySet | None) -> str:
    """A claim with its citations and the coded entities of its lines; a claim its cited lines do not
    support is flagged with the reasons."""
    cited = item.get("lines") or []
    text = (f'<span class="claim-text">{_e(item.get("text", ""))}</span>{_citations(cited, known)}'
            f"{_claim_entities(claim_entities(entities, cited))}")
    if not problems:
        return f'<li class="claim">{text}</li>'
    verdict = "contradicted" if any("contradicted" in str(p.get("code")) for p in problems) else "unsupported"
    reasons = "".join(f'<li>{_e(p.get("message", ""))}</li>' for p in problems)
    return (f'<li class="claim claim-flagged" data-verdict="{verdict}">{text}'
            f'<span class="verdict">{verdict}</span><ul class="claim-problems">{reasons}</ul></li>')


def entities_panel(entities: EntitySet) -> str:
    """Every coded entity with its lines (a page without claims to put them beside), and the engine's notes."""
    items = "".join(_entity(entity, with_lines=True) for entity in entities.entities)
    listing = f'<ul class="entities">{items}</ul>' if items else '<p class="empty">No coded entities.</p>'
    notes = "".join(f'<p class="empty">{_e(note)}</p>' for note in entities.notes)
    return (f'<section class="panel coded" aria-label="Coded entities"><h2>Coded entities</h2>'
            f'<p class="meta">engine {_e(entities.engine)}</p>{listing}{notes}</section>')


def _note_sections(note: Mapping[str, Any], known: set[int], entities: EntitySet | None) -> str:
    parts: list[str] = []
    flagged = claim_problems(note)
    for section in note.get("sections") or []:
        items = section.get("items") or []
        name = str(section.get("name", ""))
        claims = "".join(_claim(item, known, flagged.get((name, index), []), entities)
                         for index, item in enumerate(items, start=1))
        body = f"<ul>{claims}</ul>" if claims else '<p class="empty">Nothing documented.</p>'
        parts.append(f'<section class="note-section"><h3>{_e(section.get("name", ""))}</h3>{body}</section>')
    return "".join(parts) or '<p class="empty">The note has no sections.</p>'


def _transcript(lines: Sequence[Mapping[str, Any]]) -> str:
    rows: list[str] = []
    for line in lines:
        n = int(line["n"])
        role = str(line.get("role") or "other")
        rows.append(
            f'<li class="line role-{_e(role)}" id="L{n}"><a class="n" href="#L{n}">{n}</a> '
            f'<span class="speaker">{_e(line.get("speaker", ""))}</span>(<span class="role">{_e(role)}</span>) '
            f'<span class="text">{_e(line.get("text", ""))}</span></li>'
        )
    return f'<ol class="lines">{"".join(rows)}</ol>' if rows else '<p class="empty">No transcript lines.</p>'


def emr_panel(emr: Mapping[str, Any]) -> str:
    """`emr` is an EMR result (`{"record", "problems", "status", "engine"}`) or a bare record."""
    record = emr.get("record", emr)
    if not isinstance(record, Mapping):
        record = {}
    entries: list[str] = []
    for name in FIELDS:
        value = record.get(name)
        if name in LIST_FIELDS and isinstance(value, list):
            shown = "".join(f"<li>{_e(v)}</li>" for v in value)
            rendered = f"<ul>{shown}</ul>" if shown else '<span class="empty">—</span>'
        else:
            rendered = _e(value) if value not in (None, "") else '<span class="empty">—</span>'
        entries.append(f"<dt>{_e(name)}</dt><dd>{rendered}</dd>")
    status = str(emr.get("status", ""))
    meta = " · ".join(filter(None, (_status_badge(status) if status else "",
                                    f"engine {_e(emr['engine'])}" if emr.get("engine") else "")))
    banner = _banner("EMR record needs review", emr.get("problems") or []) if status == NEEDS_REVIEW else ""
    return (f'<section class="panel emr" aria-label="EMR record"><h2>EMR record</h2>'
            f'<p class="meta">{meta}</p>{banner}<dl>{"".join(entries)}</dl></section>')


def summary_panel(summary: Mapping[str, Any], known: set[int], *, with_lines: bool = False) -> str:
    """The after-visit summary (`AfterVisitSummary.to_dict()`): sentences with citations, flagged when
    unverified; `with_lines` also lists the lines it cites (a page with no transcript of its own)."""
    cited = list(summary.get("lines") or []) if with_lines else []
    known = known | {int(line["n"]) for line in cited}
    parts: list[str] = []
    for section in summary.get("sections") or []:
        sentences = "".join(
            _claim(sentence, known, [] if sentence.get("verified") else [{"code": "unsupported_sentence", "message": (
                "not supported by its cited lines: it " + "; it ".join(
                    REASONS.get(str(r), "cites no line") for r in sentence.get("reasons") or ("uncited",)))}], None)
            for sentence in section.get("sentences") or [])
        body = f"<ul>{sentences}</ul>" if sentences else '<p class="empty">Nothing for this section.</p>'
        parts.append(f'<section class="note-section"><h3>{_e(section.get("title", ""))}</h3>{body}</section>')
    status = str(summary.get("status", ""))
    meta = " · ".join(filter(None, (_status_badge(status) if status else "",
                                    f"engine {_e(summary['engine'])}" if summary.get("engine") else "",
                                    f"language {_e(summary['language'])}" if summary.get("language") else "")))
    banner = _banner("Summary needs review", summary.get("problems") or []) if status == NEEDS_REVIEW else ""
    notes = "".join(f"<li>{_e(note)}</li>" for note in summary.get("notes") or [])
    return (f'<section class="panel summary" aria-label="After-visit summary" lang="{_e(summary.get("language", ""))}">'
            f'<h2>After-visit summary: {_e(summary.get("title", ""))}</h2><p class="summary-meta">{meta}</p>{banner}'
            f'{"".join(parts)}{f"<ul class=summary-notes>{notes}</ul>" if notes else ""}'
            f'{"<h3>Lines cited</h3>" + _transcript(cited) if cited else ""}</section>')


def emr_only_note(emr: Mapping[str, Any]) -> dict[str, Any]:
    """The note a text note's review page is drawn from: no lines or sections; the EMR record's
    engine, problems and status."""
    return {"template": None, "engine": emr.get("engine") or "offline", "lines": [], "sections": [],
            "problems": list(emr.get("problems") or []), "status": str(emr.get("status") or "DOCUMENTED")}


def render_review_page(note: Mapping[str, Any], *, encounter_id: str, title: str,
                       emr: Mapping[str, Any] | None = None, summary: Mapping[str, Any] | None = None,
                       entities: EntitySet | None = None) -> str:
    """The review page of one encounter from its note JSON (`Note.to_dict()` shape), optional EMR record,
    optional after-visit summary and optional coded entities (beside the claims; listed in a panel of
    their own when there are none)."""
    lines = list(note.get("lines") or (summary or {}).get("lines") or [])
    known = {int(line["n"]) for line in lines}
    status = str(note.get("status", ""))
    meta = "".join(
        f"<div><dt>{_e(label)}</dt><dd>{value}</dd></div>"
        for label, value in (
            ("Encounter", _e(encounter_id)), ("Template", _e(note.get("template", ""))),
            ("Engine", f'<span class="engine">{_e(note.get("engine", ""))}</span>'),
            ("Status", _status_badge(status) if status else ""),
            # sections the offline engine could not fill (names only): not a problem, but not checked either
            *((("Not filled offline", _e(", ".join(map(str, note["unfilled"])))),) if note.get("unfilled") else ()),
        )
    )
    banner = _banner("Needs review", note.get("problems") or []) if status == NEEDS_REVIEW else ""
    body = (
        f'<header class="top"><h1>{_e(title)}</h1><dl class="meta">{meta}</dl></header>{banner}'
        '<main class="layout">'
        f'<div><section class="panel note" aria-label="Note"><h2>Note</h2>{_note_sections(note, known, entities)}'
        f'</section>{emr_panel(emr) if emr is not None else ""}'
        f'{entities_panel(entities) if entities is not None and not note.get("sections") else ""}'
        f'{summary_panel(summary, known) if summary else ""}</div>'
        f'<section class="panel transcript" aria-label="Transcript"><h2>Transcript</h2>{_transcript(lines)}</section>'
        "</main>"
        "<footer>Generated by medscribe. Every statement links to the transcript lines that support it; "
        "check each one before use.</footer>"
    )
    return _page(title, body, detect_language(" ".join(str(line.get("text", "")) for line in lines)))


@dataclass(frozen=True)
class IndexEntry:
    encounter_id: str
    href: str  # relative link to the encounter's review page
    status: str
    engine: str = ""
    label: str = ""  # e.g. the input's file name


def _relative(href: str) -> str:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("/", "\\")):
        raise ValueError("index links must be relative paths to review pages")
    return href


def render_index_page(entries: Sequence[IndexEntry], *, title: str, scores: Sequence[ScoreRow] = (),
                      standings: Sequence[Standing] = (), active: str = "") -> str:
    """A run report's index: one row per encounter, linking to its review page; with scores, the
    accuracy of each transcript against its ground truth and the model leaderboard (an inline SVG
    bar chart: attributes only, so the page's CSP holds)."""
    rows = "".join(
        f"<tr><td>{_encounter_link(entry)}</td>"
        f"<td>{_e(entry.label)}</td><td>{_status_badge(entry.status)}</td><td>{_e(entry.engine)}</td></tr>"
        for entry in entries
    )
    table = (
        '<table class="encounters"><thead><tr><th>Encounter</th><th>Input</th><th>Status</th><th>Engine</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>" if rows else '<p class="empty">No encounters.</p>'
    )
    sections = f'<section class="panel"><h2>Encounters</h2>{table}</section>'
    if scores:
        sections += _scores_section(scores)
    if standings:
        sections += _leaderboard_section(standings, active)
    body = (f'<header class="top"><h1>{_e(title)}</h1><dl class="meta"><div><dt>Encounters</dt>'
            f"<dd>{len(entries)}</dd></div></dl></header>"
            f'<main class="index">{sections}</main>')
    return _page(title, body, "en")


def _encounter_link(entry: IndexEntry) -> str:
    """A link to the encounter's review page; plain text when it has none (ground truth, keywords)."""
    if not entry.href:
        return _e(entry.encounter_id)
    return f'<a href="{_e(_relative(entry.href))}">{_e(entry.encounter_id)}</a>'


def _scores_section(scores: Sequence[ScoreRow]) -> str:
    rows = "".join(
        f'<tr><td>{_e(row.encounter_id)}</td><td>{_e(row.model)}</td><td>{_e(row.metric.upper())}</td>'
        f'<td class="num">{row.error_rate:.2%}</td><td class="num">{row.substitutions}</td>'
        f'<td class="num">{row.deletions}</td><td class="num">{row.insertions}</td><td class="num">{row.hits}</td></tr>'
        for row in sorted(scores, key=lambda r: (r.encounter_id, r.model))
    )
    return ('<section class="panel" id="accuracy"><h2>Transcription accuracy against ground truth</h2>'
            '<table class="scores"><thead><tr><th>Encounter</th><th>Model</th><th>Metric</th><th>Error rate</th>'
            "<th>Substitutions</th><th>Deletions</th><th>Insertions</th><th>Hits</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")


def _leaderboard_section(standings: Sequence[Standing], active: str) -> str:
    width, bar_height, gap, label_width = 640, 22, 10, 260
    top = max([s.mean_error_rate for s in standings] + [0.01])
    bars = []
    for n, standing in enumerate(standings):
        y = n * (bar_height + gap)
        length = max(2.0, (width - label_width - 80) * standing.mean_error_rate / top)
        fill = "#2f7d4f" if standing.model == active else "#5b6b8c"
        bars.append(
            f'<text x="0" y="{y + 16}" font-size="13" fill="#222">{_e(standing.model)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{fill}"></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 16}" font-size="13" fill="#222">'
            f"{standing.mean_error_rate:.2%}</text>"
        )
    height = len(standings) * (bar_height + gap)
    chart = (f'<svg class="leaderboard" role="img" aria-label="mean error rate per model" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
             f'{"".join(bars)}</svg>')
    rows = "".join(
        f"<tr><td>{n}</td><td>{_e(s.model)}</td><td>{_e(s.status or ('ACTIVE' if s.model == active else ''))}</td>"
        f'<td class="num">{s.files}</td><td class="num">{s.mean_error_rate:.2%}</td></tr>'
        for n, s in enumerate(standings, 1)
    )
    return ('<section class="panel" id="leaderboard"><h2>Model leaderboard (mean error rate, lower is better)</h2>'
            f"<p>New transcription jobs use: <strong>{_e(active or 'baseline')}</strong></p>{chart}"
            '<table class="leaderboard"><thead><tr><th>#</th><th>Model</th><th>Status</th><th>Files</th>'
            f"<th>Mean error rate</th></tr></thead><tbody>{rows}</tbody></table></section>")
