"""Ingest: MQTT uplink → PostgreSQL/TimescaleDB, idempotent, with hand-off to alerts.

See ``docs/ingest.md``.  Other components use :class:`HandOff` (implement
``on_committed(items)``, items being :class:`EnvelopeView` objects — the worker hands
:class:`Item` structs) and register it on an :class:`IngestWorker`.
"""

from carecircle.platform.ingest.consumer import IngestConfig, IngestWorker
from carecircle.platform.ingest.handoff import HandOff, HandOffDispatcher
from carecircle.platform.ingest.items import EnvelopeView, Item
from carecircle.platform.ingest.metrics import IngestMetrics
from carecircle.platform.ingest.writer import BatchOutcome, BatchWriter, DeviceDirectory, Inbound

__all__ = [
    "BatchOutcome",
    "BatchWriter",
    "DeviceDirectory",
    "EnvelopeView",
    "HandOff",
    "HandOffDispatcher",
    "Inbound",
    "IngestConfig",
    "IngestMetrics",
    "IngestWorker",
    "Item",
]
