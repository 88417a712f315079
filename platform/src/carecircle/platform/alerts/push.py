"""Push alert changes to MQTT ``{root}/v1/platform/alerts`` for dashboards and apps.

The source of truth is the ``cc_alert`` NOTIFY sent by :mod:`.repository` in the same
transaction as each change, so nothing is pushed that was not committed.  One
process (the scheduler leader, or ``serve``) runs :func:`run_alert_push` on a
dedicated connection; it forwards every notification (JSON, QoS 1) within
milliseconds.  Each message carries the notification fields plus ``opened_at``,
``last_seen_at``, ``message`` and ``snoozed_until`` of the alert.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from carecircle.common.contract import Topics
from carecircle.platform.alerts.repository import NOTIFY_CHANNEL, Conn, parse_notification

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]


def _enrich(conn: Conn, note: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute(
        "SELECT opened_at, last_seen_at, message, snoozed_until, occurrences, device_id "
        "FROM alerts WHERE id = %s",
        (note.get("id"),),
    ).fetchone()
    if row is not None:
        opened, seen, message, snoozed, occurrences, device = row
        note.update(
            opened_at=opened.isoformat() if opened else None,
            last_seen_at=seen.isoformat() if seen else None,
            message=message,
            snoozed_until=snoozed.isoformat() if snoozed else None,
            occurrences=occurrences,
            device_id=device,
        )
    return note


def run_alert_push(
    listen_conn: Conn,
    read_conn: Conn,
    publish: Publish,
    topics: Topics,
    stop: threading.Event,
    *,
    poll_s: float = 0.5,
) -> int:
    """Forward ``cc_alert`` notifications until ``stop`` is set; returns how many were sent.

    ``listen_conn`` must be in autocommit mode; ``read_conn`` reads the alert row.
    A publish failure is logged and counted, never fatal.
    """
    listen_conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    topic = topics.alerts()
    sent = 0
    while not stop.is_set():
        for n in listen_conn.notifies(timeout=poll_s):
            try:
                note = _enrich(read_conn, parse_notification(n.payload))
                publish(topic, json.dumps(note, separators=(",", ":")).encode())
                sent += 1
            except Exception:
                log.exception("could not push alert change %s", n.payload[:200])
            if stop.is_set():
                break
    return sent


class AlertPushService:
    """Runs :func:`run_alert_push` in a thread with its own connections (``PlatformSettings``).

    ``start()`` connects to PostgreSQL and the broker (raising ``StoreUnavailable`` /
    ``BrokerUnavailable``) and starts forwarding; ``stop()`` ends it and disconnects.
    """

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> None:
        from carecircle.common.mqtt import BrokerAddress, new_connection
        from carecircle.platform.store import connect

        s = self._settings
        listen = connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True)
        read = connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True)
        mqtt = new_connection(BrokerAddress.from_url(s.mqtt_url))
        mqtt.connect()
        mqtt.client.loop_start()
        topics = Topics(s.topic_root)

        def publish(topic: str, payload: bytes) -> None:
            mqtt.client.publish(topic, payload, qos=1)

        def run() -> None:
            try:
                self.sent = run_alert_push(listen, read, publish, topics, self._stop)
            finally:
                mqtt.client.loop_stop()
                mqtt.client.disconnect()
                listen.close()
                read.close()

        self._thread = threading.Thread(target=run, name="alert-push", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
