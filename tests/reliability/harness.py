"""A small fault-injection harness: real processes on this machine.

    devices (native zigbee2mqtt JSON, shared local Mosquitto, this test's topic root)
      → ``carecircle gateway run`` (subprocess, SQLite disk queue)
      → a private upstream Mosquitto (``PrivateBroker``: start / stop / restart, persistence on)
      → ``carecircle platform ingest`` (subprocess, persistent session, alert hand-off)
      → PostgreSQL (this test's database, or a private ``tests.pgcluster.PgCluster``)

``Produced`` is the ground truth: every native reading published, keyed by
``(device_id, code, device time)``.  ``tally`` compares it with the ``readings`` table:
``lost = produced − stored distinct`` and ``duplicates = stored rows − stored distinct``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from carecircle.common.contract import (
    DeviceBinding,
    DeviceSpec,
    GatewayConfig,
    GatewaySpec,
    PlaceSpec,
    Provisioning,
    ResidentSpec,
    RoomSpec,
    SiteSpec,
    Topics,
)
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.registry import provision
from tests.gateway.test_resilience import MOSQUITTO, Upstream, free_port, wait

__all__ = [
    "MOSQUITTO",
    "Circle",
    "Native",
    "PrivateBroker",
    "Proc",
    "Tally",
    "free_port",
    "tally",
    "wait",
]

CLI = "from carecircle.common.cli import run; run()"


class PrivateBroker(Upstream):
    """A Mosquitto of this test's own (the platform broker) that can be restarted."""

    def restart(self) -> None:
        self.stop()
        self.start()


class Proc:
    """A ``carecircle …`` subprocess that can be killed with SIGKILL and restarted."""

    def __init__(
        self,
        argv: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        script: Path | None = None,
    ) -> None:
        self.argv, self.log, self.env, self.script = argv, log, env, script
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, *([str(self.script)] if self.script else ["-c", CLI]), *self.argv],
            stdout=out,
            stderr=out,
            env=env,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its state but does nothing (not even reconnect)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=10)
        self.proc = None
        return rc

    def is_running(self) -> bool:
        """The process logged that it is running (ingest: subscribed)."""
        return " running" in self.log_text()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def population(p: str) -> tuple[Provisioning, GatewayConfig]:
    """One household, one gateway ``{p}gw``, a climate sensor and an SOS button (zigbee2mqtt)."""
    site, gw, res, room = f"{p}hh", f"{p}gw", f"{p}r", f"{p}hh-bed"
    places = [
        PlaceSpec(id=f"{p}pf", level="prefecture", name="P", lat=30, lon=120),
        PlaceSpec(id=f"{p}co", parent_id=f"{p}pf", level="county", name="C", lat=30, lon=120),
        PlaceSpec(id=f"{p}tw", parent_id=f"{p}co", level="township", name="T", lat=30, lon=120),
        PlaceSpec(id=f"{p}vi", parent_id=f"{p}tw", level="village", name="V", lat=30, lon=120),
    ]
    bindings = [
        DeviceBinding(
            id=f"{gw}-th",
            family="zigbee2mqtt",
            native_id="bedroom_climate",
            site=site,
            room=room,
            res=res,
            type="climate_sensor",
        ),
        DeviceBinding(
            id=f"{gw}-sos",
            family="zigbee2mqtt",
            native_id="sos_tuya",
            site=site,
            room=room,
            res=res,
            type="sos_button",
        ),
    ]
    prov = Provisioning(
        places=places,
        sites=[SiteSpec(id=site, kind="household", place_id=f"{p}vi", name="H", lat=30, lon=120)],
        rooms=[RoomSpec(id=room, site_id=site, kind="bedroom", name="bed")],
        residents=[ResidentSpec(id=res, site_id=site, display_name="Elder")],
        gateways=[GatewaySpec(id=gw, site_id=site)],
        devices=[DeviceSpec(gateway_id=gw, binding=b) for b in bindings],
    )
    return prov, GatewayConfig(gw=gw, site=site, version=1, devices=bindings)


