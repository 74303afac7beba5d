"""Tiny, real media headers for tests (no binary fixtures in the repo)."""

from __future__ import annotations

from medscribe.local.sample_audio import silence_wav


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A canonical PCM 16-bit mono WAV of silence."""
    return silence_wav(seconds, rate)


MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 16
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 40
OGG = b"OggS\x00\x02" + b"\x00" * 40
AMR = b"#!AMR\n" + b"\x00" * 40
WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 40
MP4 = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 40
M4A = b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 40
