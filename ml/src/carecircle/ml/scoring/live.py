"""Score residents' newest hour with their active models and raise alerts.

Runs as an hourly scheduler job (``ml-score``): it scores the last complete hour from
``rollup_1h`` (26 hours of context; 22 days at the daily drift hour) and raises each
finding with :func:`carecircle.platform.alerts.repository.open_or_refresh` as
``source="model"``, ``detector="ml:<model>@<version>"``, with the explanation (which
feature, observed vs expected, how far) stored on the alert.

Episodes, as the rules' absence checks keep them (:func:`.alerts.jobs.episode_action`
over :func:`.alerts.store.latest_alerts`): every finding carries the start of its
condition (``Finding.episode``: the quiet run, the morning, the run of anomalous
hours); a finding whose episode already had an alert, closed since by a caregiver,
opens no other.  A still-open alert is refreshed as before; a new alert opens only
once the condition cleared and came back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from carecircle.ml.features.hourly import FEATURES, HOUR, HourlyMatrix, floor_hour
from carecircle.ml.features.store import load_profiles, read_hourly
from carecircle.ml.models.findings import Finding
from carecircle.ml.models.routine import DRIFT_HOUR, RoutineModel
from carecircle.ml.models.vitals import VitalsModel
from carecircle.ml.registry.store import ModelRecord, ModelRegistry
from carecircle.platform.alerts import store as alert_store
from carecircle.platform.alerts.jobs import EPISODE_MEMORY, episode_action
from carecircle.platform.alerts.kinds import AlertKind
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.alerts.repository import AlertDraft, open_or_refresh

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]
CONTEXT = timedelta(hours=26)
DRIFT_CONTEXT = timedelta(days=22)
#: The kinds the models raise (their episodes are remembered across hours).
MODEL_KINDS: tuple[str, ...] = tuple(
    k.value
    for k in (
        AlertKind.UNUSUAL_INACTIVITY,
        AlertKind.UNUSUAL_NIGHT_ACTIVITY,
        AlertKind.MISSED_ROUTINE,
        AlertKind.VITALS_ANOMALY,
        AlertKind.ROUTINE_DRIFT,
    )
)


def score_matrix(
    m: HourlyMatrix, i: int, routine: RoutineModel | None, vitals: VitalsModel | None
) -> list[tuple[str, Finding]]:
    """Pure: findings of both models for hour ``i`` of ``m``, tagged with the model name."""
    out: list[tuple[str, Finding]] = []
    if routine is not None:
        out += [("routine", f) for f in routine.score(m, i)]
    if vitals is not None:
        out += [("vitals", f) for f in vitals.score(m, i)]
    return out


def draft_for(finding: Finding, record: ModelRecord, site_id: str) -> AlertDraft:
    """Pure: the alert a finding becomes."""
    return AlertDraft(
        subject=finding.resident_id,
        site_id=site_id,
        kind=finding.kind,
        severity=Severity(finding.severity),
        detector=record.detector,
        at=finding.at,
        resident_id=finding.resident_id,
        message=finding.message,
        source="model",
        explanation=finding.explanation(record.model, record.version),
    )


@dataclass
class ScoreReport:
    hour: datetime
    scored: int = 0
    findings: list[Finding] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)
    #: findings of an episode whose alert a caregiver closed already: no second alert
    already_handled: int = 0
    #: per resident: both models on the newest hour, milliseconds (the DB read and the
    #: hourly aggregation in PostgreSQL are shared by all residents: ``read_ms``)
    latency_ms: list[float] = field(default_factory=list)
    read_ms: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latency_ms) if self.latency_ms else np.zeros(1)
        return {
            "hour": self.hour.isoformat(),
            "scored": self.scored,
            "findings": len(self.findings),
            "alerts": len(self.alerts),
            "already_handled": self.already_handled,
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 3),
            "read_ms": round(self.read_ms, 1),
        }


def score_hour(
    conn: Conn,
    registry: ModelRegistry,
    at: datetime,
    tz: ZoneInfo,
    residents: Sequence[str] | None = None,
) -> ScoreReport:
    """Score the last complete hour before ``at`` for residents with active models."""
    end = floor_hour(at)
    hour = end - HOUR
    report = ScoreReport(hour=hour)
    owners = list(residents) if residents else None
    # versions trained on other features (older code) are not used: retrained nightly
    routines = registry.active(conn, "routine", owners, features=FEATURES)
    vitals = registry.active(conn, "vitals", owners, features=FEATURES)
    who = sorted(set(routines) | set(vitals))
    if not who:
        return report
    context = DRIFT_CONTEXT if hour.astimezone(tz).hour == DRIFT_HOUR else CONTEXT
    started = time.perf_counter()
    profiles = load_profiles(conn, who)
    matrices = read_hourly(conn, end - context, end, who, tz)
    report.read_ms = (time.perf_counter() - started) * 1000
    marks = alert_store.latest_alerts(conn, MODEL_KINDS, at - EPISODE_MEMORY)
    for rid in who:
        if rid not in profiles:
            continue
        t0 = time.perf_counter()
        m = matrices[rid]
        r_rec, v_rec = routines.get(rid), vitals.get(rid)
        found = score_matrix(
            m,
            m.hours - 1,
            registry.load(r_rec) if r_rec else None,
            registry.load(v_rec) if v_rec else None,
        )
        report.latency_ms.append((time.perf_counter() - t0) * 1000)
        report.scored += 1
        for name, finding in found:
            record = r_rec if name == "routine" else v_rec
            assert record is not None
            report.findings.append(finding)
            mark = marks.get((finding.resident_id, finding.kind))
            if episode_action(mark, finding.episode) == "handled":
                report.already_handled += 1
                log.debug(
                    "%s of %s since %s: its alert was closed already",
                    finding.kind,
                    rid,
                    finding.episode.isoformat(),
                )
                continue
            change = open_or_refresh(conn, draft_for(finding, record, profiles[rid].site_id))
            report.alerts.append(change.id)
    log.info("ml scoring %s", report.summary())
    return report