class Native:
    """A deterministic device publisher: native zigbee2mqtt JSON with known device times.

    Device times are ``base`` + one second per message — fine for bursts, but a long run
    at more than one message per second would run ahead of the clock into the future
    (refused as implausible).  ``realtime=True`` stamps each message with the wall clock
    instead (strictly increasing by at least 1 ms), for soak runs."""

    def __init__(
        self, mqtt_url: str, topic_root: str, gw: str, base: datetime, realtime: bool = False
    ) -> None:
        self.z2m = f"{topic_root}/zigbee2mqtt"
        self.gw = gw
        self.base_ms = int(base.timestamp() * 1000)
        self.realtime = realtime
        self._last_ms = 0
        self.seq = 0
        #: ground truth: (device_id, code, device time) of every reading produced
        self.produced: set[tuple[str, str, datetime]] = set()
        conn = new_connection(BrokerAddress.from_url(mqtt_url))
        self.client = conn.client
        self.client.max_inflight_messages_set(200)
        conn.connect()
        self.client.loop_start()
        self._infos: list[Any] = []

    def _ms(self) -> tuple[int, datetime]:
        if self.realtime:
            ms = max(int(time.time() * 1000), self._last_ms + 1)
        else:
            ms = self.base_ms + self.seq * 1000
        self._last_ms = ms
        self.seq += 1
        return ms, datetime.fromtimestamp(ms / 1000, UTC)

    def reading(self) -> None:
        ms, ts = self._ms()
        payload = {"temperature": 20 + (self.seq % 30) / 10, "humidity": 40, "last_seen": ms}
        self._infos.append(
            self.client.publish(f"{self.z2m}/bedroom_climate", json.dumps(payload), qos=1)
        )
        self.produced.add((f"{self.gw}-th", "room_temperature", ts))
        self.produced.add((f"{self.gw}-th", "humidity", ts))

    def sos(self, at: datetime | None = None) -> datetime:
        ms, ts = self._ms()
        if at is not None:
            ms, ts = int(at.timestamp() * 1000), at
        self._infos.append(
            self.client.publish(
                f"{self.z2m}/sos_tuya",
                json.dumps({"action": "emergency", "last_seen": ms}),
                qos=1,
            )
        )
        return ts

    def flush(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        for info in self._infos:
            info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            assert info.is_published()
        self._infos.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Tally:
    produced: int
    stored_rows: int
    stored_distinct: int
    lost: int
    duplicates: int
    dead_letters: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, fault: str) -> str:
        more = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (
            f"RELIABILITY fault={fault} produced={self.produced} stored={self.stored_distinct} "
            f"lost={self.lost} duplicates={self.duplicates} "
            f"dead_letters={self.dead_letters}{more}"
        )


def tally(database_url: str, produced: set[tuple[str, str, datetime]], gateway_id: str) -> Tally:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT device_id, code, time, msg_id FROM readings WHERE gateway_id = %s",
            (gateway_id,),
        ).fetchall()
        dead = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE gateway_id = %s OR gateway_id IS NULL",
            (gateway_id,),
        ).fetchone()
    keys = [(str(d), str(c), t) for d, c, t, _ in rows]
    distinct = set(keys)
    wanted = {k for k in distinct if k in produced}
    return Tally(
        produced=len(produced),
        stored_rows=len(keys),
        stored_distinct=len(distinct),
        lost=len(produced - distinct),
        duplicates=len(keys) - len(distinct),
        dead_letters=int(dead[0]) if dead else 0,
        extra={"unexpected": len(distinct - wanted)} if distinct - wanted else {},
    )


