"""Run ``carecircle gateway run`` with its clock skewed by N hours (a subprocess helper).

    python tests/reliability/skewed_gateway.py CONFIG.toml HOURS

The machine's clock cannot be changed for one process (no libfaketime here), so this
builds the same :class:`~carecircle.gateway.runtime.Gateway` the CLI builds, with a
``Clock`` that is ``HOURS`` off.  SIGTERM stops it like the CLI.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from carecircle.common.clock import SystemClock
from carecircle.common.logs import configure_logging
from carecircle.common.settings import load_settings
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings


class SkewedClock:
    def __init__(self, hours: float) -> None:
        self.skew = timedelta(hours=hours)
        self.real = SystemClock()

    def now(self) -> datetime:
        return self.real.now() + self.skew


def main() -> None:
    settings = load_settings(GatewaySettings, Path(sys.argv[1]), {})
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    Gateway(settings, clock=SkewedClock(float(sys.argv[2]))).run(stop)


if __name__ == "__main__":
    main()
