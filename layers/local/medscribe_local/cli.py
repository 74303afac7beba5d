"""The `medscribe` command.

Commands register themselves with `@command(...)`: one function per command taking the parsed
arguments and returning an exit code. Groups (`local`) are created from the command paths, so a new
command is one decorated function. Exit codes: 0 success, 1 the work did not finish (timeout,
unknown id), 2 usage errors and "no runtime is running".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from medscribe import __version__
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import ScoreStore
from medscribe.adapters.search_sqlite import IndexUnreadable, SqliteSearchIndex
from medscribe.domain.encounter import EncounterStatus
from medscribe.domain.text_safety import printable
from medscribe.domain.validation import AUDIO_FORMATS
from medscribe_local.daemon import DaemonError, start_daemon, stop_daemon
from medscribe_local.environment import connect
from medscribe_local.state import RuntimeInfo, StatePaths, owns_process, read_runtime, remove_runtime, running_runtime
from medscribe_local.uploads import (
    encounter_json,
    key_is_safe,
    plan_folder,
    result_rows,
    upload,
    wait_for_index,
    wait_for_terminal,
    write_results,
)

# Piped output (CI logs, files) gets a wide fixed width so ids and keys stay on one line.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, width=_WIDTH)
errors = Console(stderr=True, highlight=False, width=_WIDTH)


# how long `local run` waits for the search index once every encounter is terminal
INDEX_TIMEOUT_SECONDS = 60.0


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Argument:
    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Argument:
    return Argument(flags, options)


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: tuple[Argument, ...]
    description: str | None


COMMANDS: list[Command] = []
GROUPS: dict[tuple[str, ...], str] = {
    ("local",): "run the pipeline on this machine: AWS emulator, pollers, outbox (no AWS account)",
    ("samples",): "regenerate the committed sample data",
}


def command(
    *path: str, help: str, arguments: Sequence[Argument] = (), description: str | None = None,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS.append(Command(path, help, run, tuple(arguments), description))
        return run

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medscribe", description="Clinical documentation pipeline: AWS deployment and local runtime.",
    )
    parser.add_argument("--version", action="version", version=f"medscribe {__version__}")
    subparsers: dict[tuple[str, ...], Any] = {(): parser.add_subparsers(metavar="COMMAND", required=True)}

    def group(path: tuple[str, ...]) -> Any:
        if path not in subparsers:
            group_parser = group(path[:-1]).add_parser(
                path[-1], help=GROUPS.get(path), description=GROUPS.get(path),
            )
            subparsers[path] = group_parser.add_subparsers(metavar="COMMAND", required=True)
        return subparsers[path]

    for cmd in COMMANDS:
        sub = group(cmd.path[:-1]).add_parser(
            cmd.path[-1], help=cmd.help, description=cmd.description or cmd.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for argument in cmd.arguments:
            sub.add_argument(*argument.flags, **argument.options)
        sub.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as exc:
        errors.print(Text.assemble(("error: ", "red"), str(exc)), soft_wrap=True)  # one line, even piped
        return exc.code
    except Exception as exc:
        unreachable = _unreachable_endpoint(exc)
        if unreachable is None:
            raise
        errors.print(Text.assemble(("error: ", "red"), unreachable), soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# --- helpers shared by commands -------------------------------------------------------------------

def _unreachable_endpoint(exc: BaseException) -> str | None:
    """One line for an endpoint that stopped answering mid-command (the runtime was killed, or its
    state folder removed), from the error or the error it was mapped from; None for anything else."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    found: BaseException | None = exc
    while found is not None and not isinstance(
        found, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectionError),
    ):
        found = found.__cause__ or found.__context__
    if found is None:
        return None
    endpoint = str(getattr(found, "kwargs", {}).get("endpoint_url", "")) or "its endpoint"
    if "127.0.0.1" in endpoint or "localhost" in endpoint:
        return (f"the local runtime stopped answering at {endpoint} (it was stopped or killed, or its state "
                "folder was removed); start it again with `medscribe local up` and rerun the command")
    return f"cannot reach {endpoint} ({type(found).__name__}); check the network and credentials and rerun"


