"""`carecircle platform ingest` as a process: stores uplink data and serves /metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from carecircle.common.contract import Topics
from carecircle.platform.registry import provision
from tests.platform.ingest_support import (
    Publisher,
    batch,
    clear_session,
    count,
    population,
    readings_for,
    wait_until,
)

Conn = psycopg.Connection[tuple[object, ...]]
CARECIRCLE = str(Path(sys.executable).parent / "carecircle")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_ingest_command_stores_data_and_exposes_prometheus_metrics(
    db: Conn, database_url: str, mqtt_url: str, topic_root: str, tmp_path: Path
) -> None:
    p = f"c{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1))
    port = free_port()
    env = dict(os.environ)
    env.update(
        CARECIRCLE_DATABASE_URL=database_url,
        CARECIRCLE_MQTT_URL=mqtt_url,
        CARECIRCLE_INGEST_SESSION_EXPIRY_S="30",
        CARECIRCLE_LOG_FORMAT="json",
    )
    log = (tmp_path / "ingest.log").open("w")
    proc = subprocess.Popen(
        [
            CARECIRCLE,
            "platform",
            "ingest",
            "--topic-root",
            topic_root,
            "--worker-id",
            "w1",
            "--metrics-port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    gw = f"{p}gw0"
    try:
        wait_until(lambda: _up(port), what="metrics endpoint")
        pub = Publisher(mqtt_url, Topics(topic_root))
        items = readings_for(p, 0, 40, start=datetime.now(UTC) - timedelta(minutes=3))
        pub.send(gw, batch(gw, items))
        pub.send(gw, batch(gw, items[:10]))  # duplicates
        pub.send(gw, b"[]")  # malformed
        pub.close()
        wait_until(
            lambda: count(db, "SELECT count(*) FROM readings WHERE gateway_id = %s", gw) == 40,
            what="readings stored",
        )
        wait_until(
            lambda: metrics(port).get("cc_ingest_dead_letters_total") == 1,
            what="dead letter counted",
        )
        m = metrics(port)
        assert m['cc_ingest_rows_written_total{table="readings"}'] == 40
        assert m["cc_ingest_duplicates_dropped_total"] == 10
        assert m['cc_ingest_messages_total{channel="batch"}'] == 3
        assert m["cc_ingest_batch_seconds_count"] >= 1
        assert "cc_ingest_queue_depth" in m
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        clear_session(mqtt_url, f"cc-ingest-{topic_root}-{socket.gethostname()[:24]}-w1")
    assert proc.returncode == 0, (tmp_path / "ingest.log").read_text()[-2000:]
    lines = (tmp_path / "ingest.log").read_text().splitlines()
    assert any('"level": "WARNING"' in line and "dead letters" in line for line in lines)


def _up(port: int) -> bool:
    try:
        metrics(port)
        return True
    except OSError:
        return False


def test_tune_gc_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    # in a child process: the collector's settings are global to the process
    code = (
        "import gc; from carecircle.platform.ingest.cli import tune_gc; "
        "before = gc.get_threshold(); tune_gc(0); assert gc.get_threshold() == before; "
        "assert gc.get_freeze_count() == 0; tune_gc(50000); "
        "assert gc.get_threshold() == (50000, *before[1:]), gc.get_threshold(); "
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
