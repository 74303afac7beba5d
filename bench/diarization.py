"""Mono-recording diarization (medscribe_local.diarization): diarization error rate and real-time factor.

Mixes with known turns, all mono 16 kHz:
  downmix <ID>   each stereo sample recording (sample-data/audio/fareez) averaged to one channel; the
                 reference is who is audible on which channel (clinician left, patient right), per
                 10 ms frame (a channel counts as speaking when its frame energy is within 40 dB of
                 its loudest frame)
  rendered ...   new two-voice dialogues spoken by espeak-ng from the Fareez interviews the samples do
                 not use (tests/fixtures/dialogues/fareez-osce), with other voices, speeds, pauses and
                 overlapping turns (a turn starting before the previous one ends); the reference is
                 each voice's audible frames
DER = (missed speech + false alarm + speaker confusion) / reference speech, over 10 ms frames, with
the one-to-one speaker mapping that minimises it (Hungarian), no forgiveness collar, and overlapped
frames counted per speaker (NIST's definition as pyannote.metrics computes it without a collar).
The baseline, in the same run, is what local mode did before: all speech one speaker (its VAD is the
same Silero VAD, so its figure is the floor set by voice activity plus the second speaker's time).
RTF = diarization wall time / audio duration (voice activity, embeddings, clustering; not recognition).

Requires the diarization extra (make install) and, for the rendered mixes, espeak-ng (apt-get install
espeak-ng). Reproduce: .venv/bin/python bench/diarization.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for folder in ("layers/medscribe/python", "layers/local"):
    sys.path.insert(0, str(ROOT / folder))

from medscribe.domain.dialogue import CLINICIAN, parse_dialogue  # noqa: E402
from medscribe_local import diarization  # noqa: E402
from medscribe_local.media_decoding import SAMPLE_RATE, decode_media  # noqa: E402

FRAME = 0.01
SAMPLES = ROOT / "sample-data" / "audio" / "fareez"
DIALOGUES = ROOT / "tests" / "fixtures" / "dialogues" / "fareez-osce"


@dataclass(frozen=True)
class Mix:
    name: str
    audio: np.ndarray  # mono float32 at SAMPLE_RATE
    reference: np.ndarray  # frames x speakers, bool


def active_frames(signal: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Per 10 ms frame: is this signal audible (energy within `floor_db` of its loudest frame)?"""
    size = int(FRAME * SAMPLE_RATE)
    frames = len(signal) // size
    energy = np.square(signal[:frames * size].astype(np.float64)).reshape(frames, size).mean(axis=1)
    loudest = energy.max() if frames else 0.0
    return energy > loudest * 10 ** (floor_db / 10) if loudest > 0 else np.zeros(frames, dtype=bool)


def downmixes() -> list[Mix]:
    mixes = []
    for path in sorted(SAMPLES.glob("*.mp3")):
        with path.open("rb") as handle:
            audio = decode_media(handle, None, None)
        left, right = audio.channels
        reference = np.stack([active_frames(left), active_frames(right)], axis=1)
        mixes.append(Mix(f"downmix {path.stem}", audio.mono.astype(np.float32), reference))
    return mixes


@dataclass(frozen=True)
class Voices:
    label: str
    clinician: tuple[str, str, str]  # espeak-ng voice, pitch, words per minute
    patient: tuple[str, str, str]
    gap: float  # seconds between turns; negative: the next turn overlaps the previous one's end
    overlap_every: int = 0  # every n-th turn starts `overlap` seconds early (0: never)
    overlap: float = 0.0


RENDERINGS = (
    ("MSK0006", Voices("other voices", ("en-gb", "40", "150"), ("en-us+f2", "70", "175"), 0.35)),
    ("RES0009", Voices("faster, overlaps", ("en-us+m3", "50", "190"), ("en-gb+f4", "65", "200"), 0.2,
                       overlap_every=4, overlap=0.6)),
    ("MSK0006", Voices("two low voices", ("en-us", "35", "160"), ("en-gb+m2", "45", "170"), 0.3)),
)