def _connect() -> RuntimeInfo:
    """The running runtime's info, with this process's clients pointed at it."""
    paths = StatePaths.resolve()
    info = running_runtime(paths)
    if info is None:
        raise CliError(f"no local runtime is running (state folder {paths.root}); run `medscribe local up`")
    connect(info.endpoint)
    return info


def _repository() -> EncounterRepository:
    return EncounterRepository(_connect().resources.table)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


STATUS_STYLES = {"RECEIVED": "green", "REJECTED": "yellow", "FAILED": "red", "MISSING": "red"}


def _status(value: str) -> Text:
    return Text(value, style=STATUS_STYLES.get(value, "cyan"))


def _say(message: str, target: Console | None = None) -> None:
    """Print plain text: paths and keys are never read as rich markup."""
    (target or console).print(message, markup=False)


def _start_or_reuse(paths: StatePaths) -> tuple[RuntimeInfo, bool]:
    """The running runtime, or a newly started background one; True when it was started here."""
    info = running_runtime(paths)
    if info is not None:
        return info, False
    with console.status("starting the local runtime..."):
        try:
            return start_daemon(paths), True
        except DaemonError as exc:
            raise CliError(str(exc), code=1) from exc


# --- local ----------------------------------------------------------------------------------------

@command(
    "local", "up", help="start the local runtime in the background",
    description="Start the local runtime (AWS emulator on 127.0.0.1, queues, pollers running the real\n"
    "handlers, DLQ alarms, email outbox) as a background process. State lives in .medscribe/ in the\n"
    "current directory, or in $MEDSCRIBE_STATE_DIR.",
    arguments=[arg("--foreground", action="store_true", help="run in this terminal until Ctrl-C")],
)
def local_up(args: argparse.Namespace) -> int:
    paths = StatePaths.resolve()
    info = running_runtime(paths)
    if info is not None:
        _say(f"a local runtime is already running: {info.endpoint} (pid {info.pid}), state {paths.root}")
        return 0
    if args.foreground:
        from medscribe_local.runtime import serve  # loads moto: only the serving process needs it

        terminal = Console(file=sys.stdout, highlight=False)  # bound now: other threads' output goes to the log

        def ready(started: RuntimeInfo) -> None:
            _say(f"local runtime ready: {started.endpoint}; state {paths.root}", terminal)
            _say(f"handler logs: {paths.log_file}; press Ctrl-C to stop", terminal)

        serve(paths, on_ready=ready)
        _say("local runtime stopped", terminal)
        return 0
    info, _ = _start_or_reuse(paths)
    _say(f"local runtime running: {info.endpoint} (pid {info.pid})")
    _say(f"state {paths.root}; logs {paths.log_file}; stop with `medscribe local down`")
    return 0


@command("local", "down", help="stop the background local runtime")
def local_down(args: argparse.Namespace) -> int:
    paths = StatePaths.resolve()
    info = read_runtime(paths)
    if info is None or not owns_process(info):
        remove_runtime(paths)
        _say(f"no local runtime is running (state folder {paths.root})")
        return 0
    with console.status(f"stopping the local runtime (pid {info.pid})..."):
        clean = stop_daemon(paths, info)
    _say("local runtime stopped" if clean else "local runtime did not stop in time and was killed")
    return 0


@command("local", "serve", help="run the runtime in this process (used by `local up`)")
def local_serve(args: argparse.Namespace) -> int:
    from medscribe_local.runtime import serve  # loads moto: only the serving process needs it

    serve(StatePaths.resolve())
    return 0


