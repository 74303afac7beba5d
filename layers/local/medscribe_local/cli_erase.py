"""`medscribe erase <encounter-id> [--aws]`: erase one encounter (medscribe.services.erasure).

Locally it erases from the running runtime's emulated stores, its local Transcribe, its SQLite index
(compacted afterwards) and its own files (outbox, run folders). With --aws it erases from the deployed
stack with the operator's AWS credentials (an operator action: no function runs it) and lists what
only ages out, with the date it is gone. Output and logs carry encounter ids and counts only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from medscribe.domain.errors import MedscribeError
from medscribe.observability import logger
from medscribe.services.erasure import ErasureReport, ErasureService
from medscribe_local.cli import CliError, _connect, _print_json, _say, arg, command, console

STACK_OUTPUTS = ("InputBucketName", "ArtifactsBucketName", "TableName", "SearchUrl", "KmsKeyArn")


def _stack_outputs(stack: str, names: tuple[str, ...] = STACK_OUTPUTS) -> dict[str, str]:
    """The outputs `names` of the deployed stack (AWS credentials from the environment); also `medscribe fhir --aws`."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot read the outputs of stack {stack!r} ({type(exc).__name__})", code=1) from exc
    found = {o["OutputKey"]: str(o["OutputValue"]) for o in outputs if o["OutputKey"] in names}
    missing = [name for name in names if name not in found]
    if missing:
        raise CliError(f"stack {stack!r} has no {', '.join(missing)} output", code=1)
    return found


def _service(names: dict[str, str], search_url: str | None, medical: bool) -> ErasureService:
    from medscribe.services.wiring import erasure_service

    return erasure_service(table_name=names["TableName"], input_bucket=names["InputBucketName"],
                           artifacts_bucket=names["ArtifactsBucketName"], kms_key_arn=names.get("KmsKeyArn"),
                           search_url=search_url, medical=medical)


def _print(report: ErasureReport, local_notes: list[str]) -> None:
    _say(f"erased {len(report.erased)} encounter(s): {', '.join(report.erased)}")
    table = Table(title="deleted", title_justify="left")
    table.add_column("store")
    table.add_column("count", justify="right")
    for store, count in sorted(report.deleted.items()):
        table.add_row(store, str(count))
    console.print(table)
    if report.ages_out:
        aging = Table(title="not erased here: ages out", title_justify="left")
        for column in ("store", "holds", "gone by"):
            aging.add_column(column)
        for item in report.ages_out:
            aging.add_row(item.store, item.holds, Text(item.gone_by.isoformat() if item.gone_by else
                                                       "never by the project (outside its control)"))
        console.print(aging)
    for note in local_notes:
        _say(note)


@command(
    "erase", help="erase one encounter everywhere the project controls (local runtime, or --aws)",
    description="Deletes the encounter, the other revisions of its input key and the recording or ground\n"
    "truth it pairs with: every S3 version of the input and artifacts, the table items (encounter, scores,\n"
    "source ordering, model evaluation entries), the search document and the Transcribe jobs, and rewrites\n"
    "the score reports without them. Prints counts per store and, with --aws, what only ages out (backups,\n"
    "point-in-time recovery, snapshots, access logs, log groups) with the date it is gone. Exit code 1 for\n"
    "an unknown or unfinished encounter.",
    arguments=[
        arg("encounter_id", help="the encounter to erase (enc-...)"),
        arg("--aws", action="store_true", help="erase from the deployed stack (your AWS credentials)"),
        arg("--json", action="store_true", help="print the report as JSON"),
    ],
)
def erase(args: argparse.Namespace) -> int:
    from medscribe.settings import ENV, load_settings

    handler = logger.registered_handler  # the audit line (ids and counts) on stderr: stdout is the report
    previous = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    settings = load_settings()
    today = datetime.now(UTC).date()
    notes: list[str] = []
    try:
        if args.aws:
            names = _stack_outputs(settings.prefix)
            search_url = os.environ.get(ENV.SEARCH_URL) or names["SearchUrl"]  # as `search --aws` does
            report = _service(names, search_url, settings.transcribe_medical).erase(
                args.encounter_id, today, settings)
        else:
            report = _erase_locally(args.encounter_id, today, notes)
    except MedscribeError as exc:
        raise CliError(str(exc), code=1) from None
    finally:
        if previous is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(previous)
    if args.json:
        _print_json({**report.to_json(), "notes": notes})
    else:
        _print(report, notes)
    return 0


def _erase_locally(encounter_id: str, today: Any, notes: list[str]) -> ErasureReport:
    from medscribe.adapters.artifacts import ArtifactStore
    from medscribe.adapters.encounters import EncounterRepository
    from medscribe.adapters.scores import ScoreStore
    from medscribe.services.wiring import SQLITE_URL_PREFIX
    from medscribe.settings import load_settings
    from medscribe_local.environment import route_transcribe
    from medscribe_local.erasure import compact_search_index, scrub_outbox, scrub_runs
    from medscribe_local.report import write_report
    from medscribe_local.state import StatePaths

    info = _connect()
    paths = StatePaths(Path(info.state_dir))
    if info.transcribe_endpoint:
        route_transcribe(info.transcribe_endpoint)
    resources = info.resources
    names = {"TableName": resources.table, "InputBucketName": resources.input_bucket,
             "ArtifactsBucketName": resources.artifacts_bucket, "KmsKeyArn": resources.kms_key_arn}
    settings = load_settings()
    url = f"{SQLITE_URL_PREFIX}{paths.search_db}" if paths.search_db.is_file() else None
    report = _service(names, url, settings.transcribe_medical).erase(encounter_id, today, settings)
    report.ages_out = []  # the local runtime keeps no backups, snapshots or access logs
    erased = set(report.erased)
    report.deleted["outbox emails rewritten"] += scrub_outbox(paths.outbox, erased)
    artifacts = ArtifactStore(resources.artifacts_bucket, resources.kms_key_arn)

    def rerender(folder: Path, ids: list[str], title: str) -> object:
        return write_report(folder, ids, EncounterRepository(resources.table), artifacts, title=title,
                            scores=ScoreStore(resources.table))

    report.deleted["run folders rewritten"] += scrub_runs(paths.runs, erased, rerender)
    compact_search_index(paths.search_db)
    notes.append("local runtime: nothing ages out (no backups, snapshots or access logs); "
                 f"{paths.log_file} keeps encounter ids (never keys or text) until the state folder is removed")
    return report
