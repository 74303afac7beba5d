"""Ingest throughput of the local runtime, against the raw cost of the emulator it runs on.

Starts the runtime in this process (cdk.json settings), uploads N small valid objects (half WAV,
half text notes), and measures the wall time until every encounter is terminal. The baseline, in
the same process and emulator, is one put_object (to a bucket without notifications) plus one
get_item per object: the least any pipeline on this emulator must spend per object.

Reproduce: .venv/bin/python bench/ingest.py [--objects 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.media

from medscribe.adapters import aws_clients
from medscribe.adapters.encounters import EncounterRepository
from medscribe.domain.encounter import EncounterStatus
from medscribe_local.runtime import LocalRuntime
from medscribe_local.state import StatePaths
from medscribe_local.uploads import upload, wait_for_terminal
from tests.media import wav_bytes


def inputs(count: int) -> list[tuple[str, bytes]]:
    wav = wav_bytes(0.5)
    return [
        (f"audio/bench/{i:05d}.wav", wav) if i % 2
        else (f"text/bench/{i:05d}.txt", f"Note {i}: mild headache for two days; no fever.\n".encode())
        for i in range(count)
    ]


def baseline(runtime: LocalRuntime, objects: list[tuple[str, bytes]]) -> float:
    s3, dynamodb = aws_clients.client("s3"), aws_clients.client("dynamodb")
    bucket, table = runtime.resources.artifacts_bucket, runtime.resources.table
    began = time.perf_counter()
    for key, body in objects:
        s3.put_object(Bucket=bucket, Key=f"baseline/{key}", Body=body)
        dynamodb.get_item(TableName=table, Key={"pk": {"S": f"ENC#{key}"}, "sk": {"S": "ENC"}}, ConsistentRead=True)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    count = args.objects
    objects = inputs(count)

    with tempfile.TemporaryDirectory(prefix="medscribe-bench-") as state, LocalRuntime(StatePaths(Path(state))) as rt:
        settings, route = rt.settings, rt.resources.routes["ingest"]
        began = time.perf_counter()
        uploads = [upload(rt.resources.input_bucket, key, body) for key, body in objects]
        uploaded = time.perf_counter() - began
        outcome = wait_for_terminal(
            EncounterRepository(rt.resources.table), [u.encounter_id for u in uploads], args.timeout,
        )
        pipeline = time.perf_counter() - began
        stats = rt.stats()["ingest"]
        received = sum(e.status is EncounterStatus.RECEIVED for e in outcome.encounters.values())
        raw = baseline(rt, objects)

    per_encounter_ms = 1000 * pipeline / count
    per_object_ms = 1000 * raw / count
    print(f"ingest benchmark: {count} objects (half WAV 0.5 s, half text), batch size {settings.batch_size}, "
          f"max concurrency {route.max_concurrency}, visibility timeout {settings.local_visibility_timeout_seconds} s")
    print(f"  terminal:            {count - len(outcome.pending)}/{count} ({received} RECEIVED)")
    print(f"  uploads done after:  {uploaded:.2f} s")
    print(f"  all terminal after:  {pipeline:.2f} s -> {count / pipeline:.1f} encounters/s, "
          f"{per_encounter_ms:.1f} ms per encounter")
    print(f"  baseline:            {raw:.2f} s for put_object + get_item x {count} "
          f"-> {per_object_ms:.1f} ms per object")
    print(f"  ratio:               {per_encounter_ms / per_object_ms:.2f}x baseline "
          f"(overhead {per_encounter_ms - per_object_ms:.1f} ms per encounter)")
    print(f"  pollers:             {stats.invocations} invocations, {stats.messages_ok} messages ok, "
          f"{stats.messages_failed} failed, {stats.failed_invocations} failed invocations, "
          f"max in flight {stats.max_in_flight}, cold starts {stats.cold_starts}")
    print("  reproduce:           .venv/bin/python bench/ingest.py" + (f" --objects {count}" if count != 500 else ""))
    return 0 if outcome.complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
