"""Notifiers against real local servers (HTTP, SMTP, Mosquitto) and the outbox retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import socketserver
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from carecircle.common.contract.topics import Topics
from carecircle.common.errors import BrokerUnavailable
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.dispatch.notify.base import Notification, render_text
from carecircle.platform.dispatch.notify.mqtt import MqttNotifier
from carecircle.platform.dispatch.notify.outbox import RetryPolicy, deliver_due, enqueue
from carecircle.platform.dispatch.notify.sms import SmsNotifier
from carecircle.platform.dispatch.notify.smtp import EmailNotifier
from carecircle.platform.dispatch.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    sign,
    verify,
)
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
PAYLOAD = {
    "v": 1,
    "type": "escalation",
    "alert_id": 7,
    "kind": "gas",
    "site_id": "hh1",
    "reason": "critical",
    "lat": 30.0,
    "lon": 120.0,
}
Conn = psycopg.Connection[Any]


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        server: Any = self.server
        server.requests.append((self.path, dict(self.headers), body))
        status, answer = server.answers.pop(0) if server.answers else (200, {"code": 0})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests, server.answers = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, MAIL, RCPT (refuses *refuse*), DATA, QUIT."""

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        server: Any = self.server
        self.reply("220 localhost test SMTP")
        sender, rcpts, lines, in_data = "", [], [], False
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            if in_data:
                if line.rstrip(b"\r\n") == b".":
                    server.messages.append((sender, rcpts, b"".join(lines)))
                    sender, rcpts, lines, in_data = "", [], [], False
                    self.reply("250 OK queued")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            cmd = line.decode().strip()
            upper = cmd.upper()
            if upper.startswith("EHLO"):
                self.reply("250-localhost")
                self.reply("250 8BITMIME")
            elif upper.startswith("HELO"):
                self.reply("250 localhost")
            elif upper.startswith("MAIL FROM:"):
                sender = cmd[10:].strip(" <>")
                self.reply("250 OK")
            elif upper.startswith("RCPT TO:"):
                to = cmd[8:].strip(" <>")
                if "refuse" in to:
                    self.reply("550 no such user")
                else:
                    rcpts.append(to)
                    self.reply("250 OK")
            elif upper == "DATA":
                in_data = True
                self.reply("354 end with <CRLF>.<CRLF>")
            elif upper == "QUIT":
                self.reply("221 bye")
                return
            elif upper in ("RSET", "NOOP"):
                self.reply("250 OK")
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpHandler)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def outbox_db(fresh_database: Callable[[], str]) -> str:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


@pytest.fixture
def conn(outbox_db: str) -> Iterator[Conn]:
    with psycopg.connect(outbox_db, autocommit=True) as c:
        c.execute("DELETE FROM notifications")
        yield c


def free_port() -> int:
    server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    port = int(server.server_address[1])
    server.server_close()
    return port


def test_webhook_posts_signed_json(http_server: Any) -> None:
    url = f"http://127.0.0.1:{http_server.server_address[1]}/hook"
    notifier = WebhookNotifier("s3cret")
    result = notifier.send(Notification(1, "webhook", url, PAYLOAD))
    notifier.close()
    assert result.ok, result.error
    ((path, headers, body),) = http_server.requests
    assert path == "/hook" and headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected == sign("s3cret", body)
    assert verify("s3cret", body, headers[SIGNATURE_HEADER])
    assert not verify("other", body, headers[SIGNATURE_HEADER])
    assert int(headers[TIMESTAMP_HEADER]) > 1_700_000_000
    sent = json.loads(body)
    assert sent["alert_id"] == 7 and "sent_at" in sent


def test_webhook_failures_are_classified(http_server: Any) -> None:
    url = f"http://127.0.0.1:{http_server.server_address[1]}/hook"
    http_server.answers = [(500, {}), (404, {}), (429, {})]
    notifier = WebhookNotifier("s3cret", timeout_s=2)
    results = [notifier.send(Notification(1, "webhook", url, PAYLOAD)) for _ in range(3)]
    refused = notifier.send(Notification(1, "webhook", f"http://127.0.0.1:{free_port()}/", {}))
    notifier.close()
    assert [(r.ok, r.retryable) for r in results] == [(False, True), (False, False), (False, True)]
    assert results[0].error == "HTTP 500"
    assert not refused.ok and refused.retryable and "ConnectError" in (refused.error or "")


def test_sms_gateway_adapter(http_server: Any) -> None:
    url = f"http://127.0.0.1:{http_server.server_address[1]}/sms/send"
    http_server.answers = [
        (200, {"code": "OK", "message_id": "abc"}),
        (200, {"code": 40001, "message": "bad number"}),
    ]
    sms = SmsNotifier(url, "key-42", sender="CC")
    ok = sms.send(Notification(9, "sms", "+8613800000000", PAYLOAD))
    refused = sms.send(Notification(10, "sms", "+86", PAYLOAD))
    sms.close()
    assert ok.ok and ok.detail == "abc"
    assert not refused.ok and not refused.retryable and "40001" in (refused.error or "")
    _, headers, body = http_server.requests[0]
    assert headers["Authorization"] == "Bearer key-42"
    sent = json.loads(body)
    assert sent["to"] == "+8613800000000" and sent["reference"] == "9" and sent["sender"] == "CC"
    assert sent["text"] == render_text(PAYLOAD) and "gas alert #7" in sent["text"]


