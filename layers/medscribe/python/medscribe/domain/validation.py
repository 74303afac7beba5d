"""Input validation: what may enter the pipeline. Pure: callers pass the bytes they read.

Audio is accepted only when the extension is one Amazon Transcribe takes AND the leading bytes
carry that container's signature; WAV headers also give the duration, checked against the
minimum Transcribe accepts. Text must be non-empty UTF-8 with at least one letter: a text of only
whitespace, invisible characters (zero-width spaces, BOMs), digits or punctuation holds no note and
is rejected here with its reason rather than documented (the EMR stage would end it NEEDS_REVIEW).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from medscribe.domain.encounter import Kind, ObjectRef

# extension -> Transcribe MediaFormat
AUDIO_FORMATS: dict[str, str] = {
    "mp3": "mp3", "mp4": "mp4", "m4a": "m4a", "wav": "wav",
    "flac": "flac", "ogg": "ogg", "amr": "amr", "webm": "webm",
}
TEXT_EXTENSIONS: frozenset[str] = frozenset({"txt", "md", "text"})
KEYWORD_EXTENSIONS: frozenset[str] = frozenset({"txt", "csv"})
HEADER_BYTES = 64  # enough for every signature below and a canonical WAV header


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str | None = None
    media_format: str | None = None
    duration_seconds: float | None = None

    @classmethod
    def reject(cls, reason: str) -> Verdict:
        return cls(accepted=False, reason=reason)


def sniff_audio(head: bytes) -> str | None:
    """The container family the leading bytes announce, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML (WebM/Matroska)
    if head[4:8] == b"ftyp":
        return "mp4"  # ISO base media: mp4 and m4a
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"  # ID3 tag or MPEG audio frame sync
    return None


def wav_duration(head: bytes) -> float | None:
    """Duration from a canonical 44-byte WAV header (fmt then data chunk); None if not canonical."""
    if len(head) < 44 or head[12:16] != b"fmt " or head[36:40] != b"data":
        return None
    byte_rate = struct.unpack_from("<I", head, 28)[0]
    data_size = struct.unpack_from("<I", head, 40)[0]
    return data_size / byte_rate if byte_rate else None


def validate_audio(ref: ObjectRef, head: bytes, *, max_bytes: int, min_seconds: float) -> Verdict:
    media_format = AUDIO_FORMATS.get(ref.extension)
    if media_format is None:
        return Verdict.reject(f"unsupported extension '.{ref.extension}'" if ref.extension else "no file extension")
    if ref.size > max_bytes:
        return Verdict.reject(f"object is {ref.size} bytes; the limit is {max_bytes}")
    family = sniff_audio(head)
    expected = "mp4" if media_format in ("mp4", "m4a") else media_format
    if family != expected:
        found = family or "no known audio signature"
        return Verdict.reject(f"content does not match extension '.{ref.extension}' (found {found})")
    duration = wav_duration(head) if media_format == "wav" else None
    if duration is not None and duration < min_seconds:
        return Verdict.reject(f"audio is {duration:.2f} s; the minimum is {min_seconds} s")
    return Verdict(accepted=True, media_format=media_format, duration_seconds=duration)


def validate_text(ref: ObjectRef, body: bytes, *, allowed: frozenset[str], max_bytes: int) -> Verdict:
    if ref.extension not in allowed:
        return Verdict.reject(f"unsupported extension '.{ref.extension}'" if ref.extension else "no file extension")
    if ref.size > max_bytes:
        return Verdict.reject(f"object is {ref.size} bytes; the limit is {max_bytes}")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Verdict.reject(f"not valid UTF-8 (byte {exc.start})")
    if not text.strip():
        return Verdict.reject("text is empty")
    if not has_letters(text):
        return Verdict.reject("text has no letters (only whitespace, invisible characters, digits or punctuation)")
    return Verdict(accepted=True, media_format="text")


def has_letters(text: str) -> bool:
    """Whether `text` holds a letter of any script (Hangul, Latin, ...)."""
    return any(character.isalpha() for character in text)


def validate(ref: ObjectRef, kind: Kind, data: bytes, *, audio_max_bytes: int, audio_min_seconds: float,
             text_max_bytes: int) -> Verdict:
    """Decide whether an object enters the pipeline. `data` is the header (audio) or the body (text)."""
    if ref.size == 0:
        return Verdict.reject("object is empty (0 bytes)")
    if kind is Kind.AUDIO:
        return validate_audio(ref, data, max_bytes=audio_max_bytes, min_seconds=audio_min_seconds)
    allowed = KEYWORD_EXTENSIONS if kind is Kind.KEYWORDS else TEXT_EXTENSIONS
    return validate_text(ref, data, allowed=allowed, max_bytes=text_max_bytes)
