"""Input validation: what may enter the pipeline. Pure: callers pass the bytes they read.

Audio is accepted only when the extension is one Amazon Transcribe takes AND the leading bytes
carry that container's signature; WAV headers also give the duration, checked against the
minimum Transcribe accepts. An mp4/m4a container is also walked box by box (ranged reads the caller
supplies) to its `moov` box: one whose tracks include no sound track (a video-only recording) is
rejected as having no audio stream, the real reason, rather than left to fail later as a format
mismatch. Text must be non-empty UTF-8 with at least one letter: a text of only
whitespace, invisible characters (zero-width spaces, BOMs), digits or punctuation holds no note and
is rejected here with its reason rather than documented (the EMR stage would end it NEEDS_REVIEW).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
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
NO_AUDIO_STREAM = "no audio stream: the file holds no sound track (video only?)"
MP4_FORMATS: frozenset[str] = frozenset({"mp4", "m4a"})
MP4_MAX_TOP_LEVEL_BOXES = 64  # ftyp, free, mdat, moov... more means not a file worth walking
MP4_MAX_MOOV_BYTES = 16 * 1024 * 1024  # a track table beyond this is left to the transcriber to judge
_BOX_HEADER = 16  # size, type, and a 64-bit size when size == 1
_MP4_CONTAINERS = frozenset({b"trak", b"mdia"})


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


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in data[start:end]; stops at a malformed header."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1 and at + 16 <= end:
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return
        yield kind, at + header, at + size
        at += size


def moov_has_sound(moov: bytes) -> bool:
    """Whether a `moov` box (header included) has a track whose handler is `soun` (audio)."""
    def walk(start: int, end: int) -> bool:
        for kind, payload, box_end in _boxes(moov, start, end):
            if kind in _MP4_CONTAINERS and walk(payload, box_end):
                return True
            # hdlr payload: version/flags (4), pre_defined (4), handler_type (4)
            if kind == b"hdlr" and moov[payload + 8:payload + 12] == b"soun":
                return True
        return False

    return any(walk(payload, end) for kind, payload, end in _boxes(moov) if kind == b"moov")


def mp4_has_audio(read: Callable[[int, int], bytes], size: int) -> bool | None:
    """Whether an mp4/m4a of `size` bytes has a sound track; `read(start, length)` returns those bytes.
    None when it cannot tell (no `moov` box among the top-level boxes, or one too large to read)."""
    at = 0
    for _ in range(MP4_MAX_TOP_LEVEL_BOXES):
        if at + 8 > size:
            return None
        header = read(at, _BOX_HEADER)
        if len(header) < 8:
            return None
        box_size, kind = struct.unpack_from(">I4s", header)
        if box_size == 1 and len(header) >= 16:
            box_size = struct.unpack_from(">Q", header, 8)[0]
        elif box_size == 0:
            box_size = size - at
        if box_size < 8:
            return None
        if kind == b"moov":
            if box_size > MP4_MAX_MOOV_BYTES:
                return None
            return moov_has_sound(read(at, box_size))
        at += box_size
    return None


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
