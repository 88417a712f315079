"""The uplink: drains the durable queue to the platform broker, QoS 1, alarms first.

One sender thread owns the in-flight table (MQTT packet id → queue rows).  paho's
PUBACK callback runs on its network thread while paho holds its own lock, so it only
posts ``(mid, reason)`` to a queue; the sender thread deletes the rows it names.  A
row therefore leaves the queue only after the broker acknowledged the publish that
carried it.  paho keeps unacknowledged QoS 1 publishes across reconnects and resends
them (same packet, same message ids inside); rows sent but unacknowledged when the
process dies are sent again at the next start (at-least-once; the platform drops
repeated ids).

Order: every pass looks at the alarm lane first, then status, dead letters, and only
then routine readings, so alarms overtake any backlog.  Status and routine rows are
batched: a batch goes when ``batch_max_items`` are waiting or the oldest has waited
``batch_max_delay_ms``.  While the uplink is down nothing is handed to paho, so after
an outage the alarms queued meanwhile go out before the routine backlog.

Holding until ingest is there (``wait_for_ingest``): a broker PUBACK only says the
broker took the message, and a broker drops a message nobody is subscribed to.  After a
broker restart Mosquitto 2.0 does not restore the ingest workers' *shared*
subscriptions, so for a moment the uplink topics have no subscriber at all.  Therefore,
on every (re)connection the gateway first subscribes to ``gw/{gw}/ingest``, then
publishes its ``online`` state, and sends nothing from its queue until an ingest worker
that is subscribed answers on ``gw/{gw}/ingest`` (a live, never retained message, so it
cannot be a stale one from before a restart).  While it waits it asks again every
``ingest_request_s``.  Publishes still unacknowledged when a connection ends are
forgotten and their rows sent again after the next answer: paho resends its own copies
at once on reconnection, possibly before any worker is subscribed, so their PUBACKs
prove nothing (acknowledgements are matched to the connection they belong to).  Cost:
duplicates after a reconnection, which the platform drops by message id.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from carecircle.common.contract import Topics, Uplink
from carecircle.common.contract.envelope import MAX_BATCH_BYTES
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.gateway.logs import GatewayLog
from carecircle.gateway.outbox import Lane, Outbox, Row

log = logging.getLogger(__name__)

LANE_ORDER = (Lane.ALARM, Lane.STATUS, Lane.DEADLETTER, Lane.ROUTINE)
#: Lanes whose rows wait to fill a batch (alarms and dead letters go at once).
BATCHED = frozenset({Lane.STATUS, Lane.ROUTINE})


@dataclass(frozen=True)
class UplinkOptions:
    gateway_id: str
    topics: Topics
    address: BrokerAddress
    ca_file: Path | None = None
    client_id: str | None = None
    batch_max_items: int = 500
    batch_max_delay_ms: int = 200
    max_inflight: int = 20
    reconnect_max_s: int = 30
    keepalive_s: int = 30
    #: Prefix of this sender's log lines (the gateway id when a process serves several).
    log_label: str = ""
    #: Send nothing after a (re)connection until an ingest worker says it is subscribed.
    wait_for_ingest: bool = True
    #: While waiting, publish the ``online`` state again this often (asks workers again).
    ingest_request_s: float = 5.0


class UplinkSender:
    def __init__(
        self,
        options: UplinkOptions,
        outbox: Outbox,
        on_config: Callable[[bytes], object] | None = None,
    ) -> None:
        self.o = options
        self.log = GatewayLog(log, options.log_label)
        self.outbox = outbox
        self.on_config = on_config
        self.sent_items = 0
        self.sent_batches = 0
        self.refused = 0
        self.connected = threading.Event()
        #: An ingest worker answered on this connection: the uplink topics have a subscriber.
        self.ingest_ready = threading.Event()
        self.reconnections_resent = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: (packet id, accepted, reason, connection generation of the PUBACK)
        self._acks: queue.SimpleQueue[tuple[int, bool, str, int]] = queue.SimpleQueue()
        #: packet id → (connection generation it was published in, queue rows it carries)
        self._inflight: dict[int, tuple[int, list[int]]] = {}
        self._generation = 0  # written by the network thread, one per CONNACK
        self._seen_generation = 0  # the generation the sender thread last adjusted to
        self._holding_since: float | None = None
        self._last_request = 0.0
        self._warned_at = 0.0
        self._cursor = dict.fromkeys(Lane, 0)
        self._thread: threading.Thread | None = None
        self._state_topic = options.topics.gateway_state(options.gateway_id)
        self._config_topic = options.topics.gateway_config(options.gateway_id)
        self._ingest_topic = options.topics.gateway_ingest(options.gateway_id)
        self._conn = new_connection(
            options.address,
            options.client_id or f"cc-{options.gateway_id}-up",
            clean_start=True,
            ca_file=str(options.ca_file) if options.ca_file else None,
        )
        c = self._conn.client
        c.reconnect_delay_set(min_delay=1, max_delay=max(1, options.reconnect_max_s))
        c.max_inflight_messages_set(options.max_inflight)
        c.will_set(self._state_topic, b'{"state":"offline"}', qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        c = self._conn.client
        c.connect_async(
            self.o.address.host,
            self.o.address.port,
            keepalive=self.o.keepalive_s,
            clean_start=True,
        )
        c.loop_start()
        self._thread = threading.Thread(
            target=self._run, name=f"uplink-{self.o.gateway_id}", daemon=True
        )
        self._thread.start()
        self.log.info("uplink to %s as gateway %s", self.o.address, self.o.gateway_id)

    def stop(self, drain_s: float = 2.0) -> None:
        """Wait briefly for in-flight publishes, mark the gateway offline, disconnect."""
        deadline = time.monotonic() + drain_s
        while self._inflight and self.connected.is_set() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        c = self._conn.client
        if self.connected.is_set():
            info = c.publish(self._state_topic, self._state(False), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                self.log.debug("offline state not confirmed before disconnect")
        c.disconnect()
        c.loop_stop()

    def notify(self) -> None:
        """Something was enqueued."""
        self._wake.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # -- paho callbacks (network thread: enqueue only) ------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self.log.error("platform broker %s refused the gateway: %s", self.o.address, reason)
            return
        self._generation += 1
        self.ingest_ready.clear()
        # Subscribe before announcing: an ingest worker answers the announcement.
        client.subscribe([(self._config_topic, 1), (self._ingest_topic, 1)])
        client.publish(self._state_topic, self._state(True), qos=1, retain=True)
        self._last_request = time.monotonic()
        self.connected.set()
        self._wake.set()
        self.log.info(
            "uplink connected to %s%s",
            self.o.address,
            "; waiting for an ingest worker before sending" if self.o.wait_for_ingest else "",
        )

    def _on_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if self._stop.is_set():
            self.log.info("uplink closed")
        elif self.connected.is_set():
            self.log.warning("uplink lost (%s); the queue keeps everything", reason)
        self.connected.clear()
        self.ingest_ready.clear()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self._acks.put((mid, not reason.is_failure, str(reason), self._generation))
        self._wake.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._ingest_topic:
            if msg.retain:  # workers never retain answers: this one may be from before a restart
                self.log.warning("ignored a retained answer on %s", msg.topic)
            else:
                self._on_ingest(bytes(msg.payload))
            return
        if msg.topic == self._config_topic and self.on_config is not None:
            try:
                self.on_config(bytes(msg.payload))
            except Exception:
                self.log.exception("applying a pushed config failed")

    def _on_ingest(self, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError:
            self.log.warning("unreadable ingest announcement ignored: %.80r", payload)
            return
        if not isinstance(doc, dict) or doc.get("state") != "online":
            return
        if not self.ingest_ready.is_set():
            self.ingest_ready.set()
            self._wake.set()
            self.log.info("ingest worker %s is subscribed: uplink open", doc.get("worker", "?"))

    def _state(self, online: bool) -> bytes:
        doc = {"state": "online" if online else "offline", "ts": datetime.now(UTC).isoformat()}
        return json.dumps(doc).encode()

    # -- sender thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                timeout = self._step()
            except Exception:
                self.log.exception("uplink sender step failed; retrying in 1 s")
                timeout = 1.0
            if timeout > 0:
                self._wake.wait(timeout)
                self._wake.clear()
        self._drain_acks()

    def _drain_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, ok, reason, generation = self._acks.get_nowait()
            except queue.Empty:
                break
            entry = self._inflight.get(mid)
            if entry is None or entry[0] != generation:
                continue  # a PUBACK of an earlier connection's copy: proves nothing
            del self._inflight[mid]
            seqs = entry[1]
            if ok:
                done.extend(seqs)
            else:
                self.refused += len(seqs)
                self.log.error(
                    "platform broker refused a publish of %d messages (%s); they stay queued "
                    "and are retried at the next start",
                    len(seqs),
                    reason,
                )
        if done:
            self.outbox.delete(done)
            self.sent_items += len(done)

    def _step(self) -> float:
        """Publish at most one batch; return how long to wait (0 = go again at once)."""
        self._drain_acks()
        generation = self._generation  # read before the checks: publishes are tagged with it
        if generation != self._seen_generation:
            self._new_connection(generation)
        if not self.connected.is_set():
            return 0.5
        if self.o.wait_for_ingest and not self.ingest_ready.is_set():
            self._hold()
            return 0.5
        if self._holding_since is not None:
            self.log.info(
                "uplink held %.1f s until ingest answered", time.monotonic() - self._holding_since
            )
            self._holding_since = None
        if len(self._inflight) >= self.o.max_inflight:
            return 0.5  # woken by the next PUBACK
        now = time.time()
        wait = 1.0
        for lane in LANE_ORDER:
            limit = 1 if lane is Lane.DEADLETTER else self.o.batch_max_items
            rows = self.outbox.next_rows(lane, self._cursor[lane], limit)
            if not rows:
                continue
            if lane in BATCHED and len(rows) < limit:
                due = rows[0].created + self.o.batch_max_delay_ms / 1000.0
                if due > now:
                    wait = min(wait, due - now)
                    continue
            return 0.0 if self._publish(lane, rows, generation) else 0.2
        return max(wait, 0.005)

    def _new_connection(self, generation: int) -> None:
        """Forget the previous connections' in-flight publishes: their rows go again."""
        if self._inflight:
            n = sum(len(seqs) for _, seqs in self._inflight.values())
            self.reconnections_resent += n
            self.log.info("new uplink connection: %d unacknowledged items will be sent again", n)
        self._inflight.clear()
        self._cursor = dict.fromkeys(Lane, 0)
        self._seen_generation = generation

    def _hold(self) -> None:
        now = time.monotonic()
        if self._holding_since is None:
            self._holding_since = now
            self._warned_at = now
        if now - self._last_request >= self.o.ingest_request_s:
            self._last_request = now
            self._conn.client.publish(self._state_topic, self._state(True), qos=1, retain=True)
        if now - self._warned_at >= 60:
            self._warned_at = now
            self.log.warning(
                "uplink connected but no ingest worker has answered for %.0f s; "
                "%d items held in the queue",
                now - self._holding_since,
                len(self.outbox),
            )

    def _publish(self, lane: Lane, rows: list[Row], generation: int) -> bool:
        if lane is Lane.DEADLETTER:
            topic = self.o.topics.gateway_deadletter(self.o.gateway_id)
            body = rows[0].body
        else:
            channel = {Lane.ALARM: Uplink.ALARM, Lane.STATUS: Uplink.STATUS}.get(lane, Uplink.BATCH)
            topic = self.o.topics.uplink(self.o.gateway_id, channel)
            rows, body = self._batch(rows)
        info = self._conn.client.publish(topic, body, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.log.warning(
                "publish to %s not accepted by the client: %s", topic, mqtt.error_string(info.rc)
            )
            return False
        # NO_CONN: paho keeps the message and sends it after reconnecting; track it alike.
        self._inflight[info.mid] = (generation, [r.seq for r in rows])
        self._cursor[lane] = rows[-1].seq
        self.sent_batches += 1
        return True

    def _batch(self, rows: list[Row]) -> tuple[list[Row], bytes]:
        head = (
            b'{"v":1,"gw":'
            + json.dumps(self.o.gateway_id).encode()
            + b',"sent_at":"'
            + datetime.now(UTC).isoformat().encode()
            + b'","items":['
        )
        size = len(head) + 2
        taken: list[Row] = []
        for row in rows:
            size += len(row.body) + 1
            if taken and size > MAX_BATCH_BYTES:
                break
            taken.append(row)
        return taken, head + b",".join(r.body for r in taken) + b"]}"
