"""The local speech engine's own rules: model integrity, media checks, channel attribution and the
Transcribe output document (no recognition runs here)."""

from __future__ import annotations

import hashlib
import io
import itertools
import wave
from pathlib import Path

import numpy as np
import pytest

from medscribe.domain.transcript_lines import parse_transcribe_output
from medscribe_local.media_decoding import (
    FORMAT_MISMATCH,
    RATE_MISMATCH,
    UNSUPPORTED_FORMAT,
    MediaError,
    decode_media,
    pcm_windows,
)
from medscribe_local.transcribe_jobs import transcribe_locale, whisper_language
from medscribe_local.transcribe_output import LabeledWord, attribute_channels, build_transcribe_output, split_word
from medscribe_local.transcribe_vocabularies import parse_vocabulary_file
from medscribe_local.whisper_engine import (
    BASE,
    TINY_EN,
    ModelIntegrityError,
    ModelSpec,
    ModelStore,
    Word,
    assemble_model,
    verify_model,
)
from tests.media import wav_bytes

RATE = 16000
Parts = tuple[list[Path], list[Path], ModelSpec]  # model.bin parts, extra files, pins


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def parts(tmp_path: Path) -> Parts:
    source = tmp_path / "packages"
    source.mkdir()
    (source / "model.bin.part1").write_bytes(b"first half|")
    (source / "model.bin.part2").write_bytes(b"second half")
    (source / "config.json").write_text("{}")
    spec = ModelSpec("fake", "fake", {
        "model.bin": sha256(b"first half|second half"), "config.json": sha256(b"{}"),
    })
    return [source / "model.bin.part1", source / "model.bin.part2"], [source / "config.json"], spec


def test_assembly_concatenates_the_parts_and_verifies_them(tmp_path: Path, parts: Parts) -> None:
    pieces, extras, spec = parts
    folder = assemble_model(tmp_path / "cache" / "fake", pieces, extras, spec)
    assert (folder / "model.bin").read_bytes() == b"first half|second half"
    assert (folder / "config.json").read_text() == "{}"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin"]  # no partial files left


def test_a_tampered_part_is_refused(tmp_path: Path, parts: Parts) -> None:
    pieces, extras, spec = parts
    pieces[1].write_bytes(b"second half, altered")
    with pytest.raises(ModelIntegrityError, match=r"model fake: .*model.bin has SHA-256 .* expected"):
        assemble_model(tmp_path / "cache" / "fake", pieces, extras, spec)


def test_a_damaged_assembled_model_is_rebuilt_and_a_verified_one_reused(tmp_path: Path, parts: Parts) -> None:
    pieces, extras, spec = parts
    folder = assemble_model(tmp_path / "cache" / "fake", pieces, extras, spec)
    (folder / "model.bin").write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError):
        verify_model(folder, spec)

    assemble_model(folder, pieces, extras, spec)
    assert (folder / "model.bin").read_bytes() == b"first half|second half"
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assemble_model(folder, pieces, extras, spec)
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # reused, not rewritten


def test_a_missing_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match=r"tokenizer\.json is missing"):
        verify_model(tmp_path, ModelSpec("x", "x", {"tokenizer.json": "0" * 64}))


def test_the_pinned_hashes_match_the_installed_model_packages(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    base = store.folder(BASE.name)
    assert base == tmp_path / "whisper-base"
    assert (base / "model.bin").stat().st_size == 145_217_532
    assert verify_model(store.folder(TINY_EN.name), TINY_EN)
    with pytest.raises(ValueError, match="unknown local speech model"):
        store.folder("large-v3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" today?", ("today", "?")),
        (" Hello,", ("Hello", ",")),
        (" week.", ("week", ".")),
        (" I've", ("I've", None)),
        (" 9", ("9", None)),
        (" well...", ("well", ".")),
        (' "quoted."', ("quoted", ".")),
        (" really?!", ("really", "!")),
        (" -", ("-", None)),
        (" ...", ("", ".")),
        (" 안녕하세요.", ("안녕하세요", ".")),
        ("好。", ("好", "\u3002")),
    ],
)
def test_whisper_words_split_into_a_word_and_its_punctuation(text: str, expected: tuple[str, str | None]) -> None:
    assert split_word(text) == expected


def words(*spec: tuple[str, float, float, int]) -> list[LabeledWord]:
    return [LabeledWord(text, start, end, 0.9, channel) for text, start, end, channel in spec]


