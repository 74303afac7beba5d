"""The local AWS API emulator: moto's threaded server on 127.0.0.1.

moto's S3 notifications omit two fields real S3 sends: `versionId` (versioned buckets) and
`sequencer`. The pipeline depends on both (the encounter id includes the version; events for one
key are ordered by sequencer), so `start()` adds them to moto's event builder, in this process only.

moto's DynamoDB TransactWriteItems deep-copies every table it touches before applying the
transaction (its rollback snapshot): every item and every stream record. Each transaction (every
transcription slot taken or given back) then costs time proportional to the whole table, and a run
slows as it goes (28 -> 246 ms within 50 uploads; a 100-upload burst did not finish in 12 minutes,
at 7 GB). `start()` makes the snapshot copy only what a transaction can change: the partition map,
the partitions the transaction names, and a deep copy of the items it names. Rollback restores exactly those;
the stream is shared, so a rolled-back transaction can leave a stream record behind, which the
pipeline's only stream reader tolerates (the indexer reads current state).

moto's Query starts from `Table.all_items()`, which sorts every item in the table, and then sorts its
candidates again itself. A key-condition query (the status and source-key index lookups, one
encounter's items) therefore cost a sort of the whole table: O(n log n) in Python comparisons, per
query. `start()` makes Query take its candidates unsorted, and a base-table query only its own
partition; Query's own sort still orders the results, so replies are unchanged. Scan, whose
pagination follows `all_items()` order, is untouched.

moto's SQS ReceiveMessage checks each message it hands out against the queue's retention period by
asking for the queue's attributes, which computes all of them, three times, including the
approximate message counts: each a pass over every message in the queue, with two clock readings per
message. With a deep queue (a burst's ingest queue holds every upload) each received message cost a
few passes over the whole queue. `start()` makes the check read the retention period directly, and
makes the queue's attributes (which SendMessage also computes, for one flag) count the queue in one
pass with one clock reading instead of three passes with two per message. A message's own
visible/delayed checks (every ReceiveMessage walks the queue with them) read `time.time()` instead of
building two datetimes.

Every replacement is in `_PATCHES`: `start()` installs them, `stop()` puts moto's originals back.
"""

from __future__ import annotations

import copy
import http.client
import logging
import threading
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3 import notifications
from moto.sqs.models import Message, Queue, SQSBackend

HOST = "127.0.0.1"

log = logging.getLogger("medscribe_local")


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


_original_transact_write_items = DynamoDBBackend.transact_write_items
_touched = threading.local()


def _touched_keys(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> dict[str, list[tuple[Any, Any]]]:
    """(hash, range) keys per table that a TransactWriteItems request names."""
    keys: dict[str, list[tuple[Any, Any]]] = {}
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName", ""))
        if table is None:
            continue
        source = op.get("Item", {}) if op_type == "Put" else op.get("Key", {})
        hash_value = source.get(table.hash_key_attr)
        range_value = source.get(table.range_key_attr) if table.range_key_attr else None
        if hash_value is None:
            continue
        keys.setdefault(table.name, []).append(
            (DynamoType(hash_value), DynamoType(range_value) if range_value is not None else None)
        )
    return keys


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    _touched.keys = _touched_keys(self, transact_items)
    try:
        _original_transact_write_items(self, transact_items)
    finally:
        _touched.keys = None


_original_query = Table.query
_original_all_items = Table.all_items
_querying = threading.local()


def _query(self: Table, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
           exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
           index_name: str | None = None, *args: Any, **kwargs: Any) -> Any:
    _querying.scope = (self, None if index_name else hash_key)
    try:
        return _original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                               scan_index_forward, projection_expressions, index_name, *args, **kwargs)
    finally:
        _querying.scope = None


def _all_items(self: Table) -> list[Any]:
    """Inside Query: the candidates unsorted (Query sorts them), only one partition when the query
    is on the base table. Anywhere else: moto's sorted list."""
    scope = getattr(_querying, "scope", None)
    if scope is None or scope[0] is not self:
        return _original_all_items(self)
    partition = scope[1]
    if partition is not None:
        stored = self.items.get(partition)
        if stored is None:
            return []
        return list(stored.values()) if self.range_key_attr else [stored]
    if not self.range_key_attr:
        return list(self.items.values())
    return [item for stored in self.items.values() for item in stored.values()]


def _within_retention(self: SQSBackend, queue_name: str, message: Any) -> bool:
    """moto's check, without computing every queue attribute to read one."""
    retention_period = self.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    return bool(retention_period + message.sent_timestamp / 1000 > time.time())


