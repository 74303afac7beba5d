"""`medscribe transcript | note | emr | ask`: transcripts, notes, EMR records and answers from files
(or, for `ask`, an encounter of the local runtime), with the engine the command line names.

Registered by cli.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from medscribe.domain.notes import TEMPLATE_NAMES
from medscribe_local.cli import CliError, _connect, arg, command, console, errors

if TYPE_CHECKING:
    from medscribe.settings import PipelineSettings


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


def _settings(engine: str) -> PipelineSettings:
    """cdk.json's settings with the note engine the command line names; settings that engine lacks (the
    OpenAI-compatible endpoint) are a usage error."""
    from pydantic import ValidationError

    from medscribe.settings import load_settings

    try:
        return load_settings().updated(note_engine=engine)
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise CliError(f"the {engine} engine: {problems} (settings under context.medscribe in cdk.json)") from exc


def _model(engine: str) -> Any:
    from medscribe.services.wiring import note_model

    return note_model(_settings(engine))


@command(
    "note", help="write a clinical note with line citations from a transcript or dialogue file",
    arguments=[
        arg("file", type=Path, help="Transcribe output JSON, lines.json, or a dialogue with D:/P: style turns"),
        arg("--template", choices=TEMPLATE_NAMES, default="HISTORY_AND_PHYSICAL",
            help="a catalogue template (README \"Templates\"; hp and soap are aliases); default HISTORY_AND_PHYSICAL"),
        arg("--engine", choices=["offline", "bedrock", "openai"], default="offline",
            help="offline: extractive, no model (default); bedrock: AWS credentials; "
                 "openai: the settings openai_base_url and openai_model"),
        arg("--json", action="store_true", help="print the note as JSON"),
    ],
)
def note(args: argparse.Namespace) -> int:
    from medscribe.domain.errors import PermanentError, TransientError
    from medscribe.domain.note_writing import write_note

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
                 "(AWS_ENDPOINT_URL_BEDROCK_RUNTIME is honoured); openai: the settings openai_base_url and "
                 "openai_model"),
        arg("--json", action="store_true", help="print the stored record (emr.json) as JSON"),
    ],
)
def emr(args: argparse.Namespace) -> int:
    from medscribe.domain.emr import detect_language
    from medscribe.domain.emr_structuring import structure_note
    from medscribe.domain.errors import PermanentError, TransientError

    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file} as UTF-8 text: {exc}", code=1) from exc
    if not text.strip():
        raise CliError(f"{args.file} is empty", code=1)
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
    from medscribe.domain.note_writing import answer_question
    from medscribe.services.wiring import ask_service
    from medscribe.settings import load_settings

    path = Path(args.source)
    if path.exists():
        lines = _transcript_lines(path)
    else:
        info = _connect()
        found = ask_service(info.resources.function_settings(load_settings())).lines(args.source)
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
