import pytest

from medscribe.domain.encounter import Kind, ObjectRef
from medscribe.domain.validation import mp4_has_audio, sniff_audio, validate, wav_duration
from tests import media

NO_LETTERS = "text has no letters (only whitespace, invisible characters, digits or punctuation)"
LIMITS = {"audio_max_bytes": 2 * 1024**3, "audio_min_seconds": 0.5, "text_max_bytes": 1024}


def check(key: str, data: bytes, kind: Kind = Kind.AUDIO, size: int | None = None):  # type: ignore[no-untyped-def]
    ref = ObjectRef(bucket="b", key=key, size=len(data) if size is None else size)
    return validate(ref, kind, data[:64] if kind is Kind.AUDIO else data, **LIMITS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "data", "fmt"),
    [
        ("audio/a.wav", media.wav_bytes(1.0), "wav"),
        ("audio/a.mp3", media.MP3, "mp3"),
        ("audio/a.flac", media.FLAC, "flac"),
        ("audio/a.ogg", media.OGG, "ogg"),
        ("audio/a.amr", media.AMR, "amr"),
        ("audio/a.webm", media.WEBM, "webm"),
        ("audio/a.mp4", media.MP4, "mp4"),
        ("audio/a.m4a", media.M4A, "m4a"),
        ("audio/a.MP3", media.MP3, "mp3"),
    ],
)
def test_each_supported_container_is_accepted(key: str, data: bytes, fmt: str) -> None:
    verdict = check(key, data)
    assert verdict.accepted, verdict.reason
    assert verdict.media_format == fmt


def test_mp3_frame_sync_without_id3() -> None:
    assert sniff_audio(b"\xff\xfb\x90\x00") == "mp3"


@pytest.mark.parametrize(
    ("key", "data", "reason"),
    [
        (
            "audio/a.mp3", b"hello, this is text",
            "content does not match extension '.mp3' (found no known audio signature)",
        ),
        ("audio/a.wav", media.MP3, "content does not match extension '.wav' (found mp3)"),
        ("audio/a.aiff", media.wav_bytes(1), "unsupported extension '.aiff'"),
        ("audio/noext", media.MP3, "no file extension"),
        ("audio/short.wav", media.wav_bytes(0.2), "audio is 0.20 s; the minimum is 0.5 s"),
        ("audio/empty.wav", b"", "object is empty (0 bytes)"),
    ],
)
def test_bad_audio_is_rejected_with_reason(key: str, data: bytes, reason: str) -> None:
    verdict = check(key, data)
    assert not verdict.accepted
    assert verdict.reason == reason


def test_audio_over_the_size_limit_is_rejected() -> None:
    verdict = check("audio/a.mp3", media.MP3, size=3 * 1024**3)
    assert verdict.reason == f"object is {3 * 1024**3} bytes; the limit is {2 * 1024**3}"


def test_wav_duration_from_header() -> None:
    assert wav_duration(media.wav_bytes(1.5)[:64]) == pytest.approx(1.5)
    assert wav_duration(b"RIFF....WAVEjunk") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe\x00bad", "not valid UTF-8 (byte 0)"),
        (b"  \n\t ", "text is empty"),
        ("\u200b\u200b\n\u200b".encode(), NO_LETTERS),
        ("\ufeff\u200b\u2060 ...!?\n--- 2026-10-14".encode(), NO_LETTERS),
        (b"x" * 2000, "object is 2000 bytes; the limit is 1024"),
    ],
)
def test_bad_text_is_rejected_with_reason(data: bytes, reason: str) -> None:
    assert check("text/n.txt", data, Kind.TEXT).reason == reason


def test_korean_and_bom_text_is_accepted() -> None:
    assert check("text/n.txt", "\ufeff환자는 두통을 호소함".encode(), Kind.TEXT).accepted
    assert not check("text/n.pdf", b"%PDF", Kind.TEXT).accepted
    assert check("keywords/k.csv", b"a,b", Kind.KEYWORDS).accepted


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    return lambda start, length: data[start:start + length]


def test_a_video_only_mp4_has_no_audio_and_an_aac_mp4_has() -> None:
    video = media.video_only_mp4()
    sound = media.aac_mp4()
    assert sniff_audio(video) == "mp4"  # the signature alone cannot tell
    assert mp4_has_audio(_reader(video), len(video)) is False
    assert mp4_has_audio(_reader(sound), len(sound)) is True


def test_an_mp4_without_a_readable_moov_box_is_undecided() -> None:
    video = media.video_only_mp4()
    moov_at = video.index(b"moov") - 4
    assert mp4_has_audio(_reader(video[:moov_at]), moov_at) is None  # cut before its track table
    assert mp4_has_audio(_reader(media.MP4), len(media.MP4)) is None  # a bare ftyp header
    assert mp4_has_audio(_reader(b"\x00" * 64), 64) is None  # a zero-size box loops nowhere
