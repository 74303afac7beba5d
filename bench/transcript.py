"""Transcript benchmarks: our Transcribe-output parser against tscribe, and the local speech engine.

(a) Parsing. A ~9,000-word Transcribe output is built by repeating the tscribe sample
    tests/fixtures/transcribe-output/tscribe/03-speaker-identification.json with shifted times.
    Timed in the same run: our `parse_transcribe_output` plus formatting "N<TAB>speaker<TAB>text"
    lines, against `tscribe.decode_transcript` (the DataFrame it writes its CSV from).
(b) The local speech engine on each sample-data/audio/fareez/*.mp3: real-time factor (audio seconds
    / processing seconds; decoding, recognition, channel attribution and the output document, model
    loading timed separately) and word error rate against sample-data/ground-truth (lowercased,
    punctuation removed; needs jiwer, else skipped). Also the number of speaker turns found against
    the ground truth's.

Reproduce: .venv/bin/python bench/transcript.py [--words 9000] [--model auto|tiny.en|base|all] [--beam 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
from typing import Any

from medscribe.domain.transcript_lines import parse_transcribe_output
from medscribe.settings import project_root
from medscribe_local.media_decoding import decode_media
from medscribe_local.transcribe_output import LabeledWord, attribute_channels, build_transcribe_output
from medscribe_local.whisper_engine import RecognitionOptions, WhisperRecognizer

ROOT = project_root()
SAMPLE_OUTPUT = ROOT / "tests" / "fixtures" / "transcribe-output" / "tscribe" / "03-speaker-identification.json"
AUDIO = ROOT / "sample-data" / "audio" / "fareez"
TRUTH = ROOT / "sample-data" / "ground-truth" / "fareez"
COMMAND = ".venv/bin/python bench/transcript.py"


# -- (a) parsing ---------------------------------------------------------------------------------


def _shift(value: Any, offset: float) -> str:
    return f"{float(value) + offset:.2f}"


def long_transcript(words: int) -> dict[str, Any]:
    """The sample repeated, times shifted past the previous copy, until it has at least `words` words."""
    sample = json.loads(SAMPLE_OUTPUT.read_text(encoding="utf-8"))
    results = sample["results"]
    per_copy = sum(item["type"] == "pronunciation" for item in results["items"])
    span = max(float(item["end_time"]) for item in results["items"] if "end_time" in item) + 1.0
    document = copy.deepcopy(sample)
    out = document["results"]
    out["items"], out["speaker_labels"]["segments"], texts = [], [], []
    for number in range(-(-words // per_copy)):
        offset = number * span
        for item in results["items"]:
            shifted = dict(item)
            for field in ("start_time", "end_time"):
                if field in shifted:
                    shifted[field] = _shift(shifted[field], offset)
            out["items"].append(shifted)
        for segment in results["speaker_labels"]["segments"]:
            shifted_segment = {**segment, "start_time": _shift(segment["start_time"], offset),
                               "end_time": _shift(segment["end_time"], offset)}
            shifted_segment["items"] = [
                {**ref, "start_time": _shift(ref["start_time"], offset), "end_time": _shift(ref["end_time"], offset)}
                for ref in segment["items"]
            ]
            out["speaker_labels"]["segments"].append(shifted_segment)
        texts.append(results["transcripts"][0]["transcript"])
    out["transcripts"] = [{"transcript": " ".join(texts)}]
    return document


def ours(document: dict[str, Any]) -> str:
    return "\n".join(f"{line.n}\t{line.speaker}\t{line.text}" for line in parse_transcribe_output(document))


def bench_parsing(words: int) -> None:
    import tscribe  # heavy (pandas): imported here only

    document = long_transcript(words)
    count = sum(item["type"] == "pronunciation" for item in document["results"]["items"])
    repeats = 5
    began = time.perf_counter()
    for _ in range(repeats):
        text = ours(document)
    our_seconds = (time.perf_counter() - began) / repeats
    began = time.perf_counter()
    frame = tscribe.decode_transcript(document)
    tscribe_seconds = time.perf_counter() - began
    print(f"(a) parse + format a {count}-word Transcribe output (speaker_labels layout)")
    print(f"    ours:    {our_seconds * 1000:9.1f} ms  ({len(text.splitlines())} lines, mean of {repeats})")
    print(f"    tscribe: {tscribe_seconds * 1000:9.1f} ms  ({len(frame)} rows, decode_transcript)")
    print(f"    tscribe / ours = {tscribe_seconds / our_seconds:.0f}x")


# -- (b) the local speech engine ---------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def word_error_rate(truth: str, hypothesis: str) -> float | None:
    try:
        import jiwer
    except ImportError:
        return None
    return float(jiwer.wer(normalise(truth), normalise(hypothesis)))


def bench_engine(model_choice: str, beam: int) -> None:
    models = ["tiny.en", "base"] if model_choice == "all" else [model_choice]
    recognizer = WhisperRecognizer(beam_size=beam)
    print(f"(b) local speech engine (faster-whisper int8, beam {beam}, {recognizer.workers} workers x "
          f"{recognizer.cpu_threads} threads; RTF = audio s / processing s)")
    for name in models:
        model = "tiny.en" if name == "auto" else name
        began = time.perf_counter()
        recognizer.model(model)
        print(f"  model {model}: loaded (with SHA-256 verification) in {time.perf_counter() - began:.2f} s")
        totals = [0.0, 0.0]
        for path in sorted(AUDIO.glob("*.mp3")):
            began = time.perf_counter()
            audio = decode_media(path.read_bytes(), "mp3")
            recognition = recognizer.recognize(audio.mono, RecognitionOptions(model, "en"))
            labels = attribute_channels(recognition.words, *audio.channels)
            document = build_transcribe_output(
                path.stem, "000000000000",
                [LabeledWord(w.text, w.start, w.end, w.confidence, c) for w, c in zip(recognition.words, labels,
                                                                                     strict=True)],
                show_speaker_labels=True, channel_identification=False, two_channels=True,
            )
            seconds = time.perf_counter() - began
            lines = parse_transcribe_output(document)
            truth_lines = (TRUTH / f"{path.stem}.txt").read_text(encoding="utf-8").splitlines()
            wer = word_error_rate(" ".join(truth_lines), " ".join(line.text for line in lines))
            totals[0] += audio.duration
            totals[1] += seconds
            shown = "skipped (jiwer not installed)" if wer is None else f"{wer:.1%}"
            rtf = audio.duration / seconds
            print(f"    {path.name}: {audio.duration:6.1f} s audio in {seconds:5.2f} s -> RTF {rtf:5.1f}; "
                  f"WER {shown}; turns {len(lines)} (ground truth {len(truth_lines)})")
        print(f"    all: RTF {totals[0] / totals[1]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=9000)
    parser.add_argument("--model", choices=["auto", "tiny.en", "base", "all"], default="all")
    parser.add_argument("--beam", type=int, default=2)
    args = parser.parse_args()
    bench_parsing(args.words)
    bench_engine(args.model, args.beam)
    print(f"reproduce: {COMMAND} --words {args.words} --model {args.model} --beam {args.beam}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
