"""Peak memory of the local speech engine's media decoding, by audio length: the old full decode
against the streamed one, measured in the same run.

For each length (default 5 and 20 minutes) a WAV is synthesised on the fly into a temporary folder
(44.1 kHz, 16-bit stereo, the shape of a common recorder's file: a tone with noise; written in
10-second pieces, so the bench itself holds no whole file). Each measurement runs in a fresh
interpreter, and the figure is that process's peak resident set (`resource.getrusage`, ru_maxrss)
after its decode, minus nothing: the interpreter with numpy and PyAV loaded is printed as `baseline`.

- old-full: what the engine did before: the whole file read into memory, FFmpeg's 16 kHz s16 output
  collected as a list of blocks, concatenated, converted to float32 and scaled (each a full copy),
  then split into left/right and mixed to mono (the reference, kept here only as the baseline);
- decode_media: today's full decode (medscribe_local.media_decoding.decode_media) from the path:
  the file read as decoded, samples written in place into the result arrays;
- streamed: medscribe_local.media_decoding.pcm_windows over the path, 30-second windows consumed
  one at a time (here: a running sum of squares), as long audio is processed window by window.

The ratio column is old-full's peak over streamed's, for the same file.

Reproduce: .venv/bin/python bench/audio_memory.py [--minutes 5 20]
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

RATE = 44_100
PIECE_SECONDS = 10
MODES = ("baseline", "old-full", "decode_media", "streamed")


def synthesise(path: Path, minutes: float) -> None:
    """A stereo 16-bit WAV of `minutes`: a 220/330 Hz tone pair with a little noise, piece by piece."""
    rng = np.random.default_rng(7)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        done = 0
        total = int(minutes * 60 * RATE)
        while done < total:
            count = min(PIECE_SECONDS * RATE, total - done)
            t = (done + np.arange(count)) / RATE
            left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(count)
            right = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(count)
            frames = (np.stack([left, right], axis=1) * 32767).astype("<i2")
            wav.writeframes(frames.tobytes())
            done += count


def old_full_decode(media: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decode the engine ran before streaming (for the baseline only)."""
    import av

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="stereo", rate=16_000)
    fifo = av.audio.fifo.AudioFifo()
    chunks: list[np.ndarray] = []
    with av.open(io.BytesIO(media), mode="r", metadata_errors="ignore") as container:
        for frame in container.decode(audio=0):
            frame.pts = None
            fifo.write(frame)
            if fifo.samples >= 500_000:
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(fifo.read()))
        if fifo.samples > 0:
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(fifo.read()))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    pcm = np.concatenate(chunks).astype(np.float32) / 32768.0
    left, right = pcm[0::2], pcm[1::2]
    return ((left + right) / 2).astype(np.float32), left, right


def measure(mode: str, path: Path) -> None:
    """Run one decode in this (fresh) process; print the samples seen, seconds and peak RSS in KiB."""
    import av  # noqa: F401  (loaded in every mode, the baseline included)

    from medscribe_local.media_decoding import decode_media, pcm_windows

    started = time.perf_counter()
    samples = 0
    if mode == "old-full":
        mono, _, _ = old_full_decode(path.read_bytes())
        samples = len(mono)
    elif mode == "decode_media":
        samples = len(decode_media(path, "wav").mono)
    elif mode == "streamed":
        energy = 0.0
        for window in pcm_windows(path):
            energy += float(np.square(window, dtype=np.float64).sum())
            samples += len(window)
    elapsed = time.perf_counter() - started
    print(samples, round(elapsed, 3), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run(mode: str, path: Path) -> tuple[int, float, float]:
    out = subprocess.run([sys.executable, __file__, "--measure", mode, str(path)], check=True, capture_output=True,
                         text=True).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], Path(args.measure[1]))
        return
    print(f"{'audio':>8} {'file MB':>8} {'mode':>13} {'16k samples':>12} {'seconds':>8} {'peak RSS MB':>12} "
          f"{'old/streamed':>13}")
    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:
            path = Path(folder) / f"{minutes:g}min.wav"
            synthesise(path, minutes)
            peaks = {}
            for mode in MODES:
                samples, seconds, peak = run(mode, path)
                peaks[mode] = peak
                ratio = f"{peaks['old-full'] / peak:.1f}x" if mode == "streamed" else ""
                print(f"{minutes:>6g} m {path.stat().st_size / 2**20:>8.0f} {mode:>13} {samples:>12} {seconds:>8.2f} "
                      f"{peak:>12.0f} {ratio:>13}")
            path.unlink()
    print("\nReproduce: .venv/bin/python bench/audio_memory.py --minutes " + " ".join(f"{m:g}" for m in args.minutes))


if __name__ == "__main__":
    main()
