"""Custom vocabularies of the local Transcribe service: standard and medical ones are separate kinds,
as in Transcribe (a name is looked up in its own kind), made from Phrases or from a list or table
file in the emulated S3 (medical vocabularies take only tables, checked as AWS checks them).

A name in use is a ConflictException, an unknown one a NotFoundException. Each vocabulary is
mirrored to `<root>/vocabularies/<name>.json` or `<root>/medical-vocabularies/<name>.json`, as Get
answers it plus its phrases. A job's vocabulary reaches Whisper as hot words (`Vocabulary.hotwords`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from medscribe.adapters import aws_clients
from medscribe_local.service_rules import vocabulary_table_problems
from medscribe_local.state import write_atomically
from medscribe_local.transcribe_api import (
    MEDIA_UNREADABLE,
    NAME,
    NAME_CONSTRAINT,
    NOT_AN_S3_URI,
    ApiError,
    bad_request,
    constraint,
    page,
    s3_location,
)

MAX_HOTWORDS = 5  # phrases passed to Whisper as hot words: longer lists made tiny.en loop (README)
VOCABULARY_NOT_FOUND = (
    "The requested vocabulary couldn't be found. Check the vocabulary name and try your request again."
)
VOCABULARY_EXISTS = "The requested vocabulary name already exists. Use a different vocabulary name."


@dataclass
class Vocabulary:
    name: str
    language_code: str
    phrases: list[str]
    state: str = "READY"
    last_modified: float = field(default_factory=time.time)
    failure_reason: str | None = None

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"VocabularyName": self.name, "LanguageCode": self.language_code,
                                "LastModifiedTime": self.last_modified, "VocabularyState": self.state}
        if self.failure_reason:
            info["FailureReason"] = self.failure_reason
        return info

    def hotwords(self) -> str | None:
        """The first MAX_HOTWORDS phrases as Whisper hot words (Transcribe joins the words of a phrase
        with hyphens). Whisper reads hot words as a decoder prompt of at most 224 tokens: a long list
        crowds it and biases decoding towards words that were never said, so only the head is used."""
        return ", ".join(phrase.replace("-", " ") for phrase in self.phrases[:MAX_HOTWORDS]) or None


def parse_vocabulary_file(text: str) -> list[str]:
    """Phrases of a vocabulary file: a list (one phrase a line) or a table (Phrase, IPA, SoundsLike,
    DisplayAs; tab-separated, with a header). Tables contribute DisplayAs where given, else Phrase."""
    lines = [line.rstrip("\r") for line in text.splitlines() if line.strip()]
    if lines and lines[0].split("\t")[0].strip() == "Phrase":
        header = [column.strip() for column in lines[0].split("\t")]
        phrases = []
        for line in lines[1:]:
            row = dict(zip(header, (cell.strip() for cell in line.split("\t")), strict=False))
            phrases.append(row.get("DisplayAs") or row.get("Phrase", ""))
        return [phrase for phrase in phrases if phrase]
    return [line.strip() for line in lines]


def _folder(medical: bool) -> str:
    return "medical-vocabularies" if medical else "vocabularies"


class Vocabularies:
    """The service's vocabularies of both kinds and their files, behind their own lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_kind: dict[bool, dict[str, Vocabulary]] = {False: {}, True: {}}  # by medical
        self._lock = threading.Lock()

    def find(self, name: str, medical: bool) -> Vocabulary | None:
        with self._lock:
            return self._by_kind[medical].get(name)

    def kind(self, name: str) -> str | None:
        """"medical", "standard" or None: what service_rules needs to judge a job's vocabulary."""
        with self._lock:
            if name in self._by_kind[True]:
                return "medical"
            return "standard" if name in self._by_kind[False] else None

    def create(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        name = self._name(body)
        language = body.get("LanguageCode")
        if not isinstance(language, str):
            raise bad_request("LanguageCode is required.")
        vocabulary = Vocabulary(name, language, self._phrases(body, medical=medical))
        with self._lock:
            found = self._by_kind[medical]
            if name in found:
                raise ApiError("ConflictException", VOCABULARY_EXISTS)
            found[name] = vocabulary
            self._save(vocabulary, medical)
            return vocabulary.info()

    def get(self, body: dict[str, Any], *, medical: bool, endpoint: str) -> dict[str, Any]:
        with self._lock:
            vocabulary = self._existing(body, medical)
            return {**vocabulary.info(), "DownloadUri": f"{endpoint}/{_folder(medical)}/{vocabulary.name}.txt"}

    def update(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        phrases = self._phrases(body, medical=medical)
        with self._lock:
            vocabulary = self._existing(body, medical)
            vocabulary.language_code = str(body.get("LanguageCode") or vocabulary.language_code)
            vocabulary.phrases, vocabulary.last_modified, vocabulary.state = phrases, time.time(), "READY"
            self._save(vocabulary, medical)
            info = vocabulary.info()
        return {key: info[key] for key in ("VocabularyName", "LanguageCode", "LastModifiedTime", "VocabularyState")}

    def list_standard(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListVocabularies: standard vocabularies only (Transcribe lists medical ones separately)."""
        state, contains = body.get("StateEquals"), str(body.get("NameContains") or "").lower()
        with self._lock:
            found = sorted(
                (v for v in self._by_kind[False].values()
                 if (state is None or v.state == state) and contains in v.name.lower()),
                key=lambda v: v.name,
            )
            listed, token = page(found, body)
            response: dict[str, Any] = {"Vocabularies": [v.info() for v in listed]}
        if state is not None:
            response["Status"] = state
        if token:
            response["NextToken"] = token
        return response

    def delete(self, body: dict[str, Any], *, medical: bool) -> dict[str, Any]:
        with self._lock:
            vocabulary = self._existing(body, medical)
            del self._by_kind[medical][vocabulary.name]
            (self.root / _folder(medical) / f"{vocabulary.name}.json").unlink(missing_ok=True)
        return {}

    def text(self, name: str) -> bytes | None:
        """A standard vocabulary's phrases, one a line: what its DownloadUri serves."""
        with self._lock:
            vocabulary = self._by_kind[False].get(name)
            return "\n".join(vocabulary.phrases).encode() + b"\n" if vocabulary else None

    def _phrases(self, body: dict[str, Any], *, medical: bool) -> list[str]:
        phrases, uri = body.get("Phrases"), body.get("VocabularyFileUri")
        if phrases is not None:
            if not isinstance(phrases, list) or not all(isinstance(p, str) and len(p) <= 256 for p in phrases):
                raise constraint("...", "phrases", "Member must have length less than or equal to 256")
            return [phrase for phrase in phrases if phrase.strip()]
        location = s3_location(str(uri))
        if location is None:
            raise bad_request(NOT_AN_S3_URI)
        try:
            data = aws_clients.client("s3").get_object(Bucket=location[0], Key=location[1])["Body"].read()
        except ClientError as exc:
            raise bad_request(MEDIA_UNREADABLE) from exc
        text = data.decode("utf-8", errors="replace")
        if medical or text.startswith("Phrase"):  # a table (medical vocabularies take only tables)
            problems = vocabulary_table_problems(text, str(body.get("LanguageCode") or ""))
            if problems:
                raise bad_request(f"The vocabulary file is not valid: {problems[0]}")
        return parse_vocabulary_file(text)

    @staticmethod
    def _name(body: dict[str, Any]) -> str:
        name = body.get("VocabularyName")
        if not isinstance(name, str) or not NAME.match(name):
            raise constraint(name, "vocabularyName", NAME_CONSTRAINT)
        return name

    def _existing(self, body: dict[str, Any], medical: bool) -> Vocabulary:
        """The vocabulary the request names (called with the lock held)."""
        name = self._name(body)
        vocabulary = self._by_kind[medical].get(name)
        if vocabulary is None:
            raise ApiError("NotFoundException", VOCABULARY_NOT_FOUND)
        return vocabulary

    def _save(self, vocabulary: Vocabulary, medical: bool) -> None:
        record = {**vocabulary.info(), "Phrases": vocabulary.phrases}
        write_atomically(self.root / _folder(medical) / f"{vocabulary.name}.json", json.dumps(record, indent=2))
