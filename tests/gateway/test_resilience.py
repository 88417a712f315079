"""The must-show test: the uplink is cut while devices keep publishing, the gateway is
killed with ``kill -9`` mid-backlog and restarted, the link comes back; every reading
arrives upstream exactly once after de-duplication by message id, alarms first.

The gateway runs as a real subprocess (``carecircle gateway run --config …``).  The
upstream (platform) broker is a second Mosquitto started here, stopped and started to
cut and restore the link.  Devices publish QoS 1 to the shared local Mosquitto, under
this test's topic root.
"""

from __future__ import annotations

import getpass
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carecircle.common.contract import Topics, Uplink, decode_batch

from .conftest import Collector, Publisher, config

MOSQUITTO = "/usr/sbin/mosquitto"
GW = "gw-0001"


def free_port() -> int:
    """A free port below the ephemeral range, so that while our broker is stopped no
    client socket (not even a reconnecting client connecting to itself) can take it."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32000")


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Upstream:
    """A Mosquitto of our own that can be stopped and started (persistence on, like a
    platform broker, so the test's collector keeps its session across the restart)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp / "upstream"
        self.dir.mkdir()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval 1\nmax_queued_messages 100000\n"
            "max_inflight_messages 0\n"
            # run as root, Mosquitto would switch to user "mosquitto", which cannot write
            # the persistence file into this test's private temporary directory
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.dir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)

        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait(listening, 10, "the upstream Mosquitto to listen")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto binary not installed")
    up = Upstream(tmp_path)
    up.start()
    yield up
    if up.proc is not None:
        up.stop()


class GatewayProcess:
    def __init__(self, config_file: Path, log: Path) -> None:
        self.config_file, self.log = config_file, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        code = "from carecircle.common.cli import run; run()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "gateway", "run", "--config", str(self.config_file)],
            stdout=out,
            stderr=out,
        )

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL
        self.proc = None

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.proc = None
        return rc