def test_the_output_has_transcribe_items_segments_and_speaker_labels() -> None:
    document = build_transcribe_output("job-1", "123456789012", words(
        (" Hi,", 0.0, 0.3, 0), (" how", 0.3, 0.5, 0), (" are", 0.5, 0.7, 0), (" you?", 0.7, 1.0, 0),
        (" Fine.", 1.2, 1.6, 1), (" Thanks.", 3.5, 3.9, 1),  # a 1.9 s pause: a new segment
    ), show_speaker_labels=True, channel_identification=False, two_channels=True)

    results = document["results"]
    assert (document["jobName"], document["accountId"], document["status"]) == ("job-1", "123456789012", "COMPLETED")
    assert results["transcripts"] == [{"transcript": "Hi, how are you? Fine. Thanks."}]
    assert results["items"][0] == {
        "id": 0, "type": "pronunciation", "alternatives": [{"confidence": "0.9", "content": "Hi"}],
        "start_time": "0.0", "end_time": "0.3", "speaker_label": "spk_0",
    }
    assert results["items"][1] == {
        "id": 1, "type": "punctuation", "alternatives": [{"confidence": "0.0", "content": ","}],
        "speaker_label": "spk_0",
    }
    assert [(s["speaker_label"], s["transcript"], s["items"]) for s in results["audio_segments"]] == [
        ("spk_0", "Hi, how are you?", [0, 1, 2, 3, 4, 5]), ("spk_1", "Fine.", [6, 7]), ("spk_1", "Thanks.", [8, 9]),
    ]
    assert results["speaker_labels"]["speakers"] == 2
    assert results["speaker_labels"]["segments"][1] == {
        "start_time": "1.2", "end_time": "1.6", "speaker_label": "spk_1",
        "items": [{"start_time": "1.2", "end_time": "1.6", "speaker_label": "spk_1"}],
    }
    assert results["medscribe_attribution"] == "channel-energy"
    lines = parse_transcribe_output(document)
    assert [(line.speaker, line.text) for line in lines] == [
        ("spk_0", "Hi, how are you?"), ("spk_1", "Fine."), ("spk_1", "Thanks."),
    ]
    # the older layouts in the same document agree with audio_segments
    del results["audio_segments"]
    assert [(line.speaker, line.text) for line in parse_transcribe_output(document)] == [
        ("spk_0", "Hi, how are you?"), ("spk_1", "Fine."), ("spk_1", "Thanks."),
    ]


def test_channel_identification_output_lists_each_channels_items() -> None:
    document = build_transcribe_output("j", "1", words((" Hello.", 0.0, 0.5, 0), (" Hi.", 0.6, 0.9, 1)),
                                       show_speaker_labels=False, channel_identification=True, two_channels=True)
    channels = document["results"]["channel_labels"]
    assert channels["number_of_channels"] == 2
    assert [[i["alternatives"][0]["content"] for i in c["items"]] for c in channels["channels"]] == [
        ["Hello", "."], ["Hi", "."],
    ]
    assert all(i["channel_label"] for i in document["results"]["items"])
    assert "speaker_labels" not in document["results"]


def test_long_monologues_split_at_a_sentence_end_after_30_seconds() -> None:
    spoken = [(f" word{i}{'.' if i % 10 == 9 else ''}", i * 0.5, i * 0.5 + 0.4, 0) for i in range(100)]
    document = build_transcribe_output("j", "1", words(*spoken), show_speaker_labels=False,
                                       channel_identification=False, two_channels=False)
    segments = document["results"]["audio_segments"]
    assert len(segments) == 2
    assert segments[0]["transcript"].endswith("word69.")  # the first sentence end at or after 30 s
    assert document["results"]["medscribe_attribution"] == "single-speaker"
    assert "speaker_label" not in document["results"]["items"][0]


def test_empty_speech_gives_an_empty_transcript() -> None:
    document = build_transcribe_output("j", "1", [], show_speaker_labels=True, channel_identification=False,
                                       two_channels=False)
    assert document["results"]["transcripts"] == [{"transcript": ""}]
    assert parse_transcribe_output(document) == []


