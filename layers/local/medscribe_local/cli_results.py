"""`medscribe status | show | search | score | leaderboard | selfheal | demo | samples`: the records,
search index, scores and self-heal loop of the local runtime (or, with --aws, the deployed stack).

Registered by cli.py.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from rich import box
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import ScoreStore
from medscribe.adapters.search_sqlite import IndexUnreadable
from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.text_safety import printable
from medscribe_local.cli import (
    CliError,
    _connect,
    _local_index,
    _print_json,
    _rebuilt_index,
    _repository,
    _say,
    _stack_output,
    _status,
    arg,
    command,
    console,
    errors,
)
from medscribe_local.state import StatePaths
from medscribe_local.uploads import encounter_json


@command(
    "status", help="counts by status and the encounters of the running local runtime",
    arguments=[
        arg("--status", choices=[s.value for s in EncounterStatus], help="only encounters with this status"),
        arg("--json", action="store_true", help="print JSON instead of a table"),
    ],
)
def status(args: argparse.Namespace) -> int:
    repository = _repository()
    encounters = repository.list(EncounterStatus(args.status) if args.status else None)
    counts = dict(sorted(Counter(e.status.value for e in encounters).items()))
    if args.json:
        _print_json({"counts": counts, "total": len(encounters), "encounters": [encounter_json(e) for e in encounters]})
        return 0
    summary = Table(title="encounters by status", title_justify="left")
    summary.add_column("status")
    summary.add_column("count", justify="right")
    for name, count in counts.items():
        summary.add_row(_status(name), str(count))
    summary.add_row("total", str(len(encounters)))
    console.print(summary)
    table = Table(title="encounters (latest update first)", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("encounter id", "kind", "status", "updated"):
        table.add_column(column, no_wrap=True)
    for column in ("source key", "reason"):
        table.add_column(column, overflow="fold")
    for e in encounters:
        table.add_row(
            e.encounter_id, e.kind.value if e.kind else "-", _status(e.status.value), e.updated_at,
            Text(printable(e.source_key)), Text(printable(e.reason or "")),
        )
    console.print(table)
    return 0


@command(
    "show", help="one encounter record",
    arguments=[arg("encounter_id", help="e.g. enc-0123..."), arg("--json", action="store_true", help="print JSON")],
)
def show(args: argparse.Namespace) -> int:
    encounter = _repository().get(args.encounter_id)
    if encounter is None:
        raise CliError(f"no encounter with id {args.encounter_id!r} (list them with `medscribe status`)", code=1)
    record = encounter_json(encounter)
    if args.json:
        _print_json(record)
        return 0
    table = Table(title=encounter.encounter_id, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in record.items():
        shown = _status(value) if name == "status" else Text("-" if value is None else printable(str(value)))
        table.add_row(name, shown)
    console.print(table)
    return 0


def _search_url(args: argparse.Namespace) -> str:
    """The deployed domain (--url, MEDSCRIBE_SEARCH_URL, or the stack output)."""
    import os

    from medscribe.settings import ENV

    if args.url or os.environ.get(ENV.SEARCH_URL):
        return str(args.url or os.environ[ENV.SEARCH_URL])
    return _stack_output("SearchUrl", "--url")


def _since(value: str) -> str:
    from datetime import date, datetime

    try:
        (date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date or ISO-8601 time: {value!r}") from exc
    return value


@command(
    "search", help="full-text search over transcripts and notes (English and Korean), ranked, with snippets",
    arguments=[
        arg("text", nargs="?", default="",
            help="words to find, e.g. \"chest pain\" or \"무릎 통증\" (every word must match; optional with --code)"),
        arg("--code", help="only encounters whose entities carry this code, system:code, e.g. ICD-10-CM:R50.9"),
        arg("--status", choices=[s.value for s in EncounterStatus], help="only encounters with this status"),
        arg("--since", type=_since, help="only encounters updated on or after this date (YYYY-MM-DD) or time"),
        arg("--limit", type=int, default=20, help="at most this many hits (default 20)"),
        arg("--json", action="store_true", help="print JSON instead of a table"),
        arg("--aws", action="store_true",
            help="search the deployed OpenSearch domain (AWS credentials; the stack's SearchUrl output)"),
        arg("--url", help="with --aws: the domain URL (https://...), instead of the stack output"),
    ],
)
def search(args: argparse.Namespace) -> int:
    from medscribe.services.wiring import search_index

    db = StatePaths.resolve().search_db
    index = search_index(_search_url(args)) if args.aws else _local_index(db)
    try:
        try:
            hits = index.search(args.text, status=args.status, since=args.since, limit=max(1, args.limit),
                                code=args.code)
        except IndexUnreadable as exc:  # damaged beyond what opening reads: rebuild once and ask again
            if args.aws:
                raise
            index = _rebuilt_index(db, f"damaged ({exc.__cause__ or exc})")
            hits = index.search(args.text, status=args.status, since=args.since, limit=max(1, args.limit),
                                code=args.code)
    except ValueError as exc:  # a query the index refuses (QueryTooLong)
        raise CliError(str(exc)) from exc
    if args.json:
        _print_json({"query": args.text, "hits": [
            {"encounter_id": h.encounter_id, "status": h.status, "updated_at": h.updated_at,
             "score": round(h.score, 4), "snippet": h.snippet} for h in hits]})
        return 0
    if not hits:
        _say(f"no encounter matches {args.text!r}")
        return 0
    table = Table(title=f"{len(hits)} hit(s) for {args.text!r}, best first", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for column in ("#", "encounter id", "status", "updated", "score"):
        table.add_column(column, no_wrap=True)
    table.add_column("snippet", overflow="fold")
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), hit.encounter_id, _status(hit.status), hit.updated_at, f"{hit.score:.2f}",
                      Text(hit.snippet.replace("\n", " ")))
    console.print(table)
    return 0


@command(
    "score", help="word error rate of a transcript against a human reference (CER for Korean)",
    description="Score HYPOTHESIS (plain text, or an Amazon Transcribe output JSON) against REFERENCE\n"
    "(plain text). Both are normalised the same way first (English: Whisper's normaliser: case,\n"
    "punctuation, fillers as whole words, numbers, contractions; Korean: punctuation and spacing).\n"
    "Prints WER, MER and the substitution/deletion/insertion/hit counts, and the missed words\n"
    "(reference words deleted or substituted, once per occurrence).",
    arguments=[
        arg("reference", type=Path, help="the human transcript (.txt)"),
        arg("hypothesis", type=Path, help="the machine transcript (.txt or Transcribe output .json)"),
        arg("--lang", choices=["en", "ko"], default="en", help="en: WER; ko: CER (and WER) (default en)"),
        arg("--json", action="store_true", help="print JSON"),
    ],
)
def score(args: argparse.Namespace) -> int:
    from medscribe.domain.scoring import EmptyReferenceError, hypothesis_text
    from medscribe.domain.scoring import score as score_texts
    from medscribe.domain.transcript_lines import TranscriptFormatError

    try:
        reference = args.reference.read_text(encoding="utf-8-sig")
        hypothesis = hypothesis_text(args.hypothesis.read_bytes())
        result = score_texts(reference, hypothesis, language=args.lang)
    except (OSError, UnicodeDecodeError, TranscriptFormatError, EmptyReferenceError) as exc:
        raise CliError(f"cannot score: {exc}", code=1) from exc
    if args.json:
        _print_json(result.to_json())
        return 0
    table = Table(title=f"{args.hypothesis.name} against {args.reference.name}", title_justify="left",
                  show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, str | Text]] = [("WER", f"{result.wer:.2%}"), ("MER", f"{result.mer:.2%}")]
    if result.cer is not None:
        rows.insert(0, ("CER", f"{result.cer:.2%}"))
    rows += [("reference words", str(result.reference_words)), ("hits", str(result.hits)),
             ("substitutions", str(result.substitutions)), ("deletions", str(result.deletions)),
             ("insertions", str(result.insertions)),
             ("missed words", Text(", ".join(result.missed_words) or "-"))]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    return 0


def _score_store(args: argparse.Namespace) -> ScoreStore:
    if getattr(args, "aws", False):
        return ScoreStore(args.table or _stack_output("TableName", "--table"))
    return ScoreStore(_connect().resources.table)


def _print_leaderboard(store: ScoreStore, as_json: bool) -> None:
    from medscribe.domain.selfheal import leaderboard

    models = {model.name: model for model in store.models()}
    active = store.active()
    rows = store.all_scores()
    standings = leaderboard(rows, {name: model.status.value for name, model in models.items()})
    if as_json:
        _print_json({"active": active.name if active else "baseline", "leaderboard": [
            {"rank": n, "model": s.model, "status": s.status or ("ACTIVE" if s.model == "baseline" and not active
                                                                  else ""),
             "files": s.files, "mean_error_rate": round(s.mean_error_rate, 6)}
            for n, s in enumerate(standings, 1)],
            "scores": [{"encounter_id": r.encounter_id, "model": r.model, "metric": r.metric,
                        "error_rate": round(r.error_rate, 6), "substitutions": r.substitutions,
                        "deletions": r.deletions, "insertions": r.insertions, "hits": r.hits} for r in rows]})
        return
    if not standings:
        _say("no scores yet: upload audio with ground truth (ground-truth/<same path>.txt)")
        return
    table = Table(title=f"leaderboard (new jobs use: {active.name if active else 'baseline'})",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("#", "model", "status", "files", "mean error rate"):
        table.add_column(column, no_wrap=True)
    for n, standing in enumerate(standings, 1):
        status = standing.status or ("ACTIVE" if standing.model == "baseline" and not active else "")
        table.add_row(str(n), standing.model, status, str(standing.files), f"{standing.mean_error_rate:.2%}")
    console.print(table)
    per_file = Table(title="error rate per file and model", title_justify="left", box=box.SIMPLE_HEAD)
    names = [s.model for s in standings]
    per_file.add_column("encounter id", no_wrap=True)
    for name in names:
        per_file.add_column(name, no_wrap=True)
    by_file: dict[str, dict[str, float]] = {}
    for row in rows:
        by_file.setdefault(row.encounter_id, {})[row.model] = row.error_rate
    for encounter_id, scores in sorted(by_file.items()):
        per_file.add_row(encounter_id, *(f"{scores[n]:.2%}" if n in scores else "-" for n in names))
    console.print(per_file)


@command(
    "leaderboard", help="transcription models by mean error rate on the ground-truth set, and per-file scores",
    arguments=[
        arg("--json", action="store_true", help="print JSON"),
        arg("--aws", action="store_true", help="read the deployed table (AWS credentials) instead of the local one"),
        arg("--table", help="with --aws: the table name (default: the stack output TableName)"),
    ],
)
def leaderboard_command(args: argparse.Namespace) -> int:
    _print_leaderboard(_score_store(args), args.json)
    return 0


@command(
    "selfheal", help="run the self-heal loop now (local runtime): learn keywords, build, evaluate, decide",
    description="Sends self-heal ticks to the running local runtime (as its schedule would) until the\n"
    "cycle ends: a candidate vocabulary is built from the missed words and keywords files, the\n"
    "ground-truth recordings are transcribed again with it, scored, and it is promoted only if it\n"
    "beats the incumbent by `selfheal_margin`. Prints the leaderboard. Exit 1 on timeout.",
    arguments=[
        arg("--timeout", type=float, default=600.0, help="seconds to wait for the cycle (default 600)"),
        arg("--json", action="store_true", help="print the leaderboard as JSON"),
    ],
)
def selfheal(args: argparse.Namespace) -> int:
    from medscribe.adapters import aws_clients
    from medscribe.domain.selfheal import ModelStatus
    from medscribe.messages import SelfhealTick

    info = _connect()
    store = ScoreStore(info.resources.table)
    queue_url = info.resources.routes["selfheal"].queue_url
    sqs = aws_clients.client("sqs")
    before = {model.name for model in store.models()}
    deadline = time.monotonic() + args.timeout
    in_flight = (ModelStatus.BUILDING, ModelStatus.EVALUATING)

    def queue_idle() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=errors) as progress:
        task = progress.add_task("self-heal: building a candidate")
        while True:
            sqs.send_message(QueueUrl=queue_url, MessageBody=SelfhealTick(task="selfheal").model_dump_json())
            while not queue_idle() and time.monotonic() < deadline:
                time.sleep(0.5)
            models = store.models()
            new = [m for m in models if m.name not in before]
            busy = [m for m in models if m.status in in_flight]
            if busy:
                progress.update(task, description=f"self-heal: {busy[0].name} {busy[0].status.value.lower()}")
            elif new or time.monotonic() >= deadline:
                break
            else:
                progress.update(task, description="self-heal: nothing new to learn")
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(1.0)
    for model in new:
        line = f"candidate {model.name}: {model.status.value}"
        if model.mean_error_rate is not None:
            line += f", mean error rate {model.mean_error_rate:.2%} over {model.files} file(s)"
        if model.reason:
            line += f" ({model.reason})"
        _say(line)
    if not new:
        _say("no new candidate: no scored ground truth yet, or the same keywords as an earlier candidate")
    _print_leaderboard(store, args.json)
    if busy:
        errors.print(f"timed out after {args.timeout:g} s with {busy[0].name} still {busy[0].status.value}")
        return 1
    return 0


@command(
    "demo", help="the whole pipeline on sample-data: run, score, one self-heal cycle, report",
    description="Starts the local runtime (if none is running), runs sample-data/ through the pipeline\n"
    "(transcripts, notes, EMR records, search index), waits for the recordings to be scored against\n"
    "their ground truth, runs one self-heal cycle, and writes the run report (encounters with their\n"
    "statuses and review pages, the accuracy table, the leaderboard chart). Prints where everything is.",
    arguments=[
        arg("--folder", type=Path, default=None, help="inputs (default: the project's sample-data/)"),
        arg("--timeout", type=float, default=600.0, help="seconds for each phase (default 600)"),
    ],
)
def demo(args: argparse.Namespace) -> int:
    import json as json_module

    from medscribe.adapters.artifacts import ArtifactStore
    from medscribe.settings import project_root
    from medscribe_local.cli_local import local_run
    from medscribe_local.report import write_report

    folder = args.folder or project_root() / "sample-data"
    began = time.monotonic()
    _say(f"[1/4] running {folder} through the local pipeline")
    code = local_run(argparse.Namespace(folder=folder, timeout=args.timeout))
    paths = StatePaths.resolve()
    info = _connect()
    run_folder = max(paths.runs.glob("*/results.json"), key=lambda p: p.stat().st_mtime).parent
    rows = json_module.loads((run_folder / "results.json").read_text(encoding="utf-8"))["encounters"]
    truths = {row["source_key"].removeprefix("ground-truth/").rsplit(".", 1)[0]
              for row in rows if row["kind"] == "ground-truth"}
    expected = sum(1 for row in rows if row["kind"] == "audio" and row["status"] in ("DOCUMENTED", "NEEDS_REVIEW")
                   and row["source_key"].removeprefix("audio/").rsplit(".", 1)[0] in truths)
    store = ScoreStore(info.resources.table)
    _say(f"[2/4] scoring {expected} recording(s) against their ground truth")
    deadline = time.monotonic() + args.timeout
    while len({r.encounter_id for r in store.all_scores() if r.model == "baseline"}) < expected:
        if time.monotonic() > deadline:
            errors.print("scoring did not finish in time")
            code = 1
            break
        time.sleep(0.5)
    _say("[3/4] one self-heal cycle (candidate vocabulary -> evaluation -> leaderboard)")
    healed = selfheal(argparse.Namespace(timeout=args.timeout, json=False))
    _say("[4/4] writing the run report")
    report = write_report(
        run_folder, [row["encounter_id"] for row in rows if row["encounter_id"]],
        EncounterRepository(info.resources.table),
        ArtifactStore(info.resources.artifacts_bucket, info.resources.kms_key_arn),
        title=f"medscribe demo {run_folder.name}", scores=store,
    )
    emails = sorted(paths.outbox.glob("*.eml"))
    _say("")
    _say(f"done in {time.monotonic() - began:.0f} s")
    _say(f"  report       {report}")
    _say(f"  results      {run_folder / 'results.json'}")
    _say(f"  emails       {paths.outbox}/ ({len(emails)} .eml: score reports, alarms)")
    _say(f"  logs         {paths.log_file}")
    _say("  try          medscribe search \"chest pain\" | medscribe search 무릎 | medscribe leaderboard | "
         "medscribe status")
    _say("  workspace    medscribe serve   (review, edit and sign the notes in your browser)")
    _say("  stop         medscribe local down")
    return code or healed


@command(
    "samples", "make-audio",
    help="re-render sample-data/audio and ground-truth from the Fareez dialogues and the Korean one "
         "(needs espeak-ng, ffmpeg)",
)
def samples_make_audio(args: argparse.Namespace) -> int:
    from medscribe_local.sample_audio import make_all

    for encounter, seconds in make_all().items():
        _say(f"{encounter}: {seconds:.0f} s of audio")
    return 0
