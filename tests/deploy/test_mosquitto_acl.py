"""deploy/mosquitto on a real Mosquitto: passwords, the ACL (gateways, responders) and TLS.

The production configuration is used as written, with only its ports and file paths
moved into the test's directory (and ``user root`` so the broker can read them there).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from carecircle.platform.demo.supervisor import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PASSWD = shutil.which("mosquitto_passwd")
OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists() or PASSWD is None or OPENSSL is None,
    reason="needs mosquitto, mosquitto_passwd and openssl",
)

USERS = {"platform": "pw-platform", "gw-1": "pw-gw1", "gw-2": "pw-gw2", "r-1": "pw-r1",
         "r-2": "pw-r2"}  # fmt: skip
NOT_AUTHORIZED = 135


def ok(code: int) -> bool:
    """An MQTT 5 PUBACK reason below 0x80 is a success (16 = no matching subscribers)."""
    return code < 128


@dataclass(frozen=True)
class Broker:
    plain_port: int
    tls_port: int
    ca: Path
    log: Path


def _make_certs(d: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost."""

    def run(*args: str) -> None:
        subprocess.run([OPENSSL or "openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=cc-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "san.ext")  # fmt: skip


CONFIGS = {
    "production": DEPLOY / "mosquitto.conf",
    "compose": ROOT / "deploy" / "compose" / "mosquitto.conf",
}


def _config_for_test(source: Path, d: Path, plain_port: int, tls_port: int) -> str:
    """A deploy/ Mosquitto configuration with only its ports and paths moved to ``d``."""
    out = []
    for line in source.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if line == "listener 8883":
            line = f"listener {tls_port} 127.0.0.1"
        elif line in {"listener 1883 127.0.0.1", "listener 1883"}:
            line = f"listener {plain_port} 127.0.0.1"
        elif key in {"certfile", "keyfile", "cafile", "password_file", "acl_file"}:
            line = f"{key} {d / Path(line.split()[1]).name}"
        elif key == "persistence_location":
            line = f"persistence_location {d}/"
        elif key == "log_dest":
            line = "log_dest stdout"
        out.append(line)
    out.append("user root")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    d = tmp_path_factory.mktemp(f"mosquitto-{request.param}")
    _make_certs(d)
    shutil.copy(DEPLOY / "carecircle.acl", d / "carecircle.acl")
    passwd = d / "carecircle.passwd"
    for i, (user, password) in enumerate(USERS.items()):
        flags = ["-c", "-b"] if i == 0 else ["-b"]
        subprocess.run([PASSWD or "", *flags, str(passwd), user, password], check=True)
    plain_port, tls_port = free_port(), free_port()
    (d / "test.conf").write_text(_config_for_test(CONFIGS[request.param], d, plain_port, tls_port))
    log = d / "mosquitto.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(d / "test.conf")], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                for port in (plain_port, tls_port):
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.05)
        else:
            pytest.fail("broker did not start: " + log.read_text())
        yield Broker(plain_port, tls_port, d / "ca.crt", log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Client:
    """A small synchronous wrapper around a paho MQTT 5 client for these tests."""

    def __init__(
        self, broker: Broker, user: str | None, password: str | None = None, *, tls: bool = False
    ) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, password if password is not None else USERS[user])
        if tls:
            self.c.tls_set(ca_certs=str(broker.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.got_message = threading.Event()
        self.suback: dict[int, list[ReasonCode]] = {}
        self.puback: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", broker.tls_port if tls else broker.plain_port)
        self.c.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self.connected.set()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.append((msg.topic, msg.payload))
        self.got_message.set()

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        with self._acked:
            self.suback[mid] = codes
            self._acked.notify_all()

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._acked:
            self.puback[mid] = rc
            self._acked.notify_all()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> int:
        _, mid = self.c.subscribe(topic, qos=1)
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.suback, 10), "no SUBACK"
        return self.suback[mid][0].value

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.puback, 10), "no PUBACK"
        return self.puback[info.mid].value

    def wait_message(self, timeout_s: float = 5) -> bool:
        return self.got_message.wait(timeout_s)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients(broker: Broker) -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def connect(made: list[Client], broker: Broker, user: str | None, **kw: object) -> Client:
    client = Client(broker, user, **kw)  # type: ignore[arg-type]
    made.append(client)
    return client


def test_anonymous_and_wrong_password_are_refused(broker: Broker, clients: list[Client]) -> None:
    assert not connect(clients, broker, None).accepted
    assert not connect(clients, broker, "gw-1", password="wrong").accepted
    assert connect(clients, broker, "gw-1").accepted


def test_gateway_publishes_only_under_its_own_id(broker: Broker, clients: list[Client]) -> None:
    platform = connect(clients, broker, "platform")
    assert platform.subscribe("$share/ingest/cc/v1/gw/+/up/+") == 1
    gw1 = connect(clients, broker, "gw-1")
    assert gw1.publish("cc/v1/gw/gw-2/up/batch", b"forged") == NOT_AUTHORIZED
    assert ok(gw1.publish("cc/v1/gw/gw-1/up/batch", b"mine"))
    assert platform.wait_message()
    time.sleep(0.3)  # give a wrongly routed forged message the chance to show up too
    assert platform.messages == [("cc/v1/gw/gw-1/up/batch", b"mine")]


def test_gateway_reads_only_its_own_config_and_cannot_write_it(
    broker: Broker, clients: list[Client]
) -> None:
    platform = connect(clients, broker, "platform")
    assert ok(platform.publish("cc/v1/gw/gw-1/config", b'{"version":1}', retain=True))
    assert ok(platform.publish("cc/v1/gw/gw-2/config", b'{"version":2}', retain=True))
    gw1 = connect(clients, broker, "gw-1")
    # Mosquitto may grant a subscription and then withhold what the ACL forbids:
    # what counts is what is delivered.
    assert gw1.subscribe("cc/v1/gw/gw-2/config") in {1, NOT_AUTHORIZED}
    assert gw1.subscribe("cc/v1/gw/+/config") in {1, NOT_AUTHORIZED}
    assert gw1.subscribe("cc/v1/gw/gw-1/config") == 1
    assert gw1.wait_message()
    time.sleep(0.3)
    assert {m for m in gw1.messages} == {("cc/v1/gw/gw-1/config", b'{"version":1}')}
    assert gw1.publish("cc/v1/gw/gw-1/config", b'{"version":99}') == NOT_AUTHORIZED
    assert gw1.publish("cc/v1/gw/gw-1/cmd", b'{"cmd":"resync"}') == NOT_AUTHORIZED
    for gw in ("gw-1", "gw-2"):  # clean up the retained configs
        assert ok(platform.publish(f"cc/v1/gw/{gw}/config", b"", retain=True))


def test_gateway_hears_ingest_answers_meant_for_it_only(
    broker: Broker, clients: list[Client]
) -> None:
    """The ingest worker's answer (``gw/{id}/ingest``) reaches only its gateway; a gateway
    cannot forge one for itself or another (it would open an uplink nobody listens to)."""
    gw1 = connect(clients, broker, "gw-1")
    gw2 = connect(clients, broker, "gw-2")
    assert gw1.subscribe("cc/v1/gw/gw-1/ingest") == 1
    assert gw1.subscribe("cc/v1/gw/gw-2/ingest") in {1, NOT_AUTHORIZED}
    assert gw2.publish("cc/v1/gw/gw-1/ingest", b'{"state":"online"}') == NOT_AUTHORIZED
    assert gw1.publish("cc/v1/gw/gw-1/ingest", b'{"state":"online"}') == NOT_AUTHORIZED
    platform = connect(clients, broker, "platform")
    assert ok(platform.publish("cc/v1/gw/gw-2/ingest", b'{"state":"online","worker":"w2"}'))
    assert ok(platform.publish("cc/v1/gw/gw-1/ingest", b'{"state":"online","worker":"w1"}'))
    assert gw1.wait_message()
    time.sleep(0.3)
    assert gw1.messages == [("cc/v1/gw/gw-1/ingest", b'{"state":"online","worker":"w1"}')]


def test_responder_reads_only_its_own_tasks(broker: Broker, clients: list[Client]) -> None:
    r1 = connect(clients, broker, "r-1")
    r2 = connect(clients, broker, "r-2")
    assert r1.subscribe("cc/v1/responder/r-2/task") in {1, NOT_AUTHORIZED}
    assert r1.subscribe("cc/v1/responder/+/task") in {1, NOT_AUTHORIZED}
    assert r1.subscribe("cc/v1/gw/+/up/+") in {1, NOT_AUTHORIZED}
    assert r2.subscribe("cc/v1/responder/r-2/task") == 1
    assert r1.publish("cc/v1/responder/r-2/task", b"spoof") == NOT_AUTHORIZED
    platform = connect(clients, broker, "platform")
    assert ok(platform.publish("cc/v1/responder/r-2/task", b'{"task":"t-2"}'))
    assert ok(platform.publish("cc/v1/responder/r-1/task", b'{"task":"t-1"}'))
    gw1 = connect(clients, broker, "gw-1")
    assert ok(gw1.publish("cc/v1/gw/gw-1/up/batch", b"{}"))
    assert r1.wait_message()
    assert r2.wait_message()
    time.sleep(0.3)
    assert r1.messages == [("cc/v1/responder/r-1/task", b'{"task":"t-1"}')]
    assert r2.messages == [("cc/v1/responder/r-2/task", b'{"task":"t-2"}')]


def test_tls_listener_with_a_throwaway_ca(broker: Broker, clients: list[Client]) -> None:
    platform = connect(clients, broker, "platform")
    assert platform.subscribe("cc/v1/gw/gw-2/up/+") == 1
    gw2 = connect(clients, broker, "gw-2", tls=True)
    assert gw2.accepted
    assert ok(gw2.publish("cc/v1/gw/gw-2/up/alarm", b"over tls"))
    assert platform.wait_message()
    assert platform.messages == [("cc/v1/gw/gw-2/up/alarm", b"over tls")]


def test_tls_refuses_a_client_that_does_not_trust_the_ca(broker: Broker) -> None:
    context = ssl.create_default_context()  # system CAs only: our throwaway CA is unknown
    with (
        socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")
