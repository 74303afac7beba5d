"""`medscribe fhir <encounter-id> [--aws] [--out FILE]`: the encounter's FHIR R4 document Bundle.

The same export as the workspace's GET /api/encounters/{id}/fhir (WorkspaceService.export_fhir, see
medscribe.domain.fhir): the signed version, else the current one marked preliminary. Locally it reads
the running local runtime; with --aws the deployed stack (its TableName, InputBucketName,
ArtifactsBucketName and KmsKeyArn outputs, AWS credentials from the environment: they need what the
workspace role has on the table and the artifacts bucket). The export is recorded in the audit trail
as `local-<os user>` (admin), the identity `medscribe serve` gives the same person. `--deliver URL`
also posts it to a FHIR server (medscribe.adapters.fhir_server; then it is printed only with --out).
Registered by cli.py.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medscribe_local.cli import CliError, _connect, _print_json, _say, arg, command

if TYPE_CHECKING:
    from medscribe.adapters.fhir_server import FhirServer

AWS_OUTPUTS = ("InputBucketName", "ArtifactsBucketName", "TableName", "KmsKeyArn")


def _server(url: str) -> FhirServer:
    from medscribe.adapters.fhir_server import FhirServer

    try:
        return FhirServer(url)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _deliver(server: FhirServer, bundle: dict[str, Any]) -> None:
    from medscribe.domain.errors import MedscribeError

    try:
        location = server.deliver(bundle)
    except MedscribeError as exc:
        raise CliError(f"not delivered: {exc}", code=1) from exc
    _say(f"delivered to {server.base_url}" + (f": {location}" if location else ""))


@command(
    "fhir", help="print (or write) one encounter as a FHIR R4 document Bundle",
    description="The note (the signed version, else the current one with the Composition `preliminary`), the\n"
    "encounter, placeholders for the patient and the clinician, DocumentReferences for the recording and\n"
    "the numbered transcript, and Condition / MedicationStatement / AllergyIntolerance / Procedure /\n"
    "Observation resources from the coded entities when the entity stage stored them; every claim and\n"
    "resource carries its transcript line numbers (README \"FHIR export\"). The bundle holds PHI.\n"
    "Exit code 1 for an unknown encounter or one with no note yet.",
    arguments=[
        arg("encounter_id", help="e.g. enc-0123... (see `medscribe status`)"),
        arg("--aws", action="store_true", help="the deployed stack instead of the local runtime (AWS credentials)"),
        arg("--out", type=Path, help="write the bundle to this file instead of printing it"),
        arg("--deliver", metavar="URL",
            help="also POST it to this FHIR R4 server (e.g. an AWS HealthLake data store's .../r4/ endpoint), "
                 "SigV4-signed with your AWS credentials; off unless given"),
    ],
)
def fhir(args: argparse.Namespace) -> int:
    from medscribe.services.wiring import workspace_service
    from medscribe.services.workspace import Conflict, NotFound
    from medscribe.settings import FunctionSettings, load_settings
    from medscribe.workspace.auth import local_actor

    server = _server(args.deliver) if args.deliver else None
    pipeline = load_settings()
    if args.aws:
        from medscribe_local.cli_erase import _stack_outputs

        names = _stack_outputs(pipeline.prefix, AWS_OUTPUTS)
        settings = FunctionSettings(table_name=names["TableName"], input_bucket=names["InputBucketName"],
                                    artifacts_bucket=names["ArtifactsBucketName"], topic_arn="",
                                    kms_key_arn=names["KmsKeyArn"], pipeline=pipeline)
    else:
        settings = _connect().resources.function_settings(pipeline)
    try:
        bundle = workspace_service(settings).export_fhir(local_actor(getpass.getuser()), args.encounter_id)
    except NotFound as exc:
        raise CliError(f"no encounter with id {args.encounter_id!r} (list them with `medscribe status`)",
                       code=1) from exc
    except Conflict as exc:
        raise CliError(str(exc), code=1) from exc
    if server is not None:
        _deliver(server, bundle)
    if args.out is None:
        if server is None:
            _print_json(bundle)
        return 0
    try:
        args.out.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.out} ({exc.strerror or type(exc).__name__})") from exc
    composition = bundle["entry"][0]["resource"]
    _say(f"wrote {args.out}: {len(bundle['entry'])} resources; {composition['title']}")
    return 0
