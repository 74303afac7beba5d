"""Make the sample encounters: two-voice audio and ground-truth transcripts from Fareez et al. (2022).

Source: the CC BY 4.0 simulated patient-physician interviews in tests/fixtures/dialogues/fareez-osce
(Fareez F. et al., "A dataset of simulated patient-physician medical interviews with a focus on
respiratory cases", Scientific Data 9:313, 2022). Each excerpt is the opening turns of one interview
(about 1.5-2 minutes of speech), spoken by espeak-ng: the clinician with a male voice on the LEFT
channel, the patient with a female voice on the RIGHT channel (stereo, as a two-microphone or
telephone recording would be), encoded as 16 kHz 32 kbps mp3 with ffmpeg.

Outputs (committed, so nobody needs espeak-ng to run the demo):
  audio/fareez/<ID>.mp3          the recording
  ground-truth/fareez/<ID>.txt   what was spoken, one turn per line, no speaker prefixes

One Korean recording the same way: the whole of the short dialogue tests/fixtures/dialogues/ko-medscribe
/KO0001.txt (written for this project), spoken by espeak-ng's Korean voice (male pitch left, the female
variant right), as audio/ko-KR/KO0001.mp3: its folder asks for Korean transcription whatever the
deployment's language. It has no ground truth in sample-data (the demo's scoring and self-heal stay in
the deployment's language); tests/e2e/test_languages.py scores it against the dialogue.

Requires espeak-ng and ffmpeg (Debian: apt-get install espeak-ng ffmpeg). Deterministic for a given
espeak-ng version. Run: medscribe samples make-audio
"""

from __future__ import annotations

import array
import struct
import subprocess
import tempfile
import wave
from pathlib import Path

from medscribe.domain.dialogue import CLINICIAN, parse_dialogue
from medscribe.settings import project_root

HERE = project_root() / "sample-data"
SOURCE = project_root() / "tests" / "fixtures" / "dialogues" / "fareez-osce"  # see its SOURCE.txt and LICENSE.txt
KOREAN_SOURCE = project_root() / "tests" / "fixtures" / "dialogues" / "ko-medscribe"  # see its SOURCE.txt
ENCOUNTERS = ("CAR0003", "RES0006", "GAS0001")
KOREAN_ENCOUNTERS = ("KO0001",)
TARGET_WORDS = 260
Voice = tuple[str, str, str, str]  # espeak-ng voice, pitch, words per minute, gap between words (10 ms units)
VOICES: dict[str, Voice] = {CLINICIAN: ("en-us", "45", "165", "0"), "patient": ("en-us+f3", "60", "165", "0")}
# Korean slower, with gaps between words: espeak-ng's Korean is rule-based and slurs at 165 wpm (the
# local Whisper base model heard little of it then; it still hears it poorly, see README "Languages").
KOREAN_VOICES: dict[str, Voice] = {CLINICIAN: ("ko", "45", "120", "6"), "patient": ("ko+f3", "60", "120", "6")}
RATE = 22050  # espeak-ng's output rate
GAP_SECONDS = 0.45


def speak(text: str, voice: Voice, workdir: Path) -> array.array[int]:
    name, pitch, speed, gap = voice
    out = workdir / "turn.wav"
    subprocess.run(["espeak-ng", "-v", name, "-p", pitch, "-s", speed, "-g", gap, "-w", str(out), text], check=True)
    with wave.open(str(out), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
            raise RuntimeError("espeak-ng produced an unexpected WAV format")
        samples = array.array("h")
        samples.frombytes(wav.readframes(wav.getnframes()))
    return samples


def excerpt(encounter: str) -> list[tuple[str, str]]:
    turns = parse_dialogue((SOURCE / f"{encounter}.txt").read_text(encoding="utf-8"))
    chosen, words = [], 0
    for turn in turns:
        chosen.append((turn.speaker, turn.text))
        words += len(turn.text.split())
        if words >= TARGET_WORDS and turn.speaker != CLINICIAN:
            break
    return chosen


def korean_turns(encounter: str) -> list[tuple[str, str]]:
    """The whole Korean dialogue (it is short)."""
    return [(turn.speaker, turn.text)
            for turn in parse_dialogue((KOREAN_SOURCE / f"{encounter}.txt").read_text(encoding="utf-8"))]


def render(encounter: str, workdir: Path) -> float:
    turns = excerpt(encounter)
    seconds = _stereo_mp3(turns, VOICES, workdir, HERE / "audio" / "fareez" / f"{encounter}.mp3")
    truth = HERE / "ground-truth" / "fareez" / f"{encounter}.txt"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text("\n".join(text for _, text in turns) + "\n", encoding="utf-8")
    return seconds


def render_korean(encounter: str, workdir: Path) -> float:
    return _stereo_mp3(korean_turns(encounter), KOREAN_VOICES, workdir, HERE / "audio" / "ko-KR" / f"{encounter}.mp3")


def _stereo_mp3(turns: list[tuple[str, str]], voices: dict[str, Voice], workdir: Path, mp3: Path) -> float:
    """The turns spoken into a stereo mp3 (clinician left, patient right); returns its seconds."""
    stereo = array.array("h")
    gap = array.array("h", [0] * int(GAP_SECONDS * RATE) * 2)
    for speaker, text in turns:
        mono = speak(text, voices[speaker], workdir)
        frames = array.array("h", [0] * (len(mono) * 2))
        offset = 0 if speaker == CLINICIAN else 1
        frames[offset::2] = mono
        stereo.extend(frames)
        stereo.extend(gap)
    wav_path = workdir / "dialogue.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(stereo.tobytes())
    mp3.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav_path), "-ac", "2", "-ar", "16000", "-b:a", "32k",
         "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", str(mp3)],
        check=True,
    )
    return len(stereo) / 2 / RATE


def make_all() -> dict[str, float]:
    """Render every sample encounter; returns seconds of audio per encounter."""
    with tempfile.TemporaryDirectory() as tmp:
        seconds = {encounter: render(encounter, Path(tmp)) for encounter in ENCOUNTERS}
        return seconds | {encounter: render_korean(encounter, Path(tmp)) for encounter in KOREAN_ENCOUNTERS}


def silence_wav(seconds: float, rate: int = 8000) -> bytes:
    """A canonical PCM 16-bit mono WAV of silence: valid for ingest's checks and for the decoder (tests,
    benchmarks)."""
    data = b"\x00\x00" * int(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", len(data))
    return header + data