def test_each_word_goes_to_the_louder_channel() -> None:
    t = np.arange(4 * RATE) / RATE
    voice = (0.5 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    bleed = 0.05  # the other speaker is faintly audible on each microphone
    left = np.where(t < 2, voice, bleed * voice).astype(np.float32)
    right = np.where(t >= 2, voice, bleed * voice).astype(np.float32)
    spoken = [Word(" a", 0.2, 0.6, 1), Word(" b", 1.5, 1.5, 1), Word(" c", 2.4, 2.9, 1), Word(" d", 3.9, 4.5, 1)]

    assert attribute_channels(spoken, left, right) == [0, 0, 1, 1]


def stereo_wav(rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x10\x00\x00" * rate)
    return out.getvalue()


def test_media_is_decoded_with_its_format_rate_and_channels() -> None:
    audio = decode_media(stereo_wav(), "wav", 16000)
    assert (audio.media_format, audio.source_sample_rate, audio.source_channels) == ("wav", 16000, 2)
    assert len(audio.channels) == 2
    assert audio.duration == pytest.approx(1.0)
    mono = decode_media(wav_bytes(1.0))
    assert (mono.media_format, mono.source_sample_rate, mono.channels) == ("wav", 8000, ())
    assert len(mono.mono) == RATE


SAMPLE_MP3 = Path(__file__).resolve().parents[2] / "sample-data" / "audio" / "fareez" / "GAS0001.mp3"


@pytest.mark.parametrize("media", [SAMPLE_MP3.read_bytes(), stereo_wav(), wav_bytes(1.5, rate=8000)],
                         ids=["mp3-44k-stereo", "wav-16k-stereo", "wav-8k-mono"])
def test_decoding_gives_faster_whispers_samples_exactly(media: bytes) -> None:
    """decode_media reimplements faster_whisper.decode_audio without its per-call gc.collect()."""
    from faster_whisper import decode_audio

    ours = decode_media(media)
    if ours.source_channels == 1:
        assert np.array_equal(ours.mono, decode_audio(io.BytesIO(media)))
    else:
        left, right = decode_audio(io.BytesIO(media), split_stereo=True)
        assert len(left) > 0
        assert np.array_equal(ours.channels[0], left)
        assert np.array_equal(ours.channels[1], right)
        assert np.array_equal(ours.mono, ((left + right) / 2).astype(np.float32))


@pytest.mark.parametrize(
    ("media", "media_format", "rate", "reason"),
    [
        (b"this is a text note, not audio", "mp3", None, FORMAT_MISMATCH),
        (b"this is a text note, not audio", None, None, UNSUPPORTED_FORMAT),
        (wav_bytes(1.0), "mp3", None, FORMAT_MISMATCH),
        (wav_bytes(1.0, rate=8000), "wav", 16000, RATE_MISMATCH),
    ],
)
def test_media_the_service_would_refuse_fails_with_its_reason(
    media: bytes, media_format: str | None, rate: int | None, reason: str,
) -> None:
    with pytest.raises(MediaError) as caught:
        decode_media(media, media_format, rate)
    assert caught.value.reason == reason


def test_a_video_only_mp4_fails_for_having_no_audio_stream() -> None:
    from medscribe_local.media_decoding import NO_AUDIO_STREAM
    from tests.media import video_only_mp4

    with pytest.raises(MediaError) as caught:
        decode_media(video_only_mp4(), "mp4")
    assert caught.value.reason == NO_AUDIO_STREAM
    assert "no audio stream" in caught.value.reason


def test_vocabulary_files_in_list_and_table_form() -> None:
    assert parse_vocabulary_file("metformin\nLos-Angeles\n\n") == ["metformin", "Los-Angeles"]
    table = "Phrase\tIPA\tSoundsLike\tDisplayAs\nmetformin\t\tmet-for-min\t\nA.C.E.\t\t\tACE inhibitor\n"
    assert parse_vocabulary_file(table) == ["metformin", "ACE inhibitor"]


@pytest.mark.parametrize(("locale", "language"), [("en-US", "en"), ("ko-KR", "ko"), ("zh-TW", "zh"), ("de-CH", "de")])
def test_transcribe_locales_map_to_whisper_languages(locale: str, language: str) -> None:
    assert whisper_language(locale) == language


def test_identified_languages_map_back_to_the_jobs_options() -> None:
    assert transcribe_locale("en", ["en-GB", "ko-KR"]) == "en-GB"
    assert transcribe_locale("ko", []) == "ko-KR"
    assert transcribe_locale("fi", []) == "fi-FI"


def _tone_wav(path: Path, seconds: float, rate: int = 44_100, channels: int = 2) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    frames = np.repeat(tone[:, None], channels, axis=1) if channels == 2 else tone
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())
    return path.read_bytes()


def test_decoding_from_a_path_or_a_file_gives_the_samples_of_the_whole_bytes(tmp_path: Path) -> None:
    """The streamed decode (a path read as decoded, samples written in place) gives what the decode of
    the whole bytes in memory gave, and what faster-whisper gives: longer than one resample block."""
    from faster_whisper import decode_audio

    path = tmp_path / "long.wav"
    media = _tone_wav(path, 40.0)  # 40 s at 44.1 kHz: 1.76 M source samples, four resample blocks
    from_path = decode_media(path, "wav")
    with path.open("rb") as file:
        from_file = decode_media(file, "wav")
    left, right = decode_audio(io.BytesIO(media), split_stereo=True)
    assert len(from_path.mono) == len(left) == 40 * RATE
    for decoded in (from_path, from_file):
        assert np.array_equal(decoded.channels[0], left)
        assert np.array_equal(decoded.channels[1], right)
        assert np.allclose(decoded.mono, (left + right) / 2, atol=1e-6)


def test_windows_cover_the_audio_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    _tone_wav(path, 65.0, rate=16_000, channels=1)
    whole = decode_media(path).mono
    windows = list(pcm_windows(path, seconds=30.0))
    assert [len(w) for w in windows] == [30 * RATE, 30 * RATE, 5 * RATE]
    assert np.array_equal(np.concatenate(windows), whole)


def _tone(seconds: float, gaps: tuple[tuple[float, float], ...] = ()) -> np.ndarray:
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)
    for start, end in gaps:
        audio[int(start * RATE):int(end * RATE)] = 0.0
    return audio


