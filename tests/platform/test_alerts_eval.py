"""`carecircle eval`: the pure matcher on hand-made truth and alerts, and the CLI on a real DB."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from carecircle.common.cli import cli
from carecircle.common.errors import ContractError
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.eval.cli import load_truth
from carecircle.platform.alerts.eval.matcher import AlertRecord, Incident, percentile, score
from carecircle.platform.alerts.lifecycle import Severity

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
WEEK = T0 + timedelta(days=7)


def inc(
    iid: str,
    kind: str,
    start_h: float,
    dur_min: float = 10,
    res: str | None = "r1",
    site: str = "hh1",
    dev: str | None = None,
    benign: bool = False,
    **detail: object,
) -> Incident:
    start = T0 + timedelta(hours=start_h)
    return Incident(
        incident_id=iid,
        resident_id=res,
        site_id=site,
        device_id=dev,
        kind=kind,
        benign=benign,
        start=start,
        end=start + timedelta(minutes=dur_min),
        detail=dict(detail),
    )


_ids = iter(range(1, 10_000))


def alert(
    kind: str,
    at_h: float,
    res: str | None = "r1",
    site: str = "hh1",
    dev: str | None = None,
    seen_min: float = 0,
) -> AlertRecord:
    at = T0 + timedelta(hours=at_h)
    return AlertRecord(next(_ids), kind, site, at, at + timedelta(minutes=seen_min), res, dev)


def run(incidents: list[Incident], alerts: list[AlertRecord], residents: int = 2):
    return score(incidents, alerts, since=T0, until=WEEK, residents=residents)


def test_detection_delay_and_recall() -> None:
    truth = [inc("i1", "sos", 1), inc("i2", "sos", 5), inc("i3", "fall", 9)]
    alerts = [alert("sos", 1 + 2 / 3600), alert("fall", 9 + 30 / 3600)]
    r = run(truth, alerts)
    sos, fall = r.kinds["sos"], r.kinds["fall"]
    assert (sos.incidents, sos.detected, sos.missed, sos.recall) == (2, 1, 1, 0.5)
    assert sos.missed_ids == ["i2"]
    assert sos.as_dict()["median_delay_s"] == pytest.approx(2)
    assert fall.delays_s == [pytest.approx(30)]
    assert r.false_alerts == 0


def test_subject_and_time_must_agree() -> None:
    truth = [inc("i1", "smoke", 10, res=None, site="hh1")]
    wrong_site = alert("smoke", 10, res=None, site="hh2")
    too_late = alert("smoke", 12, res=None)
    wrong_kind = alert("gas", 10, res=None, site="hh3")
    r = run(truth, [wrong_site, too_late, wrong_kind])
    assert r.kinds["smoke"].detected == 0
    assert r.false_alerts == 3
    # a smoke alert on the household matches a household incident even if it names a resident
    r2 = run(truth, [alert("smoke", 10 + 1 / 60, res="r1", site="hh1")])
    assert r2.kinds["smoke"].detected == 1 and r2.false_alerts == 0
    # residents differ: no match
    r3 = run([inc("i1", "fall", 3, res="r1")], [alert("fall", 3, res="r2")])
    assert r3.kinds["fall"].detected == 0 and r3.false_alerts == 1


def test_alert_already_open_counts_with_zero_delay_and_grace() -> None:
    truth = [inc("i1", "gateway_offline", 20, dur_min=60, res=None, dev="gw1")]
    early = alert("gateway_offline", 19.99, res=None, dev="gw1", seen_min=30)
    r = run(truth, [early])
    assert r.kinds["gateway_offline"].detected == 1 and r.kinds["gateway_offline"].delays_s == [0]
    late_ok = alert("missed_wakeup", 2 + 25 / 60)  # 25 min after the incident end
    late_no = alert("missed_wakeup", 30 + 45 / 60)  # 45 min after: false
    r2 = run(
        [inc("w1", "missed_wakeup", 2, dur_min=0), inc("w2", "missed_wakeup", 30, dur_min=0)],
        [late_ok, late_no],
    )
    assert r2.kinds["missed_wakeup"].detected == 1 and r2.false_alerts == 1


def test_sos_during_fall_with_sos_pressed_is_not_false() -> None:
    truth = [inc("i1", "fall", 4, sos_pressed=True)]
    r = run(truth, [alert("sos", 4 + 1 / 3600)])
    assert r.kinds["fall"].detected == 1 and r.false_alerts == 0
    r2 = run([inc("i1", "fall", 4)], [alert("sos", 4 + 1 / 3600), alert("fall", 4 + 2 / 3600)])
    assert r2.kinds["fall"].detected == 1 and r2.false_alerts == 0 and r2.related_alerts == 1


def test_related_only_to_an_incident_that_could_have_caused_it() -> None:
    leak_battery = inc("t1", "low_battery", 0, dur_min=3 * 24 * 60, res=None, dev="leak1")
    sensor_down = inc("t2", "device_offline", 50, dur_min=600, res=None, dev="pir1")
    fall = inc("f1", "fall", 80, dur_min=60)
    alerts = [
        alert("prolonged_inactivity", 20),  # during the leak sensor's weak battery: false
        alert("prolonged_inactivity", 52),  # the motion sensor silent: related
        alert("prolonged_inactivity", 80.5),  # after the resident's fall: related
        alert("device_offline", 30, res=None, dev="leak1"),  # its own device: related
    ]
    r = run([leak_battery, sensor_down, fall], alerts)
    assert (r.false_alerts, r.related_alerts) == (1, 3)
    assert r.kinds["prolonged_inactivity"].false_alerts == 1


def test_benign_look_alikes_and_false_rate() -> None:
    truth = [
        inc("b1", "nap_in_chair", 14, dur_min=120, benign=True),
        inc("b2", "away_from_home", 40, dur_min=600, benign=True),
    ]
    alerts = [
        alert("prolonged_inactivity", 15),
        alert("missed_wakeup", 44),
        alert("low_battery", 100, dev="d9"),
    ]
    r = run(truth, alerts, residents=10)
    assert "nap_in_chair" not in r.kinds  # benign incidents are not scored for recall
    assert r.false_alerts == 3 and r.false_during_benign == 2
    assert r.resident_days == pytest.approx(70)
    assert r.false_per_resident_day == pytest.approx(3 / 70)
    assert r.kinds["prolonged_inactivity"].false_alerts == 1
    assert r.kinds["prolonged_inactivity"].alerts == 1
    checks = r.target_checks()
    assert checks["false_per_resident_day<=0.05"] is True
    assert checks["recall:sos>=0.99"] is None


def test_range_limits_incidents_and_alerts() -> None:
    before = inc("i0", "sos", -5)
    r = run([before, inc("i1", "sos", 5)], [alert("sos", -5), alert("sos", 5)])
    assert r.kinds["sos"].incidents == 1 and r.alerts == 1


def test_percentile_nearest_rank() -> None:
    assert percentile([], 95) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_truth_file_errors_name_the_line(tmp_path: Path) -> None:
    good = inc("i1", "sos", 1).model_dump_json()
    path = tmp_path / "truth.jsonl"
    path.write_text(good + "\n\n" + '{"incident_id": "x", "kind": "sos"}\n')
    with pytest.raises(ContractError, match=r"truth.jsonl:3: site_id"):
        load_truth(path)
    path.write_text(good + "\n")
    assert [i.incident_id for i in load_truth(path)] == ["i1"]


def test_eval_cli_against_the_database(
    db: psycopg.Connection[tuple[object, ...]], database_url: str, tmp_path: Path
) -> None:
    p = f"e{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    db.execute(
        f"INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        f"VALUES ('{p}hh', 'household', '{p}vi', 'H', 30.1, 120.1)"
    )
    db.execute(f"INSERT INTO residents (id, site_id, display_name) VALUES ('{p}r', '{p}hh', 'X')")
    # a week far from other tests' alerts
    t0 = datetime(2031, 3, 2, tzinfo=UTC)
    for kind, h in (("sos", 1.0), ("fall", 30.0), ("water_leak", 50.0)):
        repo.open_or_refresh(
            db,
            repo.AlertDraft(
                subject=f"{p}r",
                site_id=f"{p}hh",
                kind=kind,
                severity=Severity.CRITICAL,
                detector=f"rule:{kind}",
                at=t0 + timedelta(hours=h, seconds=3),
                resident_id=f"{p}r",
            ),
        )
    truth = tmp_path / "truth.jsonl"
    lines = [
        Incident(
            incident_id=f"i{k}",
            resident_id=f"{p}r",
            site_id=f"{p}hh",
            kind=k,
            start=t0 + timedelta(hours=h),
            end=t0 + timedelta(hours=h, minutes=5),
        ).model_dump_json()
        for k, h in (("sos", 1.0), ("fall", 30.0), ("smoke", 70.0))
    ]
    truth.write_text("\n".join(lines) + "\n")
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "--truth",
            str(truth),
            "--since",
            t0.isoformat(),
            "--until",
            (t0 + timedelta(days=7)).isoformat(),
            "--database-url",
            database_url,
            "--residents",
            "4",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sos" in result.output and "FAIL  recall:smoke>=0.99" in result.output
    full = json.loads(out.read_text())
    # the installed sections print beside the alerts table: rules vs rules+models, dispatch
    assert "[ml]" in result.output and "[dispatch]" in result.output
    assert {"ml", "dispatch"} <= set(full)
    assert any(r.get("kind") == "sos" for r in full["ml"]["rows"])
    assert "simulated_week" in full["dispatch"]
    doc = full["alerts"]
    assert doc["kinds"]["sos"]["detected"] == 1 and doc["kinds"]["sos"]["median_delay_s"] == 3
    assert doc["kinds"]["smoke"]["missed"] == 1
    assert doc["false_alerts"] == 1 and doc["kinds"]["water_leak"]["false_alerts"] == 1
    assert doc["false_per_resident_day"] == pytest.approx(1 / 28)
    bad = CliRunner().invoke(
        cli,
        [
            "eval",
            "--truth",
            str(truth),
            "--since",
            "2031-03-02",
            "--until",
            "2031-03-09",
            "--database-url",
            database_url,
        ],
    )
    assert bad.exit_code != 0 and "UTC offset" in bad.output


def _home_with_gateway(conn: psycopg.Connection[tuple[object, ...]], p: str) -> None:
    conn.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    conn.execute(
        f"INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        f"VALUES ('{p}hh', 'household', '{p}vi', 'H', 30.1, 120.1)"
    )
    conn.execute(f"INSERT INTO residents (id, site_id, display_name) VALUES ('{p}r', '{p}hh', 'X')")
    conn.execute(f"INSERT INTO gateways (id, site_id) VALUES ('{p}gw', '{p}hh')")


def test_eval_scores_replay_shards_together(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    """Two shard databases, each with its own home: alerts and residents of both count,
    and --only-served-sites leaves out incidents of homes neither replayed.  Alert ids
    repeat across databases: a false alert of the second with the id of a matched alert
    of the first is still false."""
    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    t0 = datetime(2031, 4, 6, tzinfo=UTC)
    urls, homes = [], []
    for n in range(2):
        url = fresh_database()
        p = f"s{uuid.uuid4().hex[:6]}"
        with connect(url, autocommit=True) as conn:
            migrate(conn, now=t0, retention=Retention.days(90, 730))
            _home_with_gateway(conn, p)
            if n == 1:  # id 1 here, as the first database's matched sos
                repo.open_or_refresh(
                    conn,
                    repo.AlertDraft(
                        subject=f"{p}r", site_id=f"{p}hh", kind="fever", severity=Severity.MEDIUM,
                        detector="rule:fever", at=t0 + timedelta(days=2), resident_id=f"{p}r",
                    ),
                )  # fmt: skip
            repo.open_or_refresh(
                conn,
                repo.AlertDraft(
                    subject=f"{p}r", site_id=f"{p}hh", kind="sos", severity=Severity.CRITICAL,
                    detector="rule:sos", at=t0 + timedelta(hours=1, seconds=5),
                    resident_id=f"{p}r",
                ),
            )  # fmt: skip
        urls.append(url)
        homes.append(p)
    truth = tmp_path / "truth.jsonl"
    truth.write_text(
        "".join(
            Incident(
                incident_id=f"i{p}", resident_id=f"{p}r", site_id=f"{p}hh", kind="sos",
                start=t0 + timedelta(hours=1), end=t0 + timedelta(hours=1, minutes=5),
            ).model_dump_json() + "\n"
            for p in [*homes, "elsewhere"]
        )
    )  # fmt: skip
    args = ["eval", "--truth", str(truth), "--since", t0.isoformat(), "--until",
            (t0 + timedelta(days=7)).isoformat(), "--database-url", urls[0],
            "--also-database-url", urls[1], "--out", str(tmp_path / "e.json")]  # fmt: skip
    everything = CliRunner().invoke(cli, args)
    assert everything.exit_code == 0, everything.output
    doc = json.loads((tmp_path / "e.json").read_text())["alerts"]
    assert doc["kinds"]["sos"]["detected"] == 2 and doc["kinds"]["sos"]["missed"] == 1
    assert doc["residents"] == 2
    assert doc["false_alerts"] == 1 and doc["kinds"]["fever"]["false_alerts"] == 1
    served = CliRunner().invoke(cli, [*args, "--only-served-sites"])
    assert served.exit_code == 0, served.output
    doc = json.loads((tmp_path / "e.json").read_text())["alerts"]
    assert doc["kinds"]["sos"]["detected"] == 2 and doc["kinds"]["sos"]["missed"] == 0