@command(
    "local", "run", help="upload a folder and wait until every file's encounter is terminal",
    description="Upload every file under FOLDER to the input bucket and wait until each file's encounter\n"
    "reaches a terminal status; starts a runtime if none is running (it keeps running afterwards).\n\n"
    "Keys: a file whose first path component is an input prefix (audio/, text/, ground-truth/,\n"
    "keywords/) keeps its relative path; any other file goes under audio/ when its extension is an\n"
    f"audio format ({' '.join(AUDIO_FORMATS)}), else under text/. Hidden files are skipped.\n\n"
    "Results are printed and written to <state>/runs/<timestamp>/results.json. Exit code 0 when every\n"
    "encounter reached a terminal status, 1 on timeout (the missing ones are listed).",
    arguments=[
        arg("folder", type=Path, help="folder of inputs"),
        arg("--timeout", type=float, default=300.0, help="seconds to wait for terminal statuses (default 300)"),
    ],
)
def local_run(args: argparse.Namespace) -> int:
    paths = StatePaths.resolve()
    folder: Path = args.folder
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder")
    planned = plan_folder(folder)
    if not planned:
        raise CliError(f"{folder} has no files to upload")
    unsafe = [path for path, key in planned if not key_is_safe(key)]
    if unsafe:
        raise CliError(f"{unsafe[0].relative_to(folder).as_posix()!r}" + (f" and {len(unsafe) - 1} more file name(s)"
                       if len(unsafe) > 1 else "") + " hold a line break or other control character, which "
                       "object keys must not: rename them and run again (nothing was uploaded)")
    info, started = _start_or_reuse(paths)
    if started:
        _say(f"started a local runtime: {info.endpoint} (stop it with `medscribe local down`)")
    connect(info.endpoint)
    resources = info.resources
    began = time.monotonic()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
    ) as progress:
        uploading = progress.add_task("uploading", total=len(planned))
        uploads = []
        repository = EncounterRepository(resources.table)
        for path, key in planned:
            uploads.append((upload(resources.input_bucket, key, path.read_bytes(), repository), str(path)))
            progress.advance(uploading)
        waiting = progress.add_task("processing", total=len(uploads))
        outcome = wait_for_terminal(
            EncounterRepository(resources.table), [u.encounter_id for u, _ in uploads], args.timeout,
            on_progress=lambda done, total: progress.update(waiting, completed=done, total=total),
        )
        indexing = progress.add_task("indexing for search", total=len(outcome.encounters))
        search_db = StatePaths(Path(info.state_dir)).search_db
        behind = wait_for_index(
            lambda: _local_index(search_db, info).versions(),
            outcome.encounters, INDEX_TIMEOUT_SECONDS,
            on_progress=lambda done, total: progress.update(indexing, completed=done, total=total),
        )
    if behind:
        errors.print(f"the search index is behind for {len(behind)} encounter(s); `medscribe search` may miss them")
    rows = result_rows(uploads, outcome)
    table = Table(title=f"{len(rows)} encounters", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("encounter id", "kind"):
        table.add_column(column, no_wrap=True)
    table.add_column("source key", overflow="fold", min_width=24)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for row in rows:
        pending = row.encounter_id in outcome.pending
        status = f"{row.status} (not terminal)" if pending and row.status != "MISSING" else row.status
        table.add_row(row.encounter_id, row.kind or "-", Text(printable(row.source_key)), _status(status),
                      Text(printable(row.reason or "")))
    console.print(table)
    results = write_results(paths, rows, {
        "endpoint": info.endpoint, "folder": str(folder.resolve()),
        "elapsed_seconds": round(time.monotonic() - began, 3), "complete": outcome.complete,
        "pending": outcome.pending,
    })
    _say(f"results: {results}")
    from medscribe.adapters.artifacts import ArtifactStore
    from medscribe_local.report import write_report

    report = write_report(
        results.parent, [row.encounter_id for row in rows if row.encounter_id],
        EncounterRepository(info.resources.table),
        ArtifactStore(info.resources.artifacts_bucket, info.resources.kms_key_arn),
        title=f"medscribe run {results.parent.name}", scores=ScoreStore(info.resources.table),
    )
    _say(f"report:  {report}")
    if outcome.complete:
        return 0
    errors.print(Text.assemble(
        (f"timed out after {args.timeout:g} s: ", "red"), f"{len(outcome.pending)} encounter(s) not terminal:",
    ))
    for row in rows:
        if row.encounter_id in outcome.pending:
            _say(f"  {row.encounter_id}  {printable(row.source_key)}  ({row.status})", errors)
    return 1


# --- records --------------------------------------------------------------------------------------

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



def _local_index(db: Path, info: RuntimeInfo | None = None) -> SqliteSearchIndex:
    """The local search index; a missing or damaged one is rebuilt from the running runtime's records
    (one line on stderr says so), or, with no runtime running, a one-line error says what to do."""
    from medscribe_local.search_rebuild import open_or_problem

    index, problem = open_or_problem(db)
    return index if index is not None else _rebuilt_index(db, problem or "damaged", info)


def _rebuilt_index(db: Path, problem: str, info: RuntimeInfo | None = None) -> SqliteSearchIndex:
    from medscribe_local.search_rebuild import rebuild

    info = info or running_runtime(StatePaths.resolve())
    if info is None:
        if problem == "missing":
            raise CliError(f"no local search index at {db}: run `medscribe local run sample-data` first")
        raise CliError(f"the local search index at {db} is {problem}; start the runtime (`medscribe local up`) "
                       "and search again to rebuild it from the encounter records")
    connect(info.endpoint)
    index, count, kept = rebuild(db, info)
    errors.print(f"the local search index was {problem}; rebuilt it from {count} encounter record(s)"
                 + (f" (the damaged file is kept as {kept})" if kept else ""), markup=False, soft_wrap=True)
    return index


def _search_url(args: argparse.Namespace) -> str:
    """The deployed domain (--url, MEDSCRIBE_SEARCH_URL, or the stack output)."""
    import os

    from medscribe.settings import ENV

    if args.url or os.environ.get(ENV.SEARCH_URL):
        return str(args.url or os.environ[ENV.SEARCH_URL])
    return _stack_output("SearchUrl", "--url")


def _stack_output(name: str, instead: str) -> str:
    """An output of the deployed stack `medscribe-<stage>` (AWS credentials from the environment)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from medscribe.settings import load_settings

    stack = load_settings().prefix
    try:
        outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot read the outputs of stack {stack!r} ({type(exc).__name__}); pass {instead}") from exc
    for output in outputs:
        if output["OutputKey"] == name:
            return str(output["OutputValue"])
    raise CliError(f"stack {stack!r} has no {name} output; pass {instead}")


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
        arg("text", help="words to find, e.g. \"chest pain\" or \"무릎 통증\" (every word must match)"),
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
            hits = index.search(args.text, status=args.status, since=args.since, limit=max(1, args.limit))
        except IndexUnreadable as exc:  # damaged beyond what opening reads: rebuild once and ask again
            if args.aws:
                raise
            index = _rebuilt_index(db, f"damaged ({exc.__cause__ or exc})")
            hits = index.search(args.text, status=args.status, since=args.since, limit=max(1, args.limit))
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
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"task": "selfheal"}))
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
    _say("  stop         medscribe local down")
    return code or healed


@command(
    "samples", "make-audio",
    help="re-render sample-data/audio and ground-truth from the Fareez dialogues (needs espeak-ng, ffmpeg)",
)
def samples_make_audio(args: argparse.Namespace) -> int:
    from medscribe_local.sample_audio import make_all

    for encounter, seconds in make_all().items():
        _say(f"{encounter}: {seconds:.0f} s of audio")
    return 0


@command(
    "transcript", help="print an Amazon Transcribe output JSON as numbered speaker lines",
    arguments=[
        arg("file", type=Path, help="Transcribe (or Transcribe Medical) output JSON"),
        arg("--format", choices=["lines", "jsonl", "csv"], default="lines",
            help="lines: N<TAB>speaker<TAB>text; jsonl: one JSON object per line; csv: with times and confidence"),
    ],
)
def transcript(args: argparse.Namespace) -> int:
    import csv

    from medscribe.domain.transcript_lines import TranscriptFormatError, parse_transcribe_output

    try:
        lines = parse_transcribe_output(json.loads(args.file.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TranscriptFormatError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}", code=1) from exc
    out = sys.stdout
    if args.format == "lines":
        out.writelines(f"{line.n}\t{line.speaker}\t{line.text}\n" for line in lines)
    elif args.format == "jsonl":
        out.writelines(json.dumps(line.as_dict(), ensure_ascii=False) + "\n" for line in lines)
    else:
        from medscribe.domain.text_safety import csv_cell

        writer = csv.DictWriter(out, fieldnames=["n", "speaker", "start", "end", "text", "confidence"])
        writer.writeheader()
        writer.writerows({key: csv_cell(value) for key, value in line.as_dict().items()} for line in lines)
    return 0


def _transcript_lines(path: Path) -> list[Any]:
    """Numbered lines from a Transcribe output JSON, our lines.json, or a speaker-prefixed dialogue."""
    from medscribe.domain.dialogue import dialogue_lines
    from medscribe.domain.transcript_lines import TranscriptFormatError, lines_from_json, parse_transcribe_output

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", code=1) from exc
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
            return lines_from_json(document) if "lines" in document else parse_transcribe_output(document)
        except (json.JSONDecodeError, TranscriptFormatError, KeyError) as exc:
            raise CliError(f"{path} is JSON but not a Transcribe output or lines file: {exc}", code=1) from exc
    lines = dialogue_lines(text)
    if not lines:
        raise CliError(f"{path} has no speaker-prefixed turns (D:/P:, Doctor:/Patient:, [doctor]/[patient])", code=1)
    return lines


def _model(engine: str) -> Any:
    from medscribe.services.wiring import note_model
    from medscribe.settings import load_settings

    try:
        return note_model(load_settings().model_copy(update={"note_engine": engine}))
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc


@command(
    "note", help="write a clinical note with line citations from a transcript or dialogue file",
    arguments=[
        arg("file", type=Path, help="Transcribe output JSON, lines.json, or a dialogue with D:/P: style turns"),
        arg("--template", choices=["hp", "soap"], default="hp", help="History & Physical (default) or SOAP"),
        arg("--engine", choices=["offline", "bedrock", "openai"], default="offline",
            help="offline: extractive, no model (default); bedrock: AWS credentials; "
                 "openai: MEDSCRIBE_OPENAI_BASE_URL and MEDSCRIBE_OPENAI_MODEL"),
        arg("--json", action="store_true", help="print the note as JSON"),
    ],
)
def note(args: argparse.Namespace) -> int:
    import os

    from medscribe.domain.errors import PermanentError, TransientError
    from medscribe.domain.note_writing import write_note
    from medscribe.services.wiring import NOTE_ENGINE_ENV

    os.environ.pop(NOTE_ENGINE_ENV, None)  # the command line decides
    try:
        result = write_note(_transcript_lines(args.file), template=args.template, engine=_model(args.engine))
    except (PermanentError, TransientError) as exc:
        raise CliError(f"the {args.engine} engine failed: {exc}", code=1) from exc
    if args.json:
        print(result.to_json(indent=1))
        return 0
    data = result.to_dict()
    console.print(Text(f"{data['template']} note — engine {data['engine']} — {data['status']}", style="bold"))
    for section in data["sections"]:
        console.print(Text(section["name"], style="bold underline"))
        for item in section["items"] or [{"text": "(nothing in the transcript)", "lines": []}]:
            cites = " ".join(f"[{n}]" for n in item["lines"])
            console.print(Text(f"  • {item['text']} {cites}".rstrip()))
    for problem in data["problems"]:
        errors.print(Text(f"problem: {problem['message']}", style="yellow"))
    return 0


@command(
    "emr", help="structure a free-text clinical note (Korean or English) into the EMR record, as a text/ upload is",
    arguments=[
        arg("file", type=Path, help="a UTF-8 clinical note (.txt/.md)"),
        arg("--engine", choices=["offline", "bedrock", "openai"], default="offline",
            help="offline: rule-based extractor, no model (default); bedrock: AWS credentials "
                 "(AWS_ENDPOINT_URL_BEDROCK_RUNTIME is honoured); openai: MEDSCRIBE_OPENAI_BASE_URL and "
                 "MEDSCRIBE_OPENAI_MODEL"),
        arg("--json", action="store_true", help="print the stored record (emr.json) as JSON"),
    ],
)
def emr(args: argparse.Namespace) -> int:
    import os

    from medscribe.domain.emr import detect_language
    from medscribe.domain.emr_structuring import structure_note
    from medscribe.domain.errors import PermanentError, TransientError
    from medscribe.services.wiring import NOTE_ENGINE_ENV

    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file} as UTF-8 text: {exc}", code=1) from exc
    if not text.strip():
        raise CliError(f"{args.file} is empty", code=1)
    os.environ.pop(NOTE_ENGINE_ENV, None)  # the command line decides
    try:
        result = structure_note(text, detect_language(text), _model(args.engine))
    except (PermanentError, TransientError) as exc:
        raise CliError(f"the {args.engine} engine failed: {exc}", code=1) from exc
    data = result.to_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    console.print(Text(f"EMR record — engine {data['engine']} — {data['language']} — {data['status']}",
                       style="bold"))
    for name, value in data["record"].items():
        shown = "; ".join(value) if isinstance(value, list) else value
        console.print(Text.assemble((f"{name}: ", "bold"), shown or "—"))
    for problem in data["problems"]:
        errors.print(Text(f"problem: {problem['message']}", style="yellow"))
    return 0


@command(
    "ask", help="answer a question over one transcript, citing its lines (declines when it is not there)",
    arguments=[
        arg("source", help="an encounter id (local runtime) or a transcript/dialogue file"),
        arg("question", help="the question, in quotes"),
        arg("--engine", choices=["offline", "bedrock", "openai"], default="offline",
            help="offline answers with the retrieved supporting lines"),
        arg("--json", action="store_true", help="print the answer as JSON"),
    ],
)
def ask(args: argparse.Namespace) -> int:
    from medscribe.adapters.artifacts import ArtifactStore
    from medscribe.domain.note_writing import answer_question
    from medscribe.services.ask import AskService

    path = Path(args.source)
    if path.exists():
        lines = _transcript_lines(path)
    else:
        info = _connect()
        service = AskService(EncounterRepository(info.resources.table),
                             ArtifactStore(info.resources.artifacts_bucket, info.resources.kms_key_arn), lambda: None)
        found = service.lines(args.source)
        if found is None:
            raise CliError(f"no transcript for {args.source!r} (not a file, and no transcribed encounter)", code=1)
        lines = found
    answer = answer_question(lines, args.question, _model(args.engine))
    if args.json:
        print(answer.to_json(indent=1))
        return 0
    console.print(Text(answer.answer, style="bold" if answer.found and answer.verified else "yellow"))
    if answer.found:
        console.print(Text(f"cited lines: {', '.join(str(n) for n in answer.lines)} — engine {answer.engine}"))
    if not answer.verified:
        console.print(Text("NOT VERIFIED: " + "; ".join(p.message for p in answer.problems), style="bold red"))
    return 0 if answer.found and answer.verified else 1


# `medscribe erase` and `medscribe reprocess` live in their own modules and register themselves
from medscribe_local import cli_erase, cli_reprocess  # noqa: E402, F401