def test_recognition_windows_cover_long_audio_and_cut_in_pauses() -> None:
    from medscribe_local.whisper_engine import recognition_windows

    audio = _tone(35.0, gaps=((8.0, 8.5), (15.5, 16.0)))
    bounds = recognition_windows(audio, window_seconds=10.0, search_seconds=3.0, span_seconds=0.5)
    assert bounds[0][0] == 0
    assert bounds[-1][1] == len(audio)
    assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(bounds))
    assert all(0 < end - start <= 10 * RATE for start, end in bounds)
    assert bounds[0][1] == int(8.25 * RATE)  # in the first pause, not at 10 s
    assert 15.5 * RATE <= bounds[1][1] <= 16.0 * RATE  # in the second pause
    assert recognition_windows(audio[:5 * RATE], window_seconds=10.0) == [(0, 5 * RATE)]


def test_long_audio_is_recognised_window_by_window_with_times_on_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from medscribe_local import whisper_engine
    from medscribe_local.whisper_engine import RecognitionOptions, WhisperRecognizer

    heard: list[int] = []

    class Model:
        def transcribe(self, audio: np.ndarray, **_: object) -> tuple[list[SimpleNamespace], None]:
            heard.append(len(audio))
            word = SimpleNamespace(word=" knee", start=1.0, end=1.5, probability=0.9)
            return [SimpleNamespace(words=[word])], None

    monkeypatch.setattr(whisper_engine, "RECOGNITION_WINDOW_SECONDS", 10.0)
    recognizer = WhisperRecognizer()
    monkeypatch.setattr(recognizer, "model", lambda name: Model())
    audio = _tone(25.0, gaps=((9.0, 9.6), (18.5, 19.1)))
    result = recognizer.recognize(audio, RecognitionOptions(model="tiny.en", language="en"))
    assert sum(heard) == len(audio)
    assert max(heard) <= 10 * RATE
    assert len(heard) == 3
    starts = [word.start for word in result.words]
    assert starts[0] == 1.0
    assert 1.0 + 9.0 <= starts[1] <= 1.0 + 9.6  # the second window starts in the first pause
    assert starts == sorted(starts)


def test_long_decodes_go_to_memory_mapped_files_with_the_same_samples(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from medscribe_local import media_decoding

    path = tmp_path / "long.wav"
    _tone_wav(path, 12.0)
    in_memory = decode_media(path, "wav")
    monkeypatch.setattr(media_decoding, "IN_MEMORY_SAMPLES", RATE)  # anything over a second is mapped
    monkeypatch.setattr(media_decoding, "_estimated_samples", lambda container, stream: 0)  # and grown
    mapped = decode_media(path, "wav")
    assert isinstance(mapped.mono.base, np.memmap) or isinstance(mapped.mono, np.memmap)
    assert np.array_equal(mapped.mono, in_memory.mono)
    assert np.array_equal(mapped.channels[0], in_memory.channels[0])
    assert np.array_equal(mapped.channels[1], in_memory.channels[1])