def test_email_over_smtp(smtp_server: Any) -> None:
    port = smtp_server.server_address[1]
    mailer = EmailNotifier("127.0.0.1", port, "dispatch@carecircle.test")
    ok = mailer.send(Notification(3, "email", "office@township.test", PAYLOAD))
    refused = mailer.send(Notification(4, "email", "refuse@township.test", PAYLOAD))
    down = EmailNotifier("127.0.0.1", free_port(), "x@y.test", timeout_s=2).send(
        Notification(5, "email", "a@b.test", PAYLOAD)
    )
    assert ok.ok, ok.error
    assert not refused.ok and not refused.retryable
    assert not down.ok and down.retryable
    ((sender, rcpts, raw),) = smtp_server.messages
    assert sender == "dispatch@carecircle.test" and rcpts == ["office@township.test"]
    msg = message_from_bytes(raw)
    assert msg["Subject"].startswith("[CareCircle] ESCALATION: gas alert #7")
    assert msg["X-CareCircle-Notification"] == "3"


def test_mqtt_notifier_publishes_qos1_to_the_responder_topic(
    mqtt_url: str, topic_root: str
) -> None:
    got: queue.Queue[tuple[str, int, bytes]] = queue.Queue(maxsize=10)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    ready = threading.Event()
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.put((m.topic, m.qos, m.payload))
    address = BrokerAddress.from_url(mqtt_url)
    sub.connect(address.host, address.port)
    sub.subscribe(Topics(topic_root).responder_tasks("+"), qos=1)
    sub.loop_start()
    try:
        assert ready.wait(5)
        notifier = MqttNotifier(address, Topics(topic_root))
        result = notifier.send(Notification(1, "mqtt", "vol-1", PAYLOAD))
        notifier.close()
        assert result.ok, result.error
        topic, qos, body = got.get(timeout=5)
        assert topic == f"{topic_root}/v1/responder/vol-1/task" and qos == 1
        assert json.loads(body) == PAYLOAD
    finally:
        sub.disconnect()
        sub.loop_stop()
    unreachable = MqttNotifier(
        BrokerAddress("127.0.0.1", free_port(), None, None, False), Topics(topic_root), timeout_s=1
    )
    with pytest.raises(BrokerUnavailable):
        unreachable.start()


def test_outbox_retries_with_backoff_and_stores_every_attempt(conn: Conn, http_server: Any) -> None:
    url = f"http://127.0.0.1:{http_server.server_address[1]}/hook"
    http_server.answers = [(500, {}), (503, {}), (200, {})]
    retry = RetryPolicy(max_attempts=5, base_s=2, cap_s=60)
    assert [retry.delay(n).total_seconds() for n in (1, 2, 3, 10)] == [2, 4, 8, 60]
    nid = enqueue(conn, channel="webhook", target=url, payload=PAYLOAD, now=T0)
    notifiers = {"webhook": WebhookNotifier("k", timeout_s=2)}
    timeline = []
    for offset in (0, 1, 2, 5, 6):
        counts = deliver_due(conn, notifiers, T0 + timedelta(seconds=offset), retry)
        timeline.append((offset, counts["delivered"], counts["retry"]))
    assert timeline == [(0, 0, 1), (1, 0, 0), (2, 0, 1), (5, 0, 0), (6, 1, 0)]
    row = conn.execute(
        "SELECT status, attempts, delivered_at, last_error FROM notifications WHERE id = %s",
        (nid,),
    ).fetchone()
    assert row == ("delivered", 3, T0 + timedelta(seconds=6), None)
    attempts = conn.execute(
        "SELECT at, ok, error FROM notification_attempts WHERE notification_id = %s ORDER BY id",
        (nid,),
    ).fetchall()
    assert attempts == [
        (T0, False, "HTTP 500"),
        (T0 + timedelta(seconds=2), False, "HTTP 503"),
        (T0 + timedelta(seconds=6), True, None),
    ]


def test_outbox_gives_up_after_max_attempts_or_a_permanent_error(conn: Conn) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    retry = RetryPolicy(max_attempts=3, base_s=1)
    a = enqueue(conn, channel="webhook", target=dead, payload=PAYLOAD, now=T0)
    b = enqueue(conn, channel="sms", target="+86138", payload=PAYLOAD, now=T0)  # no SMS notifier
    notifiers = {"webhook": WebhookNotifier("k", timeout_s=1)}
    for offset in range(0, 10):
        deliver_due(conn, notifiers, T0 + timedelta(seconds=offset), retry)
    rows = dict(
        (r[0], r[1:])
        for r in conn.execute(
            "SELECT id, status, attempts, last_error FROM notifications ORDER BY id"
        ).fetchall()
    )
    assert rows[a][:2] == ("failed", 3) and "ConnectError" in rows[a][2]
    assert rows[b] == ("failed", 1, "no sms notifier is configured")
