"""Publishing a stream to the gateways' local broker, paced by a simulated clock.

Simulated time runs ``speed`` times faster than the wall clock from the moment
:meth:`Pacer.run` starts.  Device messages go out with QoS 0 like zigbee2mqtt's;
availability and bridge state are retained.  The running simulator listens on
``{root}/v1/sim/control`` for scenario commands, applies them at the current simulated
time, answers on ``{root}/v1/sim/control/ack`` and publishes every ground-truth
incident on ``{root}/v1/sim/truth`` (and appends it to the truth file) once it starts.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import paho.mqtt.client as mqtt

from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.engine.sites import Msg
from carecircle.device_sim.incidents.model import Incident

log = logging.getLogger(__name__)


class Source(Protocol):
    start_ms: int

    def peek_time(self) -> int | None: ...

    def __next__(self) -> Msg: ...

    def incidents(self, until_ms: int | None = None) -> list[Incident]: ...


class Injectable(Source, Protocol):
    def inject(
        self,
        kind: str,
        *,
        at_ms: int,
        resident: str | None = None,
        site: str | None = None,
        device: str | None = None,
        duration_s: int | None = None,
        via: str | None = None,
    ) -> Incident: ...


class ListSource:
    """A fixed, time-ordered list of messages (replay) behind the :class:`Source` face."""

    def __init__(self, msgs: list[Msg], start_ms: int) -> None:
        self._msgs = sorted(msgs, key=lambda m: m[0])
        self._pos = 0
        self.start_ms = start_ms

    def peek_time(self) -> int | None:
        return self._msgs[self._pos][0] if self._pos < len(self._msgs) else None

    def __next__(self) -> Msg:
        if self._pos >= len(self._msgs):
            raise StopIteration
        self._pos += 1
        return self._msgs[self._pos - 1]

    def __iter__(self) -> Iterator[Msg]:
        return self

    def incidents(self, until_ms: int | None = None) -> list[Incident]:
        return []


@dataclass
class Stats:
    published: int = 0
    incidents: int = 0
    commands: int = 0
    sim_ms: int = 0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.published / elapsed if elapsed > 0 else 0.0


class Pacer:
    def __init__(
        self,
        source: Source,
        client: mqtt.Client,
        bases: TopicBases,
        *,
        speed: float,
        truth_out: IO[str] | None = None,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.source = source
        self.client = client
        self.bases = bases
        self.speed = speed
        self.truth_out = truth_out
        self.wall = wall
        self.stats = Stats()
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=100)
        self._written: set[str] = set()

    # -- control --------------------------------------------------------------------------
    def on_control(self, payload: bytes) -> None:
        """Called on the MQTT network thread: only parse and enqueue."""
        try:
            cmd = json.loads(payload)
            if not isinstance(cmd, dict):
                raise ValueError("a command is a JSON object")
        except ValueError as err:
            log.warning("ignoring malformed sim control message: %s", err)
            return
        try:
            self.commands.put_nowait(cmd)
        except queue.Full:
            log.warning("sim control queue full; command dropped")

    def _handle(self, cmd: dict[str, Any], now_ms: int) -> None:
        self.stats.commands += 1
        ack: dict[str, Any] = {"request_id": cmd.get("request_id"), "ok": False}
        if cmd.get("cmd") != "incident":
            ack["error"] = f"unknown command {cmd.get('cmd')!r}"
        elif not hasattr(self.source, "inject"):
            ack["error"] = "this source does not take incidents (replay)"
        else:
            src: Injectable = self.source  # type: ignore[assignment]
            try:
                duration = cmd.get("duration_s")
                inc = src.inject(
                    str(cmd.get("kind")),
                    at_ms=now_ms,
                    resident=cmd.get("resident_id"),
                    site=cmd.get("site_id"),
                    device=cmd.get("device_id"),
                    duration_s=int(duration) if duration is not None else None,
                    via=cmd.get("via"),
                )
            except (KeyError, ValueError) as err:
                ack["error"] = str(err).strip("'\"")
            else:
                self._write_truth(inc)
                ack.update(ok=True, incident=json.loads(inc.to_json()))
                log.info("injected %s %s on site %s", inc.kind, inc.incident_id, inc.site_id)
        self.client.publish(self.bases.control_ack, json.dumps(ack), qos=1)

    def _write_truth(self, inc: Incident) -> None:
        if inc.incident_id in self._written:
            return
        self._written.add(inc.incident_id)
        line = inc.to_json()
        if self.truth_out is not None:
            self.truth_out.write(line + "\n")
            self.truth_out.flush()
        self.client.publish(self.bases.truth, line, qos=1)
        self.stats.incidents += 1

    # -- the loop -------------------------------------------------------------------------
    def run(
        self,
        stop: threading.Event,
        *,
        duration_s: float | None = None,
        report: Callable[[Stats], None] | None = None,
        report_every_s: float = 2.0,
    ) -> Stats:
        """Publish until the source ends, ``duration_s`` of wall time passes or ``stop``."""
        began = self.wall()
        self.stats = Stats()
        next_truth = began
        next_report = began + report_every_s
        while not stop.is_set():
            now = self.wall()
            if duration_s is not None and now - began >= duration_s:
                break
            sim_now = self.source.start_ms + int((now - began) * self.speed * 1000)
            self.stats.sim_ms = sim_now
            sent = 0
            nxt = self.source.peek_time()
            while nxt is not None and nxt <= sim_now and sent < 20_000:
                _, topic, payload, retain = next(self.source)
                self.client.publish(topic, payload, qos=1 if retain else 0, retain=retain)
                sent += 1
                nxt = self.source.peek_time()
            self.stats.published += sent
            while True:  # after publishing up to now, so nothing before the command is lost
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    break
                self._handle(cmd, sim_now)
                nxt = self.source.peek_time()
            if now >= next_truth:
                for inc in self.source.incidents(until_ms=sim_now):
                    self._write_truth(inc)
                next_truth = now + 1.0
            if report is not None and now >= next_report:
                report(self.stats)
                next_report = now + report_every_s
            if nxt is None:
                break
            if sent < 20_000:
                wait = (nxt - sim_now) / 1000 / self.speed
                stop.wait(min(0.05, max(0.0, wait)))
        for inc in self.source.incidents(until_ms=self.stats.sim_ms):
            self._write_truth(inc)
        if report is not None:
            report(self.stats)
        return self.stats
