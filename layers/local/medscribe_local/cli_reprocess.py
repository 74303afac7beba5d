"""`medscribe reprocess <encounter-id> [--aws] [--discard-edits]`: run the pipeline again for one encounter.

An identical re-upload maps to the existing encounter (no new job, no new note), so a re-run is
asked for explicitly, here. Locally it acts on the running local runtime; with --aws on the
deployed stack (its TableName, ArtifactsBucketName and KmsKeyArn outputs, AWS credentials from the
environment). A note a clinician edited or signed is not re-run without --discard-edits
(services/reprocess.py: the versions stay in the history, the re-run's note is a new unsigned draft);
the re-run is audited as `local-<os user>`, the identity `medscribe serve` gives the same person.
Registered by cli.py.
"""

from __future__ import annotations

import argparse
import getpass

from medscribe_local.cli import CliError, _connect, _say, arg, command

AWS_OUTPUTS = ("TableName", "ArtifactsBucketName", "KmsKeyArn")


@command(
    "reprocess", help="run the pipeline again for one finished encounter (an identical re-upload does not)",
    description="Put a finished encounter back to RECEIVED with its run number raised by one and hand it to\n"
    "its first stage again: audio gets a new transcription job (named <prefix>-<id>.run<n>) when the\n"
    "reconciler next runs, a text note a new note, a ground truth a new score. REJECTED encounters and\n"
    "ones still in progress are refused (exit code 2). Exit code 1 for an unknown id, and for a note a\n"
    "clinician has edited or signed in the workspace, unless --discard-edits is given.",
    arguments=[
        arg("encounter_id", help="e.g. enc-0123... (see `medscribe status`)"),
        arg("--aws", action="store_true", help="the deployed stack instead of the local runtime (AWS credentials)"),
        arg("--discard-edits", action="store_true",
            help="re-run even though a clinician edited or signed the note: their versions stay in the history "
                 "and the audit trail, the signature is not carried over, the re-run's note is a new draft"),
    ],
)
def reprocess(args: argparse.Namespace) -> int:
    from medscribe.services.reprocess import ClinicianWork, ReprocessRefused
    from medscribe.services.wiring import reprocess_service
    from medscribe.settings import load_settings
    from medscribe.workspace.auth import local_actor

    settings = load_settings()
    if args.aws:
        from medscribe_local.cli_erase import _stack_outputs

        names = _stack_outputs(settings.prefix, AWS_OUTPUTS)
        table, artifacts, key = names["TableName"], names["ArtifactsBucketName"], names["KmsKeyArn"]
    else:
        resources = _connect().resources
        table, artifacts, key = resources.table, resources.artifacts_bucket, resources.kms_key_arn
    service = reprocess_service(table_name=table, artifacts_bucket=artifacts, kms_key_arn=key, settings=settings)
    try:
        restarted = service.reprocess(args.encounter_id, local_actor(getpass.getuser()),
                                      discard_edits=args.discard_edits)
    except ReprocessRefused as exc:
        raise CliError(str(exc), code=1 if exc.unknown or isinstance(exc, ClinicianWork) else 2) from exc
    _say(f"{restarted.encounter_id}: run {restarted.run} started (status {restarted.status.value}); "
         "follow it with `medscribe show " + restarted.encounter_id + "`")
    return 0
