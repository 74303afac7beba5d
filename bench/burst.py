"""A burst of audio uploads through the local runtime with instant engines: does the pipeline keep
the transcription cap, lose nothing and duplicate nothing under load?

Starts the runtime in this process (cdk.json settings, a temporary state folder) with an instant
speech engine (a `Recognizer` that answers a few words at once) and the offline note engine, then
uploads N one-second WAV files to the input bucket from a thread pool, all at once, and waits until
every encounter is terminal. Each upload runs the whole audio path: ingest (validation, a transcription
slot), the local Transcribe service (media read and decoded, Transcribe JSON written, job state
event), the transcript stage (numbered lines, tscribe CSV/DOCX), documentation, and the search index.

A background thread reads the slot counter (`EncounterRepository.slots_in_flight`) every 50 ms: the
number of encounters holding a transcription slot, which must never exceed
`max_concurrent_transcriptions`. The local Transcribe service runs as many job workers as the cap, so
the cap (not the service) is what limits concurrency. Printed: wall time, encounters/s, the peak of
the slot counter and of running jobs against the cap, lost uploads (no terminal record: must be 0),
duplicate records (more than one record per uploaded key: must be 0), jobs started per upload, and
per route the messages handled: more than one per message are redeliveries, which the local queues
make after `local_visibility_timeout_seconds` (5 s in cdk.json; AWS queues wait six times the function
timeout). `--visibility-timeout` overrides it for the run.

The size: 1,000 uploads by default (`--uploads 100` for a run of a minute and a half). Every upload is
audio, so each one also has tscribe's DOCX confidence chart drawn (the largest single cost left in a
profile taken mid-burst: about a fifth of the sampled stacks). The
local runtime made a burst cost more than linear time in several places; each is fixed in
`medscribe_local` with a test, and none applies to AWS:
- moto's TransactWriteItems deep-copied every table it touched, stream included, before each
  transaction (every transcription slot taken or given back is one): the emulator copies only what
  the transaction names;
- moto found the backend for every request under one lock by listing its package folder: cached;
- with the short local visibility timeout, invocations slowed by the load were delivered again while
  still running: the pollers keep a running invocation's messages invisible (AWS's six-times rule);
- moto's Query sorted the whole table for every key lookup: candidates are taken unsorted;
- moto's SQS counted the whole queue (three passes, two clock readings per message) for every
  message sent, and three times for every message received: the retention check reads its one
  attribute, and the counts take one pass;
- faster_whisper's decode_audio ran a full gc.collect() per recording, over the emulator's whole
  state, under the GIL: the local engine decodes without it.
The "emulator baseline" line times a TransactWriteItems and a GetItem before and after the burst, in
the same emulator: flat means no per-table cost is left. Nothing here applies to DynamoDB itself.

Reproduce: .venv/bin/python bench/burst.py [--uploads N] [--threads 16] [--visibility-timeout S] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.settings import load_settings
from medscribe_local.media_decoding import Audio
from medscribe_local.runtime import LocalRuntime
from medscribe_local.sample_audio import silence_wav
from medscribe_local.state import StatePaths
from medscribe_local.uploads import Upload, upload, wait_for_terminal
from medscribe_local.whisper_engine import Recognition, RecognitionOptions, Word

COMMAND = ".venv/bin/python bench/burst.py"
DEFAULT_UPLOADS = 1000  # about 13 to 14 minutes on 2 cores; see the README
WORDS = (" Good", " morning,", " what", " brings", " you", " in", " today?")


class InstantRecognizer:
    """The `Recognizer` protocol (medscribe_local.whisper_engine) without a model: a few words, at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def recognize(self, audio: Audio, options: RecognitionOptions,
                  cancelled: Callable[[], bool] = lambda: False) -> Recognition:
        with self._lock:
            self.calls += 1
        words = [Word(text, i * 0.1, i * 0.1 + 0.08, 0.99) for i, text in enumerate(WORDS)]
        return Recognition(words, options.language or "en")


def transaction_ms(table: str, rounds: int = 5) -> tuple[float, float]:
    """Median ms of a two-item TransactWriteItems and of a GetItem on the emulator's table (probe items
    outside every index and outside the stream filter, so the pipeline never sees them)."""
    client = aws_clients.client("dynamodb")
    key = {"pk": {"S": "BENCH#probe"}, "sk": {"S": "T0"}}
    writes, reads = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "BENCH#probe"}, "sk": {"S": f"T{n}"}}}}
            for n in range(2)])
        writes.append(time.perf_counter() - began)
        began = time.perf_counter()
        client.get_item(TableName=table, Key=key, ConsistentRead=True)
        reads.append(time.perf_counter() - began)
    return 1000 * statistics.median(writes), 1000 * statistics.median(reads)


