"""The ingest worker: MQTT 5 shared subscription → bounded queue → batch writer → ack.

Threads and their jobs:

* **paho network thread** — ``on_message`` only stamps the receive time and puts the
  message in a bounded queue.  With ``manual_ack`` nothing is acknowledged there.
* **writer thread** — takes up to ``batch_max_messages`` messages (waiting at most
  ``batch_linger_s`` for more), writes them in one transaction, and only after the
  commit sends the PUBACKs, in the order the messages arrived.  If the database is
  slow or down the batch is retried with exponential backoff (the same messages, never
  dropped) and nothing is acknowledged, so the broker stops sending once
  ``receive_maximum`` messages are unacknowledged and keeps the rest in this worker's
  persistent session — and gateways keep theirs in their own queues.
* **hand-off thread** — see :mod:`.handoff`.

The queue can never hold more than the broker's in-flight window per connection:
``receive_maximum`` (sent in CONNECT) caps unacknowledged messages.  After a
reconnection with the session kept, the broker resends every unacknowledged message
under the same packet id; messages of the old connection still queued are dropped
(they are being resent) and acknowledgements of batches from the old connection are
skipped, so an ack never hits a packet id the broker has since reused.  Duplicates
this produces are absorbed by the store's idempotency.

Telling gateways that ingest is there: gateways send nothing after a (re)connection
until an ingest worker answers their ``online`` state on ``gw/{gw}/ingest`` (see
:mod:`carecircle.gateway.uplink.sender`).  A worker answers only once the broker has
confirmed its subscriptions on the current connection (SUBACK), so the shared uplink
subscription exists when the gateway starts sending: it answers every ``online`` state
it receives — live ones when a gateway connects, the retained ones the broker hands it
right after it subscribes (gateways that were already waiting), and those queued in
its session before the SUBACK (answered at the SUBACK).  Answers are never retained: a
retained answer could outlive the subscription it vouches for (Mosquitto 2.0 does not
restore shared subscriptions after a restart, but it does restore retained messages).

Each worker needs a stable client id (``ingest_worker_id``) so that, restarted, it
gets its unacknowledged messages back from its session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from carecircle.common.clock import Clock, SystemClock
from carecircle.common.contract import Topics
from carecircle.common.errors import BrokerUnavailable, StoreError
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.ingest.handoff import HandOff, HandOffDispatcher
from carecircle.platform.ingest.metrics import IngestMetrics
from carecircle.platform.ingest.writer import BatchOutcome, BatchWriter, Conn, Inbound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    client_id: str
    group: str = "ingest"
    receive_maximum: int = 256
    session_expiry_s: int = 7 * 24 * 3600
    batch_max_messages: int = 200
    batch_max_items: int = 20_000
    batch_linger_s: float = 0.02
    retry_initial_s: float = 0.5
    retry_max_s: float = 15.0
    keepalive_s: int = 30
    #: Also receive gateways' retained state and dead letters (non-shared: idempotent),
    #: and answer gateways' ``online`` state on ``gw/{gw}/ingest`` once subscribed.
    gateway_topics: bool = True
    inline_handoff: bool = False


class IngestWorker:
    """One ingest worker process's machinery (several may share a subscription)."""

    def __init__(
        self,
        config: IngestConfig,
        *,
        broker: BrokerAddress,
        topics: Topics,
        connect_db: Callable[[], Conn],
        clock: Clock | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        if not 1 <= config.receive_maximum <= 65535:
            raise ValueError("receive_maximum must be 1..65535")
        self.config = config
        self.topics = topics
        self.clock = clock or SystemClock()
        self.metrics = metrics or IngestMetrics()
        self.handoff = HandOffDispatcher(
            inline=config.inline_handoff,
            on_error=lambda _h, _e: self.metrics.handoff_errors.inc(),
            on_done=self.metrics.handoff_seconds.observe,
        )
        self.writer = BatchWriter(connect_db, topics, clock=self.clock.now)
        self._broker = broker
        # Twice the in-flight window: room for a resent window while old entries drain.
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=2 * config.receive_maximum)
        self._generation = 0
        self._gen_lock = threading.Lock()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        #: gateways that said ``online`` before this connection's SUBACK (network thread)
        self._to_answer: set[str] = set()
        self.answers_sent = 0
        self._writer_thread: threading.Thread | None = None
        self._client = self._make_client()
        self.batches_committed = 0

    # -- public -----------------------------------------------------------------------------

    def register(self, handler: HandOff) -> None:
        """Add a hand-off handler (call before :meth:`start`)."""
        self.handoff.register(handler)

    def start(self, wait_connected_s: float = 10.0) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        try:
            self._client.connect(
                self._broker.host,
                self._broker.port,
                keepalive=self.config.keepalive_s,
                clean_start=False,
                properties=props,
            )
        except (OSError, ValueError) as err:
            raise BrokerUnavailable(
                f"cannot connect to MQTT broker at {self._broker}: {err}"
            ) from err
        self.handoff.start()
        self._writer_thread = threading.Thread(
            target=self._writer_loop, name="ingest-writer", daemon=True
        )
        self._writer_thread.start()
        self._client.loop_start()
        if not self._connected.wait(wait_connected_s):
            self.stop()
            raise BrokerUnavailable(
                f"MQTT broker at {self._broker} did not accept the connection and subscriptions"
            )

    def stop(self, timeout_s: float = 15.0) -> None:
        """Finish the batch in hand, then disconnect; unacked messages stay with the broker."""
        self._stopping.set()
        if self._writer_thread is not None:
            self._writer_thread.join(timeout_s)
            self._writer_thread = None
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()
        self.handoff.stop()
        self.writer.close()

    def queue_depth(self) -> int:
        return self._queue.qsize()

    # -- MQTT (network thread) --------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self._broker.username:
            client.username_pw_set(self._broker.username, self._broker.password)
        if self._broker.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.enable_logger(logging.getLogger("paho.ingest"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        with self._gen_lock:
            self._generation += 1
            generation = self._generation
        self._to_answer.clear()
        if flags.session_present:
            # The broker resends every unacked message; drop our stale copies of them.
            kept: list[Inbound] = []
            while True:
                try:
                    kept.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stale = [m for m in kept if m.generation != generation]
            for m in kept:
                if m.generation == generation:
                    self._queue.put_nowait(m)
            if stale:
                log.info("reconnected with session: %d queued messages will be resent", len(stale))
        subs = [(self.topics.shared_uplink_filter(self.config.group), 1)]
        if self.config.gateway_topics:
            base = self.topics.base
            subs += [
                (f"$share/{self.config.group}/{base}/gw/+/deadletter", 1),
                (self.topics.gateway_state_filter(), 1),
            ]
        client.subscribe(subs)
        log.info(
            "ingest worker %s connected (session %s), generation %d",
            self.config.client_id,
            "resumed" if flags.session_present else "new",
            generation,
        )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("the broker refused ingest subscriptions: %s", failed)
            return
        self._connected.set()  # subscribed: from now on nothing published is missed
        waiting, self._to_answer = sorted(self._to_answer), set()
        for gateway_id in waiting:
            self._answer(gateway_id)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("MQTT connection lost (%s); paho reconnects", reason)

    def _answer(self, gateway_id: str) -> None:
        """Tell a gateway that this worker is subscribed (QoS 1, never retained)."""
        body = json.dumps(
            {
                "state": "online",
                "worker": self.config.client_id,
                "ts": datetime.now(UTC).isoformat(),
            }
        )
        self._client.publish(self.topics.gateway_ingest(gateway_id), body, qos=1)
        self.answers_sent += 1

    def _on_gateway_state(self, topic: str, payload: bytes) -> None:
        gateway_id = self.topics.parse_gateway_state(topic)
        if gateway_id is None or not self.config.gateway_topics:
            return
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            return  # the writer dead-letters it with the reason
        if not isinstance(doc, dict) or doc.get("state") != "online":
            return
        if self._connected.is_set():
            self._answer(gateway_id)
        else:
            self._to_answer.add(gateway_id)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/state"):
            self._on_gateway_state(msg.topic, bytes(msg.payload))
        item = Inbound(
            topic=msg.topic,
            payload=bytes(msg.payload),
            received_at=self.clock.now(),
            mid=msg.mid,
            qos=msg.qos,
            generation=self._generation,
        )
        while True:
            try:
                self._queue.put(item, timeout=5.0)
                return
            except queue.Full:
                # Cannot happen while the broker honours receive_maximum; never drop.
                log.warning("ingest queue full (%d); network thread waiting", self._queue.qsize())
                if self._stopping.is_set():
                    return

    # -- writer thread ----------------------------------------------------------------------

    def _collect(self) -> list[Inbound]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        items = len(first.payload) // 200  # rough item estimate to bound batch size
        deadline = time.monotonic() + self.config.batch_linger_s
        while len(batch) < self.config.batch_max_messages and items < self.config.batch_max_items:
            try:
                msg = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    msg = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            batch.append(msg)
            items += len(msg.payload) // 200
        return batch

    def _writer_loop(self) -> None:
        m = self.metrics
        while not self._stopping.is_set():
            m.queue_depth.set(self._queue.qsize())
            batch = self._collect()
            if not batch:
                continue
            outcome = self._write_with_retry(batch)
            if outcome is None:
                return  # stopping with the batch unwritten: the broker keeps it
            if self.handoff.inline:
                self.handoff.dispatch(outcome.new_items)
            self._ack(batch)
            if not self.handoff.inline:
                self.handoff.dispatch(outcome.new_items)

    def _write_with_retry(self, batch: list[Inbound]) -> BatchOutcome | None:
        m = self.metrics
        delay = self.config.retry_initial_s
        failures = 0
        while True:
            started = time.perf_counter()
            try:
                outcome = self.writer.write(batch)
            except StoreError as err:
                failures += 1
                m.db_errors.inc()
                m.db_up.set(0)
                log.warning(
                    "batch of %d messages not stored (attempt %d), retrying in %.1fs; "
                    "nothing is acknowledged meanwhile: %s",
                    len(batch),
                    failures,
                    delay,
                    err,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                if self._stopping.wait(delay * (0.8 + 0.4 * random.random())):
                    return None
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            if failures:
                log.info("database is back: batch stored after %d failed attempts", failures)
            m.db_up.set(1)
            m.batch_seconds.observe(time.perf_counter() - started)
            m.batch_messages.observe(len(batch))
            m.batches.inc()
            for msg in batch:
                parsed = self.topics.parse_uplink(msg.topic)
                m.messages_in.labels(parsed[1].value if parsed else "gateway").inc()
            for kind, n in outcome.kinds.items():
                m.items_in.labels(kind).inc(n)
            m.rows_written.labels("readings").inc(outcome.readings_written)
            m.rows_written.labels("events").inc(outcome.events_written)
            m.duplicates.inc(outcome.duplicates)
            m.dead_letters.inc(len(outcome.dead_letters))
            m.registry_corrections.inc(outcome.corrections)
            if outcome.dead_letters:
                first = outcome.dead_letters[0]
                log.warning(
                    "%d dead letters in this batch; first from %s (gateway %s): %s",
                    len(outcome.dead_letters),
                    first.source,
                    first.gateway_id,
                    first.reason,
                )
            self.batches_committed += 1
            return outcome

    def _ack(self, batch: list[Inbound]) -> None:
        # Under the generation lock, so a reconnection cannot slip between check and ack.
        with self._gen_lock:
            generation = self._generation
            for msg in batch:
                if msg.qos == 0:
                    continue
                if msg.generation != generation:
                    self.metrics.acks_skipped.inc()
                    continue
                rc = self._client.ack(msg.mid, msg.qos)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    self.metrics.acks_skipped.inc()
