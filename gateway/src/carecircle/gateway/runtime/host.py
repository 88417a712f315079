"""Several gateways in one process (``[[gateway.sites]]``).

Each gateway keeps everything an edge box has: its own queue file, registry cache,
local broker session, platform connection (credentials, will, retained state),
sender thread and liveness tracker; a :class:`~carecircle.gateway.runtime.Gateway`
per site, exactly as a single-gateway process builds it.  What they share is the
process and one housekeeping thread that calls each gateway's
:meth:`~carecircle.gateway.runtime.Gateway.tick` in turn.  A failing tick of one
gateway is logged and does not stop the others.

Threads per gateway: two paho network threads and one sender thread, mostly asleep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from carecircle.common.clock import Clock
from carecircle.gateway.runtime.gateway import Gateway
from carecircle.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


class GatewayHost:
    def __init__(self, settings: Sequence[GatewaySettings], clock: Clock | None = None) -> None:
        label = len(settings) > 1
        self.gateways: list[Gateway] = []
        try:
            for s in settings:
                self.gateways.append(Gateway(s, clock, label=label))
        except BaseException:
            for gw in self.gateways:
                gw.outbox.close()
            raise

    def run(self, stop: threading.Event) -> None:
        """Start every gateway, do their housekeeping until ``stop``, stop them all."""
        started: list[Gateway] = []
        try:
            for gw in self.gateways:
                gw.start()
                started.append(gw)
            log.info("serving %d gateways", len(started))
            while not stop.is_set():
                now = time.monotonic()
                for gw in started:
                    try:
                        gw.tick(now)
                    except Exception:
                        gw.log.exception("housekeeping failed; the other gateways go on")
                stop.wait(0.5)
        finally:
            # In parallel: each waits briefly for its in-flight publishes and its
            # "offline" state to be acknowledged, so a stop takes one gateway's time.
            stoppers = [
                threading.Thread(
                    target=_stop_one, args=(gw,), name=f"stop-{gw.settings.gateway_id}"
                )
                for gw in started
            ]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
            for gw in self.gateways:
                if gw not in started:
                    gw.outbox.close()


def _stop_one(gw: Gateway) -> None:
    gw.log.info("stopping: %s", gw.status_line(0.0))
    try:
        gw.stop()
    except Exception:
        gw.log.exception("stopping failed")
