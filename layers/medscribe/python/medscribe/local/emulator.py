"""The local AWS API emulator: moto's threaded server on 127.0.0.1.

moto's S3 notifications omit two fields real S3 sends: `versionId` (versioned buckets) and
`sequencer`. The pipeline depends on both (the encounter id includes the version; events for one
key are ordered by sequencer), so `start()` adds them to moto's event builder, in this process only.

moto's DynamoDB TransactWriteItems deep-copies every table it touches before applying the
transaction (its rollback snapshot), stream records included. The stream grows with every write, so
each transaction (every transcription slot taken or given back) got slower as a run went on (28 ->
246 ms within 50 uploads; a 100-upload burst did not finish in 12 minutes, at 7 GB). `start()` makes
the snapshot copy the items only and share the stream: a rolled-back transaction can leave a stream
record behind, which the pipeline's only stream reader tolerates (the indexer reads current state).
"""

from __future__ import annotations

import copy
import http.client
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.s3 import notifications

HOST = "127.0.0.1"

log = logging.getLogger("medscribe.local")


class _Sequencer:
    """S3-style sequencers: 18 hex digits, increasing within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return f"{self._last:018X}"


_sequencer = _Sequencer()
_original_event_builder = notifications._get_s3_event


def _event_with_version_and_sequencer(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    event: dict[str, Any] = _original_event_builder(event_name, bucket, key, notification_id)
    obj = event["Records"][0]["s3"]["object"]
    if bucket.is_versioned:
        obj["versionId"] = key.version_id
    obj["sequencer"] = _sequencer.next()
    return event


def _snapshot_table(table: Table, memo: dict[int, Any]) -> Table:
    """A rollback snapshot of a moto table: its items copied, everything else (the stream) shared."""
    snapshot = copy.copy(table)
    snapshot.items = copy.deepcopy(table.items, memo)
    return snapshot


class _SerialMotoServer(ThreadedMotoServer):
    """moto's server with one DynamoDB request at a time: moto's DynamoDB backend is not thread-safe
    (concurrent TransactWriteItems fail with "dictionary changed size during iteration"). Other
    services stay concurrent: SQS long polls block inside moto and must not hold a lock."""

    def _server_entry(self) -> None:
        from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serial(environ: Any, start_response: Any) -> Any:
            if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
                return app(environ, start_response)
            with lock:
                return list(app(environ, start_response))

        self._server = make_server(self._ip_address, self._port, serial, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class Emulator:
    """moto's threaded server on a free loopback port, with S3 notification fidelity restored."""

    def __init__(self, host: str = HOST, port: int = 0) -> None:
        self._server = _SerialMotoServer(ip_address=host, port=port, verbose=False)
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the emulator is not running")
        return self._endpoint

    def start(self) -> str:
        notifications._get_s3_event = _event_with_version_and_sequencer
        Table.__deepcopy__ = _snapshot_table  # type: ignore[attr-defined]
        # werkzeug logs every request at INFO; keep warnings only (they go to the runtime log).
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        # moto keeps its state in process-wide backends: start every runtime from a clean slate.
        self._post("/moto-api/reset")
        log.info("emulator listening on %s", self._endpoint)
        return self._endpoint

    def stop(self) -> None:
        if self._endpoint is None:
            return
        self._server.stop()
        self._endpoint = None
        notifications._get_s3_event = _original_event_builder

    def _post(self, path: str) -> None:
        parts = urlsplit(self.endpoint)
        connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=10)
        try:
            connection.request("POST", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"emulator {path} answered HTTP {response.status}")
        finally:
            connection.close()
