"""`medscribe local ...`: start, stop and serve the local runtime, and run a folder through it.

Registered by cli.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.scores import ScoreStore
from medscribe.domain.text_safety import printable
from medscribe.domain.validation import AUDIO_FORMATS
from medscribe.settings import load_settings
from medscribe_local.cli import CliError, _local_index, _say, _status, arg, command, console, errors
from medscribe_local.daemon import DaemonError, start_daemon, stop_daemon
from medscribe_local.environment import connect
from medscribe_local.state import RuntimeInfo, StatePaths, owns_process, read_runtime, remove_runtime, running_runtime
from medscribe_local.uploads import (
    key_is_safe,
    plan_folder,
    result_rows,
    upload,
    wait_for_index,
    wait_for_terminal,
    write_results,
)

# how long `local run` waits for the search index once every encounter is terminal
INDEX_TIMEOUT_SECONDS = 60.0


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
            until_coded=load_settings().entity_engine != "off",  # the local runtime's settings (cdk.json)
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


