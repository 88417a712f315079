"""``carecircle platform ingest``: run one ingest worker until SIGTERM/SIGINT."""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
from importlib.metadata import entry_points
from types import FrameType

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.contract import Topics
from carecircle.common.errors import ConfigError
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.ingest.consumer import IngestConfig, IngestWorker
from carecircle.platform.ingest.handoff import HandOff
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect

log = logging.getLogger(__name__)

#: Entry-point group of hand-off factories: ``name = "module:factory"`` where
#: ``factory(settings: PlatformSettings) -> HandOff`` (e.g. the alert engine).
HANDOFF_GROUP = "carecircle.ingest.handoff"


def load_handoffs(settings: PlatformSettings) -> list[HandOff]:
    handlers = []
    for ep in entry_points(group=HANDOFF_GROUP):
        try:
            handler = ep.load()(settings)
        except Exception as err:
            raise ConfigError(f"hand-off {ep.name} ({ep.value}) cannot start: {err}") from err
        if not isinstance(handler, HandOff):
            raise ConfigError(f"hand-off {ep.name} ({ep.value}) has no on_committed(items)")
        handlers.append(handler)
        log.info("hand-off registered: %s", ep.name)
    return handlers


def worker_from_settings(settings: PlatformSettings) -> IngestWorker:
    client_id = (
        f"cc-ingest-{settings.topic_root}-{socket.gethostname()[:24]}-{settings.ingest_worker_id}"
    )
    config = IngestConfig(
        client_id=client_id,
        group=settings.ingest_group,
        receive_maximum=settings.ingest_receive_maximum,
        session_expiry_s=settings.ingest_session_expiry_s,
        batch_max_messages=settings.ingest_batch_max_messages,
        batch_linger_s=settings.ingest_batch_linger_ms / 1000,
        retry_max_s=float(settings.ingest_retry_max_s),
        inline_handoff=settings.ingest_inline_handoff,
    )
    return IngestWorker(
        config,
        broker=BrokerAddress.from_url(settings.mqtt_url),
        topics=Topics(settings.topic_root),
        connect_db=lambda: connect(settings.database_url, timeout_s=settings.db_connect_timeout_s),
    )


def tune_gc(threshold: int) -> None:
    """Fewer, larger young collections and a frozen start-up heap (0 = leave Python's).

    A batch allocates tracked objects (decoded attribute maps, psycopg's) that all live
    until the batch is handed off; with CPython's default threshold of 700 they are
    traversed by dozens of young collections and then, promoted, by full collections of
    the whole heap (docs/ingest.md, "Garbage collector").  ``gc.freeze`` takes what
    start-up allocated (modules, caches) out of every collection.

    The raised threshold alone is not enough: paho makes a reference cycle for every
    message it delivers (``MQTTMatcher.iter_match`` defines a recursive closure), and
    a few come from context managers per batch.  Reference counting cannot free those;
    with the hot path's own objects untracked, generation 0 reached 50,000 only every
    ~11 minutes at 6,000 readings/s, and RSS grew steadily in between.  So the worker
    also calls :func:`collect_garbage` every few seconds.
    """
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)
    log.info("gc: start-up heap frozen, generation-0 threshold %d", threshold)


def collect_garbage() -> int:
    """A full collection of what is not frozen: the cycles since the last one.

    About 1 ms at 6,000 readings/s when called every 5 s (the heap outside the frozen
    start-up is small), and it keeps the worker's memory flat (bench/ingest_memory.py).
    """
    return gc.collect()


@click.command("ingest")
@click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")
@click.option("--mqtt-url", help="MQTT broker URL [CARECIRCLE_MQTT_URL]")
@click.option("--topic-root", help="first MQTT topic segment [CARECIRCLE_TOPIC_ROOT]")
@click.option(
    "--worker-id",
    "ingest_worker_id",
    help="stable id of this worker on this host (its MQTT session) [CARECIRCLE_INGEST_WORKER_ID]",
)
@click.option(
    "--metrics-port", type=int, help="serve Prometheus /metrics here [CARECIRCLE_METRICS_PORT]"
)
@pass_cli
def ingest_cmd(cli: CliContext, /, **flags: object) -> None:
    """Run an ingest worker on the shared subscription $share/ingest/{root}/v1/gw/+/up/+."""
    settings = cli.settings(PlatformSettings, **flags)
    worker = worker_from_settings(settings)
    for handler in load_handoffs(settings):
        worker.register(handler)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current batch and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()  # returns once subscribed
    tune_gc(settings.ingest_gc_threshold)
    if settings.metrics_port:
        worker.metrics.serve(settings.metrics_port, settings.metrics_host)
    log.info("ingest worker %s running", worker.config.client_id)
    try:
        while not stop.wait(5.0):
            worker.metrics.queue_depth.set(worker.queue_depth())
            if settings.ingest_gc_threshold > 0:
                collect_garbage()
    finally:
        worker.stop()
        worker.metrics.close()
