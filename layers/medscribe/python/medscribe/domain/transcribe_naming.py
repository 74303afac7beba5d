"""What medscribe calls things around a Transcribe job. Pure.

A job's name and the encounter it belongs to, the keys of its transcript artifacts, the language
its custom vocabulary or language model is built for, and a failure reason fit for logs. (The job
itself is `adapters.transcribe_jobs`; the stage that runs it, `services.transcription_stage`; the
lines parsed from its output, `domain.transcript_lines`.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

JOB_NAME = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
_URI = re.compile(r"\b(?:s3|https?)://\S+")


def customization_language(language: str) -> str:
    """The language custom vocabularies and language models are built for under the deployment's
    `language` setting: ko-KR for ko-KR, otherwise en-US. With language identification they apply to
    the en-US entry of the job's LanguageIdSettings (Transcribe takes them per language there)."""
    return "ko-KR" if language == "ko-KR" else "en-US"


_RUN_SUFFIX = re.compile(r"\.run\d+$")


def job_name(prefix: str, encounter_id: str, run: int | None = None) -> str:
    """Transcribe job name for an encounter: the stage prefix and the id only (no PHI); a deliberate
    re-run (`medscribe reprocess`) adds `.run<n>`, since job names are unique per account."""
    name = f"{prefix}-{encounter_id}" + (f".run{run}" if run and run > 1 else "")
    if not JOB_NAME.match(name):
        raise ValueError("job name outside Transcribe's [0-9a-zA-Z._-]{1,200}")
    return name


def encounter_of_job(prefix: str, name: str) -> str | None:
    """The encounter id a job name belongs to, or None for jobs of another stage or system."""
    head = f"{prefix}-"
    rest = _RUN_SUFFIX.sub("", name[len(head):]) if name.startswith(head) else ""
    return rest if rest.startswith("enc-") else None


@dataclass(frozen=True)
class TranscriptKeys:
    """Where an encounter's transcript artifacts live in the artifacts bucket (ids only)."""

    encounter_id: str

    @property
    def folder(self) -> str:
        return f"transcripts/{self.encounter_id}"

    @property
    def transcribe_output(self) -> str:
        return f"{self.folder}/transcribe.json"

    @property
    def lines(self) -> str:
        return f"{self.folder}/lines.json"

    @property
    def csv(self) -> str:
        return f"{self.folder}/transcript.csv"

    @property
    def docx(self) -> str:
        return f"{self.folder}/transcript.docx"


def safe_reason(reason: str | None, limit: int = 300) -> str:
    """A failure reason fit for notifications and logs: URIs (which carry object keys) removed."""
    return _URI.sub("<uri>", reason or "unknown")[:limit]
