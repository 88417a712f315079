"""The MQTT edge of the simulator: connect, run a paced source, send scenario commands."""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import IO, Any

import paho.mqtt.client as mqtt

from carecircle.common.errors import BrokerUnavailable
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.live.publisher import Pacer, Source, Stats

log = logging.getLogger(__name__)


def connect(
    url: str,
    client_id: str,
    *,
    subscribe: list[str] | None = None,
    on_message: Callable[[str, bytes], None] | None = None,
    timeout_s: float = 10.0,
) -> mqtt.Client:
    """A started paho client, connected (and subscribed) or :class:`BrokerUnavailable`."""
    conn = new_connection(BrokerAddress.from_url(url), client_id)
    client = conn.client
    ready = threading.Event()
    topics = list(subscribe or [])

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("broker refused the connection: %s", rc)
            return
        if topics:
            c.subscribe([(t, 1) for t in topics])
        else:
            ready.set()

    def on_subscribe(*_: object) -> None:
        ready.set()

    def on_msg(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if on_message is not None:
            on_message(msg.topic, bytes(msg.payload))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_msg
    client.max_queued_messages_set(0)
    conn.connect()
    client.loop_start()
    if not ready.wait(timeout_s):
        client.loop_stop()
        raise BrokerUnavailable(f"no answer from the MQTT broker at {conn.address}")
    return client


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def run_live(
    source: Source,
    url: str,
    bases: TopicBases,
    *,
    speed: float,
    stop: threading.Event,
    duration_s: float | None = None,
    truth_out: IO[str] | None = None,
    report: Callable[[Stats], None] | None = None,
    listen: bool = True,
) -> Stats:
    """Publish ``source`` to the broker at ``url``; take scenario commands when ``listen``."""
    holder: list[Pacer] = []

    def on_message(topic: str, payload: bytes) -> None:
        if holder and topic == bases.control:
            holder[0].on_control(payload)

    client = connect(
        url,
        f"cc-sim-{uuid.uuid4().hex[:8]}",
        subscribe=[bases.control] if listen else None,
        on_message=on_message,
    )
    try:
        pacer = Pacer(source, client, bases, speed=speed, truth_out=truth_out)
        holder.append(pacer)
        stats = pacer.run(stop, duration_s=duration_s, report=report)
    finally:
        close(client)
    return stats


def send_scenario(
    url: str,
    bases: TopicBases,
    command: dict[str, Any],
    *,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Ask a running ``carecircle sim run`` to start an incident; returns its answer."""
    request_id = uuid.uuid4().hex
    answers: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=10)

    def on_message(topic: str, payload: bytes) -> None:
        try:
            ack = json.loads(payload)
        except ValueError:
            return
        if isinstance(ack, dict) and ack.get("request_id") == request_id:
            answers.put_nowait(ack)

    client = connect(
        url, f"cc-scenario-{request_id[:8]}", subscribe=[bases.control_ack], on_message=on_message
    )
    try:
        body = {"cmd": "incident", "request_id": request_id, **command}
        client.publish(bases.control, json.dumps(body), qos=1).wait_for_publish(timeout_s)
        try:
            return answers.get(timeout=timeout_s)
        except queue.Empty as err:
            raise BrokerUnavailable(
                f"no running simulator answered on {bases.control} within {timeout_s:g} s "
                "(start one with `carecircle sim run` using the same --topic-root)"
            ) from err
    finally:
        close(client)