def speak(text: str, voice: tuple[str, str, str], workdir: Path) -> np.ndarray:
    out = workdir / "turn.wav"
    name, pitch, speed = voice
    subprocess.run(["espeak-ng", "-v", name, "-p", pitch, "-s", speed, "-w", str(out), text], check=True)
    with wave.open(str(out), "rb") as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    positions = np.arange(0, len(samples), rate / SAMPLE_RATE)  # resampled to 16 kHz (linear)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def rendered(max_seconds: float) -> list[Mix]:
    mixes = []
    with tempfile.TemporaryDirectory() as tmp:
        for encounter, voices in RENDERINGS:
            turns = parse_dialogue((DIALOGUES / f"{encounter}.txt").read_text(encoding="utf-8"))
            tracks = {CLINICIAN: np.zeros(0, np.float32), "patient": np.zeros(0, np.float32)}
            position = 0
            for number, turn in enumerate(turns, start=1):
                role = CLINICIAN if turn.speaker == CLINICIAN else "patient"
                speech = speak(turn.text, voices.clinician if role == CLINICIAN else voices.patient, Path(tmp))
                early = voices.overlap if voices.overlap_every and number % voices.overlap_every == 0 else 0.0
                start = max(0, position - int(early * SAMPLE_RATE))
                end = start + len(speech)
                for name in tracks:
                    if len(tracks[name]) < end:
                        tracks[name] = np.pad(tracks[name], (0, end - len(tracks[name])))
                tracks[role][start:end] += speech
                position = end + int(voices.gap * SAMPLE_RATE)
                if position / SAMPLE_RATE >= max_seconds:
                    break
            clinician, patient = tracks[CLINICIAN], tracks["patient"]
            mono = (clinician + patient) / 2
            reference = np.stack([active_frames(clinician), active_frames(patient)], axis=1)
            mixes.append(Mix(f"rendered {encounter} ({voices.label})", mono.astype(np.float32), reference))
    return mixes


def hypothesis_frames(turns: list[tuple[float, float, int]], frames: int) -> np.ndarray:
    speakers = max((s for _, _, s in turns), default=0) + 1
    found = np.zeros((frames, speakers), dtype=bool)
    for start, end, speaker in turns:
        found[int(start / FRAME):min(frames, int(end / FRAME)), speaker] = True
    return found


def der(reference: np.ndarray, hypothesis: np.ndarray) -> float:
    from scipy.optimize import linear_sum_assignment

    frames = min(len(reference), len(hypothesis))
    ref, hyp = reference[:frames], hypothesis[:frames]
    overlap = ref.astype(np.int64).T @ hyp.astype(np.int64)  # frames where ref i and hyp j both speak
    rows, cols = linear_sum_assignment(-overlap)
    correct = overlap[rows, cols].sum()
    ref_count, hyp_count = ref.sum(axis=1), hyp.sum(axis=1)
    total = ref_count.sum()
    # NIST: per frame, max(ref, hyp) - matched speakers = miss + false alarm + confusion
    matched = np.zeros(frames, dtype=np.int64)
    for i, j in zip(rows, cols, strict=True):
        matched += ref[:, i] & hyp[:, j]
    errors = np.maximum(ref_count, hyp_count) - matched
    del correct
    return float(errors.sum() / total) if total else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-seconds", type=float, default=90.0, help="length of each rendered mix")
    args = parser.parse_args()
    print("Mono diarization: DER and real-time factor (medscribe_local.diarization)")
    print("Reproduce: .venv/bin/python bench/diarization.py\n")
    if not diarization.available():
        print("SKIPPED: the diarization extra is not installed (make install)")
        return
    mixes = downmixes()
    if shutil.which("espeak-ng"):
        mixes += rendered(args.max_seconds)
    else:
        print("(rendered mixes skipped: espeak-ng is not installed)")
    engine = diarization.Diarizer()
    engine.timeline(mixes[0].audio[:SAMPLE_RATE * 2], 2)  # load the encoder outside the timings
    print(f"{'mix':44}{'seconds':>8}{'overlap':>9}{'DER':>8}{'one speaker':>13}{'speakers':>10}{'RTF':>7}")
    totals = []
    for mix in mixes:
        began = time.perf_counter()
        turns = engine.timeline(mix.audio, 2)
        took = time.perf_counter() - began
        frames = len(mix.reference)
        found = hypothesis_frames(turns, frames)
        single = np.zeros((frames, 1), dtype=bool)
        for start, end, _ in turns:
            single[int(start / FRAME):min(frames, int(end / FRAME)), 0] = True
        seconds = len(mix.audio) / SAMPLE_RATE
        overlapped = float((mix.reference.sum(axis=1) > 1).sum() / max(1, mix.reference.any(axis=1).sum()))
        error, baseline = der(mix.reference, found), der(mix.reference, single)
        totals.append((error, baseline, seconds, took))
        print(f"{mix.name:44}{seconds:8.1f}{overlapped:9.1%}{error:8.1%}{baseline:13.1%}"
              f"{len({s for _, _, s in turns}):>10}{took / seconds:7.3f}")
    weight = sum(t[2] for t in totals)
    print(f"{'all (weighted by duration)':44}{weight:8.1f}{'':9}{sum(t[0] * t[2] for t in totals) / weight:8.1%}"
          f"{sum(t[1] * t[2] for t in totals) / weight:13.1%}{'':10}{sum(t[3] for t in totals) / weight:7.3f}")


if __name__ == "__main__":
    main()
