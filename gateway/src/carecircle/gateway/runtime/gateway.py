"""The gateway process: local broker → adapters → validation → durable queue → uplink.

Threads: paho's local network thread runs :meth:`Gateway.handle_native` for each
device message and acknowledges it to the local broker only after the resulting
rows are committed (manual ack); the uplink sender thread drains the queue; the
housekeeping thread (in :meth:`Gateway.run`) does heartbeats, per-sensor liveness,
queue bounds and the status line.

The local subscription is a persistent MQTT session (``clean_start=False`` with a
session expiry), so QoS 1 messages devices publish while the gateway is down or
restarting are kept by the local broker and delivered when it is back.  QoS 0
publishes are not kept by MQTT itself; devices (or the bridge: zigbee2mqtt's
``qos`` option) must publish with QoS 1 for the no-loss guarantee.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from carecircle.common.clock import Clock, SystemClock
from carecircle.common.contract import Code, Envelope, GatewayConfig, Kind, Topics
from carecircle.common.errors import CareCircleError, ContractError
from carecircle.common.mqtt import BrokerAddress, MqttConnection, new_connection
from carecircle.gateway.adapters import Bases
from carecircle.gateway.adapters.base import DeadLetter
from carecircle.gateway.liveness import LivenessTracker
from carecircle.gateway.logs import GatewayLog
from carecircle.gateway.outbox import Item, Lane, Outbox
from carecircle.gateway.pipeline import Normaliser, Outcome, dead_letter_record, make_status
from carecircle.gateway.pipeline.normalise import to_json
from carecircle.gateway.ratelimit import DeviceRateLimiter
from carecircle.gateway.registry import ConfigCache, Registry, parse_config
from carecircle.gateway.settings import GatewaySettings
from carecircle.gateway.uplink import UplinkOptions, UplinkSender

log = logging.getLogger(__name__)


def lane_of(env: Envelope) -> Lane:
    if env.is_alarm:
        return Lane.ALARM
    if env.kind in (Kind.STATUS, Kind.HEARTBEAT):
        return Lane.STATUS
    return Lane.ROUTINE


def item_of(env: Envelope) -> Item:
    return Item(lane_of(env), str(env.id), env.to_json(), env.gw_ts.timestamp())


@dataclass
class Counters:
    received: int = 0
    enqueued: int = 0
    dead_letters: int = 0
    redeliveries_skipped: int = 0
    liveness_offline: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Gateway:
    def __init__(
        self, settings: GatewaySettings, clock: Clock | None = None, *, label: bool = False
    ) -> None:
        """``label``: prefix log lines with the gateway id (several gateways per process)."""
        self.settings = settings
        self.log = GatewayLog(log, settings.gateway_id if label else "")
        self.clock: Clock = clock or SystemClock()
        self.topics = Topics(settings.topic_root)
        self.bases = Bases(
            zigbee2mqtt=settings.zigbee2mqtt_base,
            careband=settings.careband_base,
            bedsensor=settings.bedsensor_base,
            homeassistant=settings.homeassistant_base,
        )
        self.outbox = Outbox(
            settings.queue_path,
            synchronous=settings.queue_synchronous,
            max_messages=settings.queue_max_messages,
            max_age_s=settings.queue_max_age_days * 86400.0,
        )
        self.cache = ConfigCache(settings.cache_path())
        self.registry = Registry.empty(settings.gateway_id, settings.site_id)
        cached = self.cache.load(settings.gateway_id)
        if cached is not None:
            self.registry = Registry.from_config(cached)
            self.log.info(
                "registry loaded from cache %s: version %d, %d devices",
                self.cache.path,
                cached.version,
                len(cached.devices),
            )
        self.normaliser = Normaliser(settings.gateway_id, self.bases, self.outbox.memory())
        self.liveness = LivenessTracker(self.clock.now())
        self.limiter = DeviceRateLimiter(settings.device_rate_per_s, settings.device_rate_burst)
        self.counters = Counters()
        self._lock = threading.Lock()  # one native message at a time through the pipeline
        self._ha_subscribed: set[str] = set()
        #: SUBSCRIBE packet id → the topic filters it asked for (network thread only).
        self._local_subs: dict[int, list[str]] = {}
        #: Set when the local broker has granted this connection's subscriptions
        #: (SUBACK); before that, on a first start, devices' messages have no session.
        self.local_subscribed = threading.Event()
        self.uplink: UplinkSender | None = None
        self._local: MqttConnection | None = None
        self._stop = threading.Event()
        self._housekeeping: _Housekeeping | None = None

    # -- the pipeline ----------------------------------------------------------------

    def handle_native(
        self, topic: str, payload: bytes, *, redelivered: bool = False
    ) -> Outcome | None:
        """Normalise one native message and commit the result durably.

        Never raises on bad input.  Returns ``None`` when the message was a broker
        redelivery of one already committed (same topic and bytes, DUP flag set).
        Raises :class:`~carecircle.common.errors.StoreError` only when the queue
        cannot be written (then the message is not acknowledged to the local broker).
        """
        digest = hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\0" + payload).digest()
        with self._lock:
            self.counters.received += 1
            if redelivered and self.outbox.seen_native(digest):
                self.counters.redeliveries_skipped += 1
                self.log.debug("skipped a redelivery already committed: %.120s", topic)
                return None
            now = self.clock.now()
            outcome = self.normaliser.process(topic, payload, self.registry, now)
            items = [item_of(env) for env in outcome.envelopes if self._within_rate(env)]
            for env in self._back_online(outcome, now):
                items.append(item_of(env))
            items.extend(self._dead_items(outcome.dead_letters, now))
            self.outbox.enqueue(items, memory=outcome.memory, native_digest=digest)
            self.counters.enqueued += len(items)
            self.counters.dead_letters += len(outcome.dead_letters)
            if outcome.learned or outcome.forget:
                self.registry = self.registry.with_ha(outcome.learned, outcome.forget)
                self._subscribe_ha()
        if items and self.uplink is not None:
            self.uplink.notify()
        return outcome

    def _within_rate(self, env: Envelope) -> bool:
        """Routine items over the device's rate are dropped and counted; others pass."""
        if lane_of(env) is not Lane.ROUTINE or self.limiter.allow(env.dev):
            return True
        n = self.limiter.dropped.get(env.dev, 0)
        self.counters.extra["rate_limited"] = self.counters.extra.get("rate_limited", 0) + 1
        if n > 0 and 10 ** len(str(n)) // 10 == n:  # 1, 10, 100, …
            self.log.warning(
                "device %s over its rate of %.0f items/s: %d routine items dropped",
                env.dev,
                self.limiter.rate_per_s,
                n,
            )
        return False

    def _back_online(self, outcome: Outcome, now: datetime) -> list[Envelope]:
        out = []
        for dev in outcome.seen:
            if self.liveness.seen(dev, now):
                binding = next((b for b in self.registry.devices if b.id == dev), None)
                if binding is not None:
                    out.append(
                        self._availability(
                            binding.id, binding.site, 1.0, now, binding.res, binding.room, {}
                        )
                    )
        return out

    def _availability(
        self,
        dev: str,
        site: str,
        value: float,
        now: datetime,
        res: str | None,
        room: str | None,
        attrs: dict[str, Any],
    ) -> Envelope:
        return make_status(
            self.settings.gateway_id,
            device_id=dev,
            site=site,
            kind=Kind.STATUS,
            code=Code.AVAILABILITY,
            value=value,
            at=now,
            res=res,
            room=room,
            attrs={"source": "gateway_liveness", **attrs},
        )

    def _dead_items(self, records: list[dict[str, Any]], now: datetime) -> list[Item]:
        for r in records:
            self.log.info("dead letter: %s (topic %.120s)", r["reason"], r["topic"])
        return [Item(Lane.DEADLETTER, r["id"], to_json(r), now.timestamp()) for r in records]

    def apply_config(self, raw: bytes) -> bool:
        """A config pushed by the platform: validate, ignore older versions, cache."""
        now = self.clock.now()
        try:
            config = parse_config(raw, self.settings.gateway_id)
        except ContractError as err:
            self.log.warning("refused pushed config: %s", err)
            letter = DeadLetter(str(err), self.topics.gateway_config(self.settings.gateway_id), raw)
            with self._lock:
                self.outbox.enqueue(
                    self._dead_items(
                        [dead_letter_record(self.settings.gateway_id, letter, now)], now
                    )
                )
                self.counters.dead_letters += 1
            return False
        return self.use_config(config)

    def use_config(self, config: GatewayConfig) -> bool:
        with self._lock:
            if config.version <= self.registry.version:
                self.log.debug(
                    "ignoring config version %d (have %d)", config.version, self.registry.version
                )
                return False
            self.cache.save(config)  # cached first: whoever sees the new version finds it
            self.registry = Registry.from_config(config, previous=self.registry)
            self.liveness.watch((d.id for d in config.devices), self.clock.now())
        self.log.info(
            "registry updated to version %d: %d devices", config.version, len(config.devices)
        )
        return True

    # -- housekeeping ----------------------------------------------------------------

    def heartbeat(self) -> None:
        now = self.clock.now()
        env = make_status(
            self.settings.gateway_id,
            device_id=self.settings.gateway_id,
            site=self.registry.site_id,
            kind=Kind.HEARTBEAT,
            code=Code.HEARTBEAT,
            value=float(len(self.outbox)),
            at=now,
            attrs={"dead_letters": self.counters.dead_letters, "dropped": self.outbox.dropped},
        )
        with self._lock:
            self.outbox.enqueue([item_of(env)])
        self._notify()

    def check_liveness(self) -> int:
        now = self.clock.now()
        with self._lock:
            silent = self.liveness.due(self.registry.devices, now)
            items = [
                item_of(
                    self._availability(
                        s.binding.id,
                        s.binding.site,
                        0.0,
                        now,
                        s.binding.res,
                        s.binding.room,
                        {"silent_s": round(s.silent_s)},
                    )
                )
                for s in silent
            ]
            if items:
                self.outbox.enqueue(items)
                self.counters.liveness_offline += len(items)
        for s in silent:
            self.log.warning(
                "device %s silent for %.0f s: reported offline", s.binding.id, s.silent_s
            )
        if items:
            self._notify()
        return len(items)

    def status_line(self, sent_per_s: float) -> str:
        depth = self.outbox.depth()
        return (
            f"queue={sum(depth.values())} (alarm={depth[Lane.ALARM]} status={depth[Lane.STATUS]} "
            f"deadletter={depth[Lane.DEADLETTER]} routine={depth[Lane.ROUTINE]}) "
            f"sent/s={sent_per_s:.1f} received={self.counters.received} "
            f"dead_letters={self.counters.dead_letters} dropped={self.outbox.dropped} "
            f"uplink={self._uplink_state()}"
        )

    def _uplink_state(self) -> str:
        if self.uplink is None or not self.uplink.connected.is_set():
            return "down"
        if self.settings.uplink_wait_for_ingest and not self.uplink.ingest_ready.is_set():
            return "held (no ingest worker yet)"
        return "up"

    def counter_values(self) -> dict[str, int]:
        return {
            "received": self.counters.received,
            "enqueued": self.counters.enqueued,
            "dead_letters": self.counters.dead_letters,
            "redeliveries_skipped": self.counters.redeliveries_skipped,
            "liveness_offline": self.counters.liveness_offline,
            "dropped": self.outbox.dropped,
            "rate_limited": self.counters.extra.get("rate_limited", 0),
            "sent": self.uplink.sent_items if self.uplink else 0,
        }

    def _notify(self) -> None:
        if self.uplink is not None:
            self.uplink.notify()

    # -- MQTT ------------------------------------------------------------------------

    def _local_client_id(self) -> str:
        return self.settings.local_client()

    def start(self) -> None:
        s = self.settings
        self.uplink = UplinkSender(
            UplinkOptions(
                gateway_id=s.gateway_id,
                topics=self.topics,
                address=BrokerAddress.from_url(s.mqtt_url),
                ca_file=s.mqtt_ca_file,
                client_id=s.uplink_client(),
                batch_max_items=s.batch_max_items,
                batch_max_delay_ms=s.batch_max_delay_ms,
                max_inflight=s.uplink_max_inflight,
                reconnect_max_s=s.uplink_reconnect_max_s,
                log_label=self.log.label,
                wait_for_ingest=s.uplink_wait_for_ingest,
            ),
            self.outbox,
            on_config=self.apply_config,
        )
        self.uplink.start()
        local = new_connection(
            BrokerAddress.from_url(s.local_mqtt_url),
            self._local_client_id(),
            clean_start=False,
            session_expiry_s=s.local_session_expiry_s,
        )
        c = local.client
        c.reconnect_delay_set(min_delay=1, max_delay=max(1, s.uplink_reconnect_max_s))
        c.manual_ack_set(True)
        c.on_connect = self._on_local_connect
        c.on_disconnect = self._on_local_disconnect
        c.on_subscribe = self._on_local_subscribe
        c.on_message = self._on_local_message
        c.connect_async(
            local.address.host,
            local.address.port,
            keepalive=30,
            clean_start=False,
            properties=local.properties,
        )
        c.loop_start()
        self._local = local
        self.log.info(
            "listening to devices on %s (client id %s)", local.address, self._local_client_id()
        )

    def _on_local_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self.log.error("local broker refused the gateway: %s", reason)
            return
        topics = self.bases.subscriptions() + sorted(self._ha_extra_topics())
        self._local_subscribe(client, topics)
        self._ha_subscribed = set(self._ha_extra_topics())
        self.log.info(
            "local broker connected (session present: %s); subscribing to %d topic filters",
            getattr(flags, "session_present", None),
            len(topics),
        )

    def _local_subscribe(self, client: mqtt.Client, topics: list[str]) -> None:
        rc, mid = client.subscribe([(t, 1) for t in topics])
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._local_subs[mid] = topics

    def _on_local_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        """SUBACK: only now does the local broker keep and deliver these filters' messages.

        A refused filter (e.g. the local broker's ACL) means its devices are never heard:
        logged as an error per filter, never silently.
        """
        topics = self._local_subs.pop(mid, [])
        refused = [
            (topics[i] if i < len(topics) else "?", str(r))
            for i, r in enumerate(reasons)
            if r.is_failure
        ]
        for topic, reason in refused:
            self.log.error(
                "local broker refused the subscription to %s (%s): its devices are not heard",
                topic,
                reason,
            )
        if len(refused) < len(reasons):
            self.log.info(
                "local broker granted %d of %d topic filters",
                len(reasons) - len(refused),
                len(reasons),
            )
            self.local_subscribed.set()

    def _on_local_disconnect(
        self, _c: mqtt.Client, _u: Any, _f: Any, _reason: ReasonCode, _p: Any
    ) -> None:
        self.local_subscribed.clear()
        self._local_subs.clear()

    def _ha_extra_topics(self) -> set[str]:
        """Learned Home Assistant topics outside the family bases' subscriptions."""
        bases = [
            f"{b}/"
            for b in (
                self.bases.zigbee2mqtt,
                self.bases.careband,
                self.bases.bedsensor,
                self.bases.homeassistant,
            )
        ]
        return {t for t in self.registry.ha_by_topic if not any(t.startswith(b) for b in bases)}

    def _subscribe_ha(self) -> None:
        if self._local is None:
            return
        new = self._ha_extra_topics() - self._ha_subscribed
        if new:
            self._local_subscribe(self._local.client, sorted(new))
            self._ha_subscribed |= new

    def _on_local_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.handle_native(msg.topic, bytes(msg.payload), redelivered=bool(msg.dup))
        except CareCircleError as err:
            # Not acknowledged: the local broker keeps it in the session and
            # redelivers it when the gateway reconnects.
            self.log.error("could not queue a device message (kept by the local broker): %s", err)
            return
        except Exception:
            self.log.exception(
                "unexpected failure on topic %.120s; message kept by the local broker", msg.topic
            )
            return
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)

    def stop(self) -> None:
        if self._local is not None:
            self._local.client.disconnect()
            self._local.client.loop_stop()
            self._local = None
        if self.uplink is not None:
            self.uplink.stop()
        self.outbox.save_counters(self.counter_values())
        self.outbox.close()

    def request_stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` (or :meth:`request_stop`); housekeeping on this thread."""
        stop = stop or self._stop
        self.start()
        try:
            while not stop.is_set() and not self._stop.is_set():
                self.tick(time.monotonic())
                stop.wait(0.5)
        finally:
            self.log.info("stopping: %s", self.status_line(0.0))
            self.stop()

    def tick(self, now: float) -> None:
        """One housekeeping pass (``now``: monotonic seconds): heartbeat, liveness,
        queue bounds, status line; each when it is due."""
        s = self.settings
        hk = self._housekeeping
        if hk is None:
            hk = self._housekeeping = _Housekeeping(
                next_heartbeat=now,
                next_status=now + s.status_interval_s,
                next_bounds=now + 60,
                last_status=now,
            )
        if now >= hk.next_heartbeat:
            self.heartbeat()
            hk.next_heartbeat = now + s.heartbeat_interval_s
        self.check_liveness()
        if now >= hk.next_bounds:
            self.outbox.enforce_bounds(time.time())
            hk.next_bounds = now + 60
        if now >= hk.next_status:
            sent = self.uplink.sent_items if self.uplink else 0
            rate = (sent - hk.last_sent) / max(now - hk.last_status, 1e-6)
            self.log.info("status: %s", self.status_line(rate))
            self.outbox.save_counters(self.counter_values())
            hk.last_sent, hk.last_status = sent, now
            hk.next_status = now + s.status_interval_s


@dataclass
class _Housekeeping:
    """When the next periodic duties of a gateway are due (monotonic seconds)."""

    next_heartbeat: float
    next_status: float
    next_bounds: float
    last_status: float
    last_sent: int = 0