_original_queue_attributes: Any = vars(Queue)["attributes"]  # a property
_queue_counts = threading.local()
_COUNTS = ("approximate_number_of_messages", "approximate_number_of_messages_delayed",
           "approximate_number_of_messages_not_visible")


def _queue_attributes(self: Queue) -> dict[str, Any]:
    """moto's `Queue.attributes`, with its three message counts taken in one pass."""
    now = time.time() * 1000
    visible = delayed = not_visible = 0
    for message in self._messages:
        is_delayed = now < message.delayed_until
        is_visible = now > message.visible_at
        delayed += is_delayed
        not_visible += not is_visible
        visible += is_visible and not is_delayed
    _queue_counts.value = (self, dict(zip(_COUNTS, (visible, delayed, not_visible), strict=True)))
    try:
        return dict(_original_queue_attributes.fget(self))
    finally:
        _queue_counts.value = None


def _counted(name: str) -> property:
    original = getattr(Queue, name)

    def count(self: Queue) -> int:
        counted = getattr(_queue_counts, "value", None)
        if counted is not None and counted[0] is self:
            return int(counted[1][name])
        return int(original.fget(self))

    return property(count)


def _message_visible(self: Message) -> bool:
    return bool(time.time() * 1000 > self.visible_at)


def _message_delayed(self: Message) -> bool:
    return bool(time.time() * 1000 < self.delayed_until)


def _snapshot_table(table: Table, memo: dict[int, Any]) -> Table:
    """A rollback snapshot of a moto table: its partition map copied, the partitions the current
    transaction names copied and their named items deep-copied; every other partition, and the
    stream, shared (the transaction cannot change them)."""
    snapshot = copy.copy(table)
    touched = getattr(_touched, "keys", None)
    if touched is None:  # a deepcopy outside a transaction (backups, restores): copy it all
        snapshot.items = copy.deepcopy(table.items, memo)
        return snapshot
    items: Any = defaultdict(dict, table.items)  # partitions shared until the transaction names one
    copied: set[Any] = set()
    for hash_value, range_value in touched.get(table.name, []):
        if hash_value not in table.items:
            continue
        if not table.has_range_key:
            items[hash_value] = copy.deepcopy(table.items[hash_value])
            continue
        if hash_value not in copied:  # the transaction may put or delete items in this partition
            items[hash_value] = dict(table.items[hash_value])
            copied.add(hash_value)
        if range_value in items[hash_value]:
            items[hash_value][range_value] = copy.deepcopy(items[hash_value][range_value])
    snapshot.items = items
    return snapshot


_PATCHES: list[tuple[Any, str, Any]] = [
    (notifications, "_get_s3_event", _event_with_version_and_sequencer),
    (Table, "__deepcopy__", _snapshot_table),
    (DynamoDBBackend, "transact_write_items", _transact_write_items),
    (Table, "query", _query),
    (Table, "all_items", _all_items),
    (SQSBackend, "is_message_valid_based_on_retention_period", _within_retention),
    (Queue, "attributes", property(_queue_attributes)),
    *((Queue, name, _counted(name)) for name in _COUNTS),
    (Message, "visible", property(_message_visible)),
    (Message, "delayed", property(_message_delayed)),
]
_ABSENT = object()
_ORIGINALS = [vars(owner).get(name, _ABSENT) for owner, name, _ in _PATCHES]


def _install_patches() -> None:
    for owner, name, replacement in _PATCHES:
        setattr(owner, name, replacement)


def _remove_patches() -> None:
    for (owner, name, _), original in zip(_PATCHES, _ORIGINALS, strict=True):
        if original is _ABSENT:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, original)


class _CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves which host. moto works that out on every
    request, under one process-wide lock, by listing its package folder (`os.listdir` plus a stat per
    service, ~150) and matching hundreds of URL patterns: with many request threads that lock, not the
    backends, was the emulator's bottleneck. The answer for a host never changes in a run."""

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._backend_by_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        # called with moto's dispatcher lock held
        if host not in self._backend_by_host:
            self._backend_by_host[host] = super().get_backend_for_host(host)
        return self._backend_by_host[host]


class _SerialMotoServer(ThreadedMotoServer):
    """moto's server with one DynamoDB request at a time: moto's DynamoDB backend is not thread-safe
    (concurrent TransactWriteItems fail with "dictionary changed size during iteration"). Other
    services stay concurrent: SQS long polls block inside moto and must not hold a lock."""

    def _server_entry(self) -> None:
        from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
        from moto.moto_server.werkzeug_app import create_backend_app
        from werkzeug.serving import make_server

        app = _CachedDispatcher(create_backend_app)
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
        _install_patches()
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
        _remove_patches()

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
