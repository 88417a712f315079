"""The whole pipeline as separate processes, as deployed: simulator → gateway → broker →
ingest → alert engine → dispatcher, against the real Mosquitto and PostgreSQL.

One household (seed 4: a wearable, smoke, gas and leak detectors, an SOS button),
provisioned with ``carecircle platform provision``; the gateway, the ingest worker, the
dispatcher and the simulator run as ``carecircle`` subprocesses on this test's topic
root (native bases too), supervised by the demo's supervisor so nothing is left behind.
Incidents are injected with ``carecircle sim scenario``, as the demo does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.platform.demo.supervisor import Supervisor
from tests.e2e.pipeline_support import SITE, migrated, scenario, start_household, wait_for

RESIDENT = "r-000001"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _this_morning() -> datetime:
    """08:30 in Shanghai today, or yesterday if that is still ahead."""
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime.now(tz)
    start = now.replace(hour=8, minute=30, second=0, microsecond=0)
    return start if start <= now else start - timedelta(days=1)


@pytest.fixture(scope="module")
def pipeline_db(fresh_database: Callable[[], str]) -> str:
    """A database of its own: the simulator's ids (hh-000001, r-000001) are fixed."""
    return migrated(fresh_database())


@pytest.fixture
def pipeline(
    tmp_path: Path, pipeline_db: str, mqtt_url: str, topic_root: str
) -> Iterator[tuple[Supervisor, dict[str, str], Path]]:
    population = tmp_path / "population.json"
    doc = generate_population(PopulationParams(1, 0, 0, 4))
    population.write_text(doc.model_dump_json(), encoding="utf-8")
    sup = Supervisor(tmp_path / "logs", grace_s=5)
    try:
        env = start_household(
            sup,
            tmp_path,
            population,
            pipeline_db,
            mqtt_url,
            topic_root,
            [
                "--incident-scale",
                "0",  # only the incidents this test injects
                # a morning, when the household is up and its sensors speak within
                # seconds (at real evening time a lone resident can be silent for
                # minutes, and the test would depend on the hour it runs at)
                "--start",
                _this_morning().isoformat(),
            ],
            dispatcher=True,
        )
        yield sup, env, tmp_path
    finally:
        sup.close()


def _alert(url: str, kind: str, **where: str) -> tuple[int, str | None, str] | None:
    cond = "".join(f" AND {k} = %s" for k in where)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT id, resident_id, site_id FROM alerts WHERE kind = %s{cond}",
            (kind, *where.values()),
        ).fetchone()
    return None if row is None else (int(str(row[0])), row[1], str(row[2]))  # type: ignore[arg-type]


def test_injected_incidents_open_alerts_and_dispatch_offers_a_task(
    pipeline: tuple[Supervisor, dict[str, str], Path], pipeline_db: str
) -> None:
    sup, env, _ = pipeline
    # Data flows first: the gateway's devices reach the platform.  What a device sends
    # first depends on the seeded household's morning (a resident still in the chair
    # trips no sensor for minutes); every device announces itself (availability,
    # battery: status rows), so wait for stored rows of any kind.
    wait_for(
        "first device data stored",
        lambda: _count(pipeline_db, "readings") + _count(pipeline_db, "events"),
        60,
    )
    smoke = scenario(sup, env, "smoke", "smoke", "--site", SITE)
    assert smoke["site_id"] == SITE
    got = wait_for(
        "smoke alert",
        lambda: _alert(pipeline_db, "smoke", site_id=SITE),
        60,
        lambda: _codes(pipeline_db),
    )
    assert isinstance(got, tuple)
    fall = scenario(sup, env, "fall", "fall", "--resident", RESIDENT)
    assert fall["kind"] == "fall" and fall["resident_id"] == RESIDENT

    fall_alert = wait_for(
        "fall alert", lambda: _alert(pipeline_db, "fall", resident_id=RESIDENT), 60
    )
    assert isinstance(fall_alert, tuple) and fall_alert[2] == SITE

    leak = scenario(sup, env, "leak", "water_leak", "--site", SITE)
    assert leak["device_id"] == f"{SITE}-leak-bath"
    wait_for("leak alert", lambda: _alert(pipeline_db, "water_leak", site_id=SITE), 60)

    # The dispatcher (LISTEN cc_alert) offers the fall to a responder.
    alert_id = fall_alert[0]
    task = wait_for(
        "a task offered for the fall",
        lambda: _query(pipeline_db, "SELECT responder_id FROM tasks WHERE alert_id = %s", alert_id),
        60,
    )
    assert task


def test_absence_checks_with_a_moved_clock_see_the_silence(
    pipeline: tuple[Supervisor, dict[str, str], Path], pipeline_db: str
) -> None:
    from carecircle.platform.alerts.jobs import run_absence_checks

    wait_for(
        "devices seen",
        lambda: _query(
            pipeline_db,
            "SELECT count(*) FROM devices WHERE site_id = %s AND last_seen IS NOT NULL "
            "HAVING count(*) > 0",
            SITE,
        ),
        60,
    )
    later = datetime.now(UTC) + timedelta(hours=8)  # everything silent since now
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        report = run_absence_checks(conn, later, ZoneInfo("Asia/Shanghai"), site_ids=[SITE])
    assert report.residents == 1
    offline = _query(
        pipeline_db,
        "SELECT count(*) FROM alerts WHERE site_id = %s AND kind IN "
        "('device_offline', 'gateway_offline') AND status = 'open' HAVING count(*) > 0",
        SITE,
    )
    assert offline, report


def _codes(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return (
            conn.execute(
                "SELECT device_id, code, max(value), max(time) FROM readings "
                "GROUP BY 1, 2 ORDER BY 1"
            ).fetchall()
            + conn.execute("SELECT kind, status, site_id FROM alerts").fetchall()
        )


def _count(url: str, table: str) -> int:
    got = _query(url, f"SELECT count(*) FROM {table}")
    return int(str(got or 0))


def _query(url: str, sql: str, *params: object) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]
