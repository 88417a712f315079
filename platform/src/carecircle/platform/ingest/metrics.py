"""Prometheus metrics of an ingest worker (one registry per worker, served on /metrics)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc >= 2.33): every field a ``size_t``."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _load_mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc's ``mallinfo2`` or None (musl, macOS, older glibc)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []
    mallinfo2: Callable[[], _MallInfo2] = fn
    return mallinfo2


class HeapCollector(Collector):
    """Where a worker's memory is, beside its RSS: to tell a leak from a fragmented heap.

    * ``cc_process_python_blocks`` — memory blocks Python's small-object allocator has
      handed out and not got back (``sys.getallocatedblocks``): grows with every Python
      object kept, whatever the C allocator does.
    * ``cc_process_malloc_in_use_bytes`` / ``cc_process_malloc_free_bytes`` — glibc's
      ``mallinfo2`` summed over its arenas: bytes handed out by ``malloc`` (large Python
      objects, buffers, libpq, OpenSSL) and bytes held free inside the arenas.  Absent
      where the C library is not glibc.

    A process whose RSS grows while these stay level keeps no more memory: its
    allocators hold more pages (fragmentation), which levels off.  Both are cheap
    (no heap walk) and read only when ``/metrics`` is scraped.
    """

    def __init__(self) -> None:
        self._mallinfo2 = _load_mallinfo2()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "cc_process_python_blocks",
            "blocks allocated by Python's object allocator and not freed",
            value=sys.getallocatedblocks(),
        )
        if self._mallinfo2 is not None:
            info = self._mallinfo2()
            yield GaugeMetricFamily(
                "cc_process_malloc_in_use_bytes",
                "bytes allocated by the C library's malloc and not freed (glibc mallinfo2)",
                value=info.uordblks + info.hblkhd,
            )
            yield GaugeMetricFamily(
                "cc_process_malloc_free_bytes",
                "free bytes held inside malloc's arenas (glibc mallinfo2)",
                value=info.fordblks,
            )


class IngestMetrics:
    """Counters named after what the issue asks to watch."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "cc_ingest_messages", "MQTT messages received", ["channel"], registry=r
        )
        self.items_in = Counter(
            "cc_ingest_items", "canonical items decoded from messages", ["kind"], registry=r
        )
        self.rows_written = Counter(
            "cc_ingest_rows_written", "rows newly stored", ["table"], registry=r
        )
        self.duplicates = Counter(
            "cc_ingest_duplicates_dropped",
            "items already stored (redelivered or duplicated message ids)",
            registry=r,
        )
        self.dead_letters = Counter(
            "cc_ingest_dead_letters", "items or messages sent to dead_letters", registry=r
        )
        self.registry_corrections = Counter(
            "cc_ingest_registry_corrections",
            "items whose resident/site disagreed with the registry (registry wins)",
            registry=r,
        )
        self.batches = Counter("cc_ingest_batches", "batches committed", registry=r)
        self.batch_seconds = Histogram(
            "cc_ingest_batch_seconds",
            "decode + write + commit time of one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch_messages = Histogram(
            "cc_ingest_batch_messages",
            "MQTT messages per committed batch",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.queue_depth = Gauge(
            "cc_ingest_queue_depth", "messages received and not yet written", registry=r
        )
        self.db_errors = Counter(
            "cc_ingest_db_errors", "batch attempts that failed in the database", registry=r
        )
        self.db_up = Gauge("cc_ingest_db_up", "1 while the last batch attempt worked", registry=r)
        self.acks_skipped = Counter(
            "cc_ingest_acks_skipped",
            "acknowledgements not sent because the connection changed (broker redelivers)",
            registry=r,
        )
        self.handoff_errors = Counter(
            "cc_ingest_handoff_errors", "hand-off handler exceptions", registry=r
        )
        self.handoff_seconds = Histogram(
            "cc_ingest_handoff_seconds", "time spent in hand-off handlers per batch", registry=r
        )
        r.register(HeapCollector())
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics on ``host:port`` (0 = any free port); returns the port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._server, self._thread = server, thread
        bound = int(server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