class Progress:
    """A line on stderr every ten seconds while the burst runs: how many encounters are terminal."""

    def __init__(self, began: float, every: float = 10.0) -> None:
        self.began = began
        self.every = every
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every or done == total:
            self.last = now
            print(f"  ... {done}/{total} terminal after {now - self.began:.0f} s", file=sys.stderr, flush=True)


class SlotSampler:
    """Reads the slot counter every `interval` seconds in a background thread; keeps the peak."""

    def __init__(self, repository: EncounterRepository, interval: float = 0.05) -> None:
        self.repository = repository
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-slot-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.repository.slots_in_flight())
            self.samples += 1

    def __enter__(self) -> SlotSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uploads", type=int, default=DEFAULT_UPLOADS)
    parser.add_argument("--threads", type=int, default=16, help="uploading threads")
    parser.add_argument("--visibility-timeout", type=int, default=None,
                        help="local queue visibility timeout in seconds (default: cdk.json's)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for terminal records")
    args = parser.parse_args()
    # the handlers' metrics flush warns for invocations without metrics (e.g. repeated events): noise here
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    body = silence_wav(1.0)
    keys = [f"audio/burst/{i:05d}.wav" for i in range(args.uploads)]
    recognizer = InstantRecognizer()
    settings = load_settings()
    if args.visibility_timeout is not None:
        settings = settings.model_copy(update={"local_visibility_timeout_seconds": args.visibility_timeout})
    cap = settings.max_concurrent_transcriptions

    with (tempfile.TemporaryDirectory(prefix="medscribe-bench-burst-") as state,
          LocalRuntime(StatePaths(Path(state)), settings, recognizer, transcribe_workers=cap) as rt):
        repository = EncounterRepository(rt.resources.table)
        bucket = rt.resources.input_bucket
        before = transaction_ms(rt.resources.table)
        with SlotSampler(repository) as sampler:
            began = time.perf_counter()
            with ThreadPoolExecutor(args.threads, thread_name_prefix="bench-upload") as pool:
                uploads: list[Upload] = list(pool.map(lambda key: upload(bucket, key, body), keys))
            uploaded = time.perf_counter() - began
            outcome = wait_for_terminal(repository, [u.encounter_id for u in uploads], args.timeout,
                                        on_progress=Progress(began))
            wall = time.perf_counter() - began
        records = repository.list()
        service = rt.transcribe.stats()
        stats = rt.stats()
        slots_after = repository.slots_in_flight()
        after = transaction_ms(rt.resources.table)

    count = args.uploads
    per_key = Counter(record.source_key for record in records if record.source_key.startswith("audio/burst/"))
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    statuses = Counter(e.status.value for e in outcome.encounters.values())
    done = count - len(outcome.pending)
    visibility = settings.local_visibility_timeout_seconds
    print(f"burst benchmark: {count} one-second WAV uploads from {args.threads} threads, instant speech engine, "
          f"offline note engine; cap max_concurrent_transcriptions = {cap}, batch size {settings.batch_size}, "
          f"local visibility timeout {visibility} s")
    print(f"  uploads done after:   {uploaded:.2f} s")
    print(f"  all terminal after:   {wall:.2f} s -> {done / wall:.2f} encounters/s "
          f"({1000 * wall / count:.0f} ms per encounter)")
    print(f"  statuses:             {', '.join(f'{s} {n}' for s, n in sorted(statuses.items()))}")
    print(f"  slots in flight:      peak {sampler.peak} of cap {cap} ({sampler.samples} samples, every 50 ms); "
          f"{slots_after} held after the run")
    print(f"  transcription jobs:   {service.started} started for {count} uploads, {service.completed} completed, "
          f"{service.failed} failed; peak {service.max_running} running at once ({rt.transcribe_workers} workers)")
    print(f"  lost:                 {len(outcome.pending)} (uploads without a terminal record)")
    print(f"  duplicates:           {duplicates} (records beyond one per uploaded key; {len(per_key)} keys)")
    print(f"  messages handled per route (one per message without redeliveries after {visibility} s):")
    for name, route in stats.items():
        if route.invocations:
            print(f"    {name:<11} {route.messages_ok:>6} ok, {route.messages_failed} failed, "
                  f"{route.invocations} invocations ({route.failed_invocations} failed), "
                  f"max {route.max_in_flight} in flight")
    print(f"  emulator baseline:    TransactWriteItems {before[0]:.1f} ms before the burst, {after[0]:.1f} ms after "
          f"({after[0] / before[0]:.1f}x; GetItem {before[1]:.1f} -> {after[1]:.1f} ms; the slots are transactions)")
    flags = "" if count == DEFAULT_UPLOADS else f" --uploads {count}"
    flags += "" if args.threads == 16 else f" --threads {args.threads}"
    flags += "" if args.visibility_timeout is None else f" --visibility-timeout {args.visibility_timeout}"
    print(f"  reproduce:            {COMMAND}{flags}")
    ok = not outcome.pending and not duplicates and sampler.peak <= cap and service.max_running <= cap
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
