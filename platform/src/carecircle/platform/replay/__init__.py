"""Virtual-time replay of a simulated stream through gateway, ingest, alerts and jobs.

See ``docs/alerts.md`` (Evaluation) and :mod:`.harness`.  Importing this package does
not import the gateway; :func:`replay` does, when it runs.
"""

from carecircle.platform.replay.harness import (
    DEFAULT_BASES,
    Replay,
    ReplayOptions,
    ReplayReport,
    replay,
)
from carecircle.platform.replay.vsched import VirtualScheduler

__all__ = [
    "DEFAULT_BASES",
    "Replay",
    "ReplayOptions",
    "ReplayReport",
    "VirtualScheduler",
    "replay",
]
