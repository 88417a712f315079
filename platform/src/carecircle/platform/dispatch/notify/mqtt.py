"""MQTT push to the responder app: ``{root}/v1/responder/{id}/task``, QoS 1."""

from __future__ import annotations

import json
import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from carecircle.common.contract.topics import Topics
from carecircle.common.errors import BrokerUnavailable
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.dispatch.notify.base import DeliveryResult, Notification

log = logging.getLogger(__name__)


class MqttNotifier:
    """Publishes task messages with QoS 1 and waits for the broker's PUBACK."""

    channel = "mqtt"

    def __init__(self, address: BrokerAddress, topics: Topics, *, timeout_s: float = 5.0) -> None:
        self._topics = topics
        self._timeout_s = timeout_s
        self._connected = threading.Event()
        self._conn = new_connection(address, client_id=None)
        self._conn.client.on_connect = self._on_connect
        self._conn.client.on_disconnect = self._on_disconnect
        self._started = False
        self._start_lock = threading.Lock()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object
    ) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object
    ) -> None:
        self._connected.clear()

    def start(self) -> None:
        """Connect once (senders run in parallel threads; only the first connects)."""
        with self._start_lock:
            if self._started:
                return
            self._conn.connect()
            self._conn.client.loop_start()
            self._started = True
        if not self._connected.wait(self._timeout_s):
            raise BrokerUnavailable(f"MQTT broker {self._conn.address} did not accept us in time")

    def send(self, notification: Notification) -> DeliveryResult:
        if not self._started:
            self.start()
        topic = self._topics.responder_tasks(notification.target)
        body = json.dumps(notification.payload, separators=(",", ":"), sort_keys=True)
        if not self._connected.wait(self._timeout_s):
            return DeliveryResult(False, "not connected to the MQTT broker")
        info = self._conn.client.publish(topic, body, qos=1)
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as err:
            return DeliveryResult(False, f"publish failed: {err}")
        if not info.is_published():
            return DeliveryResult(False, "no PUBACK from the broker in time")
        return DeliveryResult(True, detail=topic)

    def close(self) -> None:
        with self._start_lock:
            if not self._started:
                return
            self._started = False
            self._connected.clear()
            self._conn.client.disconnect()
            self._conn.client.loop_stop()
