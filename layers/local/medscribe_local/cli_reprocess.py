"""`medscribe reprocess <encounter-id> [--aws]`: run the pipeline again for one encounter.

An identical re-upload maps to the existing encounter (no new job, no new note), so a re-run is
asked for explicitly, here. Locally it acts on the running local runtime; with --aws on the
deployed stack (its TableName output, AWS credentials from the environment). Registered by cli.py.
"""

from __future__ import annotations

import argparse

from medscribe_local.cli import CliError, _connect, _say, _stack_output, arg, command


@command(
    "reprocess", help="run the pipeline again for one finished encounter (an identical re-upload does not)",
    description="Put a finished encounter back to RECEIVED with its run number raised by one and hand it to\n"
    "its first stage again: audio gets a new transcription job (named <prefix>-<id>.run<n>) when the\n"
    "reconciler next runs, a text note a new note, a ground truth a new score. REJECTED encounters and\n"
    "ones still in progress are refused. Exit code 1 for an unknown id.",
    arguments=[
        arg("encounter_id", help="e.g. enc-0123... (see `medscribe status`)"),
        arg("--aws", action="store_true", help="the deployed stack instead of the local runtime (AWS credentials)"),
    ],
)
def reprocess(args: argparse.Namespace) -> int:
    from medscribe.services.reprocess import ReprocessRefused
    from medscribe.services.wiring import reprocess_service
    from medscribe.settings import load_settings

    table = _stack_output("TableName", "credentials for the stack") if args.aws else _connect().resources.table
    service = reprocess_service(table, load_settings())
    try:
        restarted = service.reprocess(args.encounter_id)
    except ReprocessRefused as exc:
        raise CliError(str(exc), code=1 if exc.unknown else 2) from exc
    _say(f"{restarted.encounter_id}: run {restarted.run} started (status {restarted.status.value}); "
         "follow it with `medscribe show " + restarted.encounter_id + "`")
    return 0
