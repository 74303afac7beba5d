"""The `medscribe` command: the command registry, the parser, `main`, and the helpers commands share.

Commands register themselves with `@command(...)`: one function per command taking the parsed
arguments and returning an exit code. Groups (`local`) are created from the command paths, so a new
command is one decorated function. The commands live in modules by kind (cli_local: the local
runtime; cli_results: records, search, scores and self-heal; cli_documents: notes, EMR records and
questions from files; cli_erase, cli_reprocess; cli_serve: the clinician workspace; cli_fhir: FHIR
export), imported at the end of this module in the order `medscribe --help` lists them. Exit codes:
0 success, 1 the work did not finish (timeout, unknown id), 2 usage errors and "no runtime is running".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from medscribe import __version__
from medscribe.adapters.encounters import EncounterRepository
from medscribe.adapters.search_sqlite import SqliteSearchIndex
from medscribe_local.environment import connect
from medscribe_local.state import RuntimeInfo, StatePaths, running_runtime

# Piped output (CI logs, files) gets a wide fixed width so ids and keys stay on one line.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, width=_WIDTH)
errors = Console(stderr=True, highlight=False, width=_WIDTH)


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


# The commands register themselves on import, in the order `medscribe --help` lists them.
# isort: off
from medscribe_local import cli_local, cli_results, cli_documents, cli_erase, cli_reprocess  # noqa: E402, F401
from medscribe_local import cli_serve, cli_fhir  # noqa: E402, F401
# isort: on
