"""Per-gateway credentials and TLS to the platform broker (a Mosquitto of this test's own
with a private CA, a password file and an ACL that confines the gateway to its topics)."""

from __future__ import annotations

import getpass
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carecircle.common.contract import Topics
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings

from .conftest import Collector, Publisher, config
from .test_resilience import MOSQUITTO, free_port, wait

GW = "gw-0001"


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_broker(tmp_path: Path, topic_root: str) -> Iterator[tuple[int, Path]]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto binary not installed")
    d = tmp_path / "tls"
    d.mkdir()
    ca_key, ca_crt = str(d / "ca.key"), str(d / "ca.crt")
    key, csr, crt, ext = (str(d / n) for n in ("server.key", "server.csr", "server.crt", "san.ext"))
    new_key = ["openssl", "req", "-newkey", "rsa:2048", "-nodes"]
    _run(*new_key, "-x509", "-days", "2", "-subj", "/CN=test CA", "-keyout", ca_key, "-out", ca_crt)
    _run(*new_key, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    Path(ext).write_text("subjectAltName=IP:127.0.0.1\n")
    sign = ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key]
    _run(*sign, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt)
    pw = d / "passwd"
    _run("mosquitto_passwd", "-b", "-c", str(pw), GW, "gw-secret")
    _run("mosquitto_passwd", "-b", str(pw), "platform", "platform-secret")
    acl = d / "acl"
    acl.write_text(
        f"user {GW}\ntopic readwrite {topic_root}/v1/gw/{GW}/#\n\n"
        "user platform\ntopic readwrite #\n"
    )
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\ncafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\n"
        f"keyfile {d / 'server.key'}\nallow_anonymous false\npassword_file {pw}\n"
        f"acl_file {acl}\npersistence false\nuser {getpass.getuser()}\n"
    )
    log = (d / "mosquitto.log").open("ab")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    try:
        time.sleep(0.05)
        wait(lambda: proc.poll() is not None or "running" in (d / "mosquitto.log").read_text(),
             10, "the TLS Mosquitto to start")  # fmt: skip
        assert proc.poll() is None, (d / "mosquitto.log").read_text()
        yield port, d / "ca.crt"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make(tmp: Path, topic_root: str, mqtt_url: str, uplink: str, ca: Path, name: str) -> Gateway:
    return Gateway(
        GatewaySettings.model_validate(
            {
                "gateway_id": GW,
                "topic_root": topic_root,
                "mqtt_url": uplink,
                "mqtt_ca_file": ca,
                "local_mqtt_url": mqtt_url,
                "queue_path": tmp / name / "q.sqlite3",
                "zigbee2mqtt_base": f"{topic_root}/zigbee2mqtt",
                "careband_base": f"{topic_root}/careband",
                "bedsensor_base": f"{topic_root}/bedsensor",
                "homeassistant_base": f"{topic_root}/homeassistant",
                "local_client_id": f"{topic_root}-{name}",
                "uplink_reconnect_max_s": 1,
                "uplink_wait_for_ingest": False,  # a collector, not an ingest worker
            }
        )
    )


def test_gateway_speaks_tls_with_its_own_credentials(
    tls_broker: tuple[int, Path],
    tmp_path: Path,
    topic_root: str,
    mqtt_url: str,
    publisher_factory: Callable[[str], Publisher],
) -> None:
    port, ca = tls_broker
    topics = Topics(topic_root)
    platform = Collector(
        f"mqtts://platform:platform-secret@127.0.0.1:{port}", f"{topic_root}/#", ca_file=str(ca)
    )
    pub = Publisher(f"mqtts://platform:platform-secret@127.0.0.1:{port}", ca_file=str(ca))
    try:
        pub.publish(topics.gateway_config(GW), config(version=2).model_dump_json(), retain=True)

        good = make(
            tmp_path, topic_root, mqtt_url, f"mqtts://{GW}:gw-secret@127.0.0.1:{port}", ca, "good"
        )
        stop = threading.Event()
        thread = threading.Thread(target=good.run, args=(stop,), daemon=True)
        thread.start()
        wait(lambda: good.registry.version == 2, 15, "the config over TLS")
        local = publisher_factory(mqtt_url)
        local.publish(f"{topic_root}/zigbee2mqtt/sos_tuya", json.dumps({"action": "emergency"}))
        msgs = platform.wait_for(lambda m: any(t.endswith("/up/alarm") for t, _, _ in m), 15)
        alarm = next(json.loads(p) for t, p, _ in msgs if t.endswith("/up/alarm"))
        assert alarm["items"][0]["payload"]["code"] == "sos"
        stop.set()
        thread.join(timeout=15)

        wrong = make(
            tmp_path, topic_root, mqtt_url, f"mqtts://{GW}:wrong@127.0.0.1:{port}", ca, "bad"
        )
        wrong.start()
        try:
            assert not wrong.uplink.connected.wait(2), "a wrong password must not connect"  # type: ignore[union-attr]
        finally:
            wrong.stop()
        pub.publish(topics.gateway_config(GW), b"", retain=True)
    finally:
        platform.close()
        pub.close()