def queue_depth(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM outbox WHERE lane = 3").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def write_config(tmp: Path, topic_root: str, uplink: str, local: str, queue: Path) -> Path:
    cfg_file = tmp / "carecircle.toml"
    cfg_file.write_text(
        "[gateway]\n"
        f'gateway_id = "{GW}"\nsite_id = "hh-0001"\ntopic_root = "{topic_root}"\n'
        f'mqtt_url = "{uplink}"\nlocal_mqtt_url = "{local}"\n'
        f'queue_path = "{queue}"\nzigbee2mqtt_base = "{topic_root}/zigbee2mqtt"\n'
        f'careband_base = "{topic_root}/careband"\nbedsensor_base = "{topic_root}/bedsensor"\n'
        f'homeassistant_base = "{topic_root}/homeassistant"\n'
        "batch_max_items = 50\nbatch_max_delay_ms = 100\nheartbeat_interval_s = 5\n"
        "uplink_reconnect_max_s = 1\nstatus_interval_s = 2\nlocal_session_expiry_s = 600\n"
        # no ingest worker here, only a collector: nobody would answer gw/{id}/ingest
        "uplink_wait_for_ingest = false\n"
    )
    return cfg_file


def uplink_items(msgs: list[tuple[str, bytes, bool]], topics: Topics) -> list[tuple[str, Any]]:
    """``(channel, envelope)`` for every item of every uplink batch, in arrival order."""
    out = []
    for t, p, _ in msgs:
        parsed = topics.parse_uplink(t)
        if parsed is None:
            continue
        decoded = decode_batch(p, topic_gateway=GW)
        assert not decoded.rejected, decoded.rejected
        out.extend((parsed[1].value, env) for env in decoded.items)
    return out


@pytest.mark.timeout(120)
def test_outage_kill9_restore_every_reading_once_alarms_first(
    tmp_path: Path,
    mqtt_url: str,
    topic_root: str,
    upstream: Upstream,
    publisher_factory: Callable[[str], Publisher],
) -> None:
    topics = Topics(topic_root)
    z2m = f"{topic_root}/zigbee2mqtt"
    queue = tmp_path / "gw" / "queue.sqlite3"
    cfg_file = write_config(tmp_path, topic_root, upstream.url, mqtt_url, queue)
    # the platform side: retained config and a collector with a persistent session
    up_pub = publisher_factory(upstream.url)
    up_pub.publish(topics.gateway_config(GW), config(version=5).model_dump_json(), retain=True)
    collector = Collector(upstream.url, f"{topic_root}/v1/gw/{GW}/#", persistent=True)
    local = publisher_factory(mqtt_url)
    gateway = GatewayProcess(cfg_file, tmp_path / "gateway.log")

    base_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    produced: dict[tuple[str, str, str], str] = {}  # (dev, code, ts) -> phase
    seq = iter(range(1_000_000))

    def ts_of(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

    def reading(phase: str) -> None:
        ms = base_ms + next(seq)
        local.publish(
            f"{z2m}/bedroom_climate",
            json.dumps({"temperature": 21.5, "humidity": 40, "last_seen": ms}),
        )
        produced[("dev-th", "room_temperature", ts_of(ms))] = phase
        produced[("dev-th", "humidity", ts_of(ms))] = phase

    def alarm(phase: str) -> None:
        ms = base_ms + next(seq)
        local.publish(f"{z2m}/sos_tuya", json.dumps({"action": "emergency", "last_seen": ms}))
        produced[("dev-sos", "sos", ts_of(ms))] = phase

    try:
        gateway.start()
        collector.wait_for(
            lambda m: any(t == topics.gateway_state(GW) and b"online" in p for t, p, _ in m), 20
        )
        # the registry arrives from the platform (retained) and is cached before devices speak
        cache = queue.with_name(queue.name + ".config.json")
        wait(cache.exists, 10, "the pushed config to be cached")
        # a first start has no local session before the SUBACK: devices speak after it
        log = tmp_path / "gateway.log"
        wait(lambda: "local broker granted" in log.read_text(), 10, "the local subscription")
        # phase 0, link up: proves the gateway is subscribed locally and sending
        for _ in range(10):
            reading("before")
        collector.wait_for(lambda m: sum(1 for t, _, _ in m if t.endswith("/up/batch")) > 0, 15)

        # cut the uplink; devices keep publishing; alarms among them
        upstream.stop()
        outage_start = time.monotonic()
        for i in range(200):
            reading("outage")
            if i % 70 == 35:
                alarm("outage")
        wait(lambda: queue_depth(queue) >= 150, 20, "a backlog in the gateway's queue")
        gateway.kill9()  # mid-backlog
        for i in range(100):  # published while the gateway is dead: the local session keeps them
            reading("outage")
            if i == 50:
                alarm("outage")
        gateway.start()  # uplink still down: registry from its cache, backlog from SQLite
        for i in range(200):
            reading("outage")
            if i % 70 == 10:
                alarm("outage")
        routine_expected = sum(1 for k, v in produced.items() if v == "outage" and k[1] != "sos")
        wait(
            lambda: queue_depth(queue) >= routine_expected,
            30,
            "every outage reading in the queue",
        )
        outage_s = time.monotonic() - outage_start
        restored = time.monotonic()
        upstream.start()  # restore the link

        want = set(produced)

        def arrived(m: list[tuple[str, bytes, bool]]) -> set[tuple[str, str, str]]:
            got = set()
            for t, p, _ in m:
                if "/up/" in t:
                    for item in json.loads(p)["items"]:
                        got.add(
                            (
                                item["dev"],
                                item["payload"]["code"],
                                datetime.fromisoformat(item["ts"]).isoformat(),
                            )
                        )
            return got

        msgs = collector.wait_for(lambda m: want <= arrived(m), 40)
        catch_up_s = time.monotonic() - restored
        assert gateway.terminate() == 0
    finally:
        if gateway.proc is not None:
            gateway.kill9()
        collector.close()  # the upstream broker is this test's own: nothing retained to clean

    # exactly once after de-duplication by id: one id per produced reading
    ids_by_reading: dict[tuple[str, str, str], set[str]] = {}
    order: list[tuple[str, str]] = []  # (channel, phase) in arrival order
    copies = 0
    for t, p, _ in msgs:
        parsed = topics.parse_uplink(t)
        if parsed is None:
            continue
        decoded = decode_batch(p, topic_gateway=GW)
        assert not decoded.rejected, decoded.rejected
        for env in decoded.items:
            key = (env.dev, env.payload.code.value, env.ts.isoformat())
            if key in produced:
                ids_by_reading.setdefault(key, set()).add(str(env.id))
                order.append((parsed[1].value, produced[key]))
                copies += 1
    assert set(ids_by_reading) == set(produced), "every reading arrived"
    assert all(len(ids) == 1 for ids in ids_by_reading.values()), (
        "no duplicate the platform cannot remove"
    )
    # alarms raised during the outage overtook the whole routine backlog
    outage = [ch for ch, phase in order if phase == "outage"]
    last_alarm = max(i for i, ch in enumerate(outage) if ch == Uplink.ALARM.value)
    first_routine = min(i for i, ch in enumerate(outage) if ch == Uplink.BATCH.value)
    assert last_alarm < first_routine, outage[:20]
    routine_n = sum(1 for v in produced.values() if v == "outage")
    print(
        f"\noutage {outage_s:.1f} s with kill -9; {routine_n} outage items; caught up in "
        f"{catch_up_s:.2f} s after restore (incl. reconnect); "
        f"{copies - len(produced)} duplicate copies"
    )


@pytest.mark.timeout(120)
def test_rows_stay_until_puback_and_unacked_ones_are_resent_with_the_same_ids(
    tmp_path: Path,
    mqtt_url: str,
    topic_root: str,
    upstream: Upstream,
    publisher_factory: Callable[[str], Publisher],
) -> None:
    """The platform broker freezes (SIGSTOP: the TCP connection stays up, no PUBACK comes)
    while the gateway has publishes in flight; the gateway is killed; the broker thaws and
    may deliver what it had buffered; the restarted gateway resends every unacknowledged
    row.  Copies may arrive twice — always with the same id, so the platform drops them."""
    topics = Topics(topic_root)
    queue = tmp_path / "gw" / "queue.sqlite3"
    cfg_file = write_config(tmp_path, topic_root, upstream.url, mqtt_url, queue)
    up_pub = publisher_factory(upstream.url)
    up_pub.publish(topics.gateway_config(GW), config(version=5).model_dump_json(), retain=True)
    collector = Collector(upstream.url, f"{topic_root}/v1/gw/{GW}/#", persistent=True)
    local = publisher_factory(mqtt_url)
    gateway = GatewayProcess(cfg_file, tmp_path / "gateway.log")
    assert upstream.proc is not None
    base_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    want = set()
    try:
        gateway.start()
        cache = queue.with_name(queue.name + ".config.json")
        wait(cache.exists, 10, "the pushed config to be cached")
        upstream.proc.send_signal(signal.SIGSTOP)
        for i in range(120):
            ms = base_ms + i
            local.publish(
                f"{topic_root}/zigbee2mqtt/bedroom_climate",
                json.dumps({"temperature": 20.5, "last_seen": ms}),
            )
            want.add(datetime.fromtimestamp(ms / 1000, UTC))
        wait(lambda: queue_depth(queue) == 120, 15, "all readings queued")
        time.sleep(1.0)  # the sender hands batches to the frozen broker during this second
        assert queue_depth(queue) == 120, "nothing leaves the queue without a PUBACK"
        gateway.kill9()
        upstream.proc.send_signal(signal.SIGCONT)
        gateway.start()

        def temps(m: list[tuple[str, bytes, bool]]) -> list[tuple[Any, str]]:
            return [
                (env.ts, str(env.id))
                for _, env in uplink_items(m, topics)
                if env.payload.code.value == "room_temperature"
            ]

        msgs = collector.wait_for(lambda m: {ts for ts, _ in temps(m)} >= want, 30)
        wait(lambda: queue_depth(queue) == 0, 10, "the queue to drain")
        assert gateway.terminate() == 0
    finally:
        if upstream.proc is not None:
            upstream.proc.send_signal(signal.SIGCONT)
        if gateway.proc is not None:
            gateway.kill9()
        collector.close()
    ids: dict[Any, set[str]] = {}
    for ts, id_ in temps(msgs):
        ids.setdefault(ts, set()).add(id_)
    assert set(ids) == want
    assert all(len(v) == 1 for v in ids.values()), "a resent reading keeps its id"
    print(
        f"\n{len(temps(msgs)) - len(want)} duplicate copies after the frozen broker, all removable"
    )