def stored_count(database_url: str, gateway_id: str) -> int:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT (device_id, code, time)) FROM readings WHERE gateway_id = %s",
            (gateway_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def safe_stored_count(database_url: str, gateway_id: str) -> int:
    try:
        return stored_count(database_url, gateway_id)
    except psycopg.Error:
        return -1


@dataclass
class Circle:
    """Gateway → private broker → ingest worker(s) → database, for one test."""

    tmp: Path
    mqtt_url: str  # the shared local broker the devices publish to
    topic_root: str
    database_url: str
    broker: PrivateBroker
    prefix: str
    gateways: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    #: any other process of the test (e.g. the soak's scheduler), stopped with the rest
    others: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prov, self.config = population(self.prefix)
        self.gw = self.config.gw
        self.topics = Topics(self.topic_root)
        self.queue = self.tmp / "gw" / "queue.sqlite3"

    def provision(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            provision(conn, self.prov)
        pub = new_connection(BrokerAddress.from_url(self.broker.url))
        pub.connect()
        pub.client.loop_start()
        info = pub.client.publish(
            self.topics.gateway_config(self.gw), self.config.model_dump_json(), qos=1, retain=True
        )
        info.wait_for_publish(timeout=10)
        pub.client.disconnect()
        pub.client.loop_stop()

    def gateway_config_file(self, name: str = "gw", wait_for_ingest: bool = True) -> Path:
        cfg = self.tmp / f"{name}.toml"
        r = self.topic_root
        cfg.write_text(
            "[gateway]\n"
            f'gateway_id = "{self.gw}"\nsite_id = "{self.config.site}"\ntopic_root = "{r}"\n'
            f'mqtt_url = "{self.broker.url}"\nlocal_mqtt_url = "{self.mqtt_url}"\n'
            f'queue_path = "{self.queue}"\nzigbee2mqtt_base = "{r}/zigbee2mqtt"\n'
            f'careband_base = "{r}/careband"\nbedsensor_base = "{r}/bedsensor"\n'
            f'homeassistant_base = "{r}/homeassistant"\n'
            "batch_max_items = 50\nbatch_max_delay_ms = 100\nheartbeat_interval_s = 5\n"
            "uplink_reconnect_max_s = 1\nstatus_interval_s = 2\nlocal_session_expiry_s = 600\n"
            f"uplink_wait_for_ingest = {'true' if wait_for_ingest else 'false'}\n"
        )
        return cfg

    def gateway(self, skew_hours: float | None = None, wait_for_ingest: bool = True) -> Proc:
        log = self.tmp / f"gateway{len(self.gateways)}.log"
        if skew_hours is None:
            cfg = self.gateway_config_file(wait_for_ingest=wait_for_ingest)
            proc = Proc(["gateway", "run", "--config", str(cfg)], log)
        else:
            argv = [str(self.gateway_config_file()), str(skew_hours)]
            proc = Proc(argv, log, script=Path(__file__).with_name("skewed_gateway.py"))
        self.gateways.append(proc)
        return proc

    def worker(self, worker_id: str, database_url: str | None = None) -> Proc:
        proc = Proc(
            [
                "platform",
                "ingest",
                "--database-url",
                database_url or self.database_url,
                "--mqtt-url",
                self.broker.url,
                "--topic-root",
                self.topic_root,
                "--worker-id",
                worker_id,
            ],
            self.tmp / f"ingest-{worker_id}.log",
            env={
                "CARECIRCLE_DEMO_MODE": "true",
                "CARECIRCLE_INGEST_RETRY_MAX_S": "1",
                "CARECIRCLE_INGEST_SESSION_EXPIRY_S": "600",
            },
        )
        self.workers.append(proc)
        return proc

    def wait_workers_running(self, timeout: float = 30) -> None:
        """Each worker has subscribed (its log says so): nothing published later is dropped."""
        for w in self.workers:
            wait(w.is_running, timeout, f"{w.log.name} subscribed")

    def wait_gateway_ready(self, timeout: float = 20) -> None:
        cache = self.queue.with_name(self.queue.name + ".config.json")
        wait(cache.exists, timeout, "the gateway to cache its pushed config")
        # a first start has no local session before the SUBACK: devices speak after it
        for g in self.gateways:
            wait(
                lambda g=g: "local broker granted" in g.log_text(),
                timeout,
                f"{g.log.name}: the local subscription",
            )

    def wait_stored(self, n: int, timeout: float, db_url: str | None = None) -> None:
        url = db_url or self.database_url
        wait(lambda: safe_stored_count(url, self.gw) >= n, timeout, f"{n} readings stored")

    def stop_all(self) -> None:
        for p in [*self.gateways, *self.workers, *self.others]:
            if p.alive():
                p.terminate()


@contextmanager
def circle(
    tmp: Path, mqtt_url: str, topic_root: str, database_url: str, prefix: str
) -> Iterator[Circle]:
    if not Path(MOSQUITTO).exists():
        import pytest

        pytest.skip("mosquitto binary not installed")
    broker = PrivateBroker(tmp)
    broker.start()
    c = Circle(tmp, mqtt_url, topic_root, database_url, broker, prefix)
    try:
        yield c
    finally:
        try:
            c.stop_all()
        finally:
            if broker.proc is not None:
                broker.stop()


def recent(minutes: int = 30) -> datetime:
    """A base device time in the recent past (inside the ingest plausibility window)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(minutes=minutes)


def alert_opened(database_url: str, resident_id: str, kind: str = "sos") -> bool:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(*) FROM alerts WHERE resident_id = %s AND kind = %s",
            (resident_id, kind),
        ).fetchone()
    return bool(row and row[0])


Predicate = Callable[[], bool]
