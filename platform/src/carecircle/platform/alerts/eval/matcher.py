"""Pure scoring of alerts against ground-truth incidents.

Definitions (also in docs/alerts.md):

* An alert **matches** an incident when the kinds agree (an ``sos`` alert also matches a
  ``fall`` incident whose ``detail.sos_pressed`` is true), the subject agrees (same
  device for technical kinds when both name one, else same resident when both name
  one, else same site), and the alert was active during the incident:
  ``opened_at <= end + grace`` and ``last_seen_at >= start - lead``.
* An incident is **detected** if at least one alert matches it; its **detection delay**
  is ``max(0, first matching opened_at - start)``.
* An alert that matches no real incident is **related** when it was opened during a
  real incident that could have caused it (:func:`explains`: e.g. prolonged inactivity
  after a fall of the same resident, or while the home's sensors were silenced by a
  device or gateway fault), otherwise **false**; alerts during benign look-alikes
  (naps, visits, a removed band, being away) are false and also counted as
  ``false_during_benign``.
* **False alerts per resident-day** = false alerts / (residents × days in the range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

TECHNICAL_KINDS = frozenset({"device_offline", "low_battery", "gateway_offline"})

#: Targets from the issue: recall per kind and false alerts per resident-day.
RECALL_TARGETS: dict[str, float] = {
    "sos": 0.99,
    "fall": 0.99,
    "smoke": 0.99,
    "gas": 0.99,
    "carbon_monoxide": 0.99,
    "water_leak": 0.99,
    "missed_wakeup": 0.9,
    "prolonged_inactivity": 0.9,
}
FALSE_PER_RESIDENT_DAY_TARGET = 0.05


class Incident(BaseModel):
    """One line of the ground-truth JSON Lines file (pinned in the brief)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    incident_id: str
    resident_id: str | None = None
    site_id: str
    device_id: str | None = None
    kind: str
    benign: bool = False
    start: AwareDatetime
    end: AwareDatetime
    detail: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str
    site_id: str
    opened_at: datetime
    last_seen_at: datetime
    resident_id: str | None = None
    device_id: str | None = None
    subject: str = ""


@dataclass
class KindScore:
    kind: str
    incidents: int = 0
    detected: int = 0
    delays_s: list[float] = field(default_factory=list)
    alerts: int = 0  #: alerts of this kind in the range
    false_alerts: int = 0
    missed_ids: list[str] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.incidents - self.detected

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "detected": self.detected,
            "missed": self.missed,
            "recall": self.recall,
            "median_delay_s": median(self.delays_s) if self.delays_s else None,
            "p95_delay_s": percentile(self.delays_s, 95),
            "alerts": self.alerts,
            "false_alerts": self.false_alerts,
            "missed_incidents": self.missed_ids[:20],
        }


@dataclass
class EvalResult:
    since: datetime
    until: datetime
    residents: int
    kinds: dict[str, KindScore]
    alerts: int
    false_alerts: int
    related_alerts: int
    false_during_benign: int

    @property
    def resident_days(self) -> float:
        return self.residents * (self.until - self.since).total_seconds() / 86400

    @property
    def false_per_resident_day(self) -> float | None:
        return self.false_alerts / self.resident_days if self.resident_days > 0 else None

    def target_checks(self) -> dict[str, bool | None]:
        checks: dict[str, bool | None] = {}
        for kind, target in RECALL_TARGETS.items():
            score = self.kinds.get(kind)
            recall = score.recall if score else None
            checks[f"recall:{kind}>={target}"] = None if recall is None else recall >= target
        fprd = self.false_per_resident_day
        checks[f"false_per_resident_day<={FALSE_PER_RESIDENT_DAY_TARGET}"] = (
            None if fprd is None else fprd <= FALSE_PER_RESIDENT_DAY_TARGET
        )
        return checks

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "residents": self.residents,
            "resident_days": self.resident_days,
            "alerts": self.alerts,
            "false_alerts": self.false_alerts,
            "related_alerts": self.related_alerts,
            "false_during_benign": self.false_during_benign,
            "false_per_resident_day": self.false_per_resident_day,
            "kinds": {k: s.as_dict() for k, s in sorted(self.kinds.items())},
            "targets": self.target_checks(),
        }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def kinds_match(alert: AlertRecord, inc: Incident) -> bool:
    if alert.kind == inc.kind:
        return True
    return alert.kind == "sos" and inc.kind == "fall" and bool(inc.detail.get("sos_pressed"))


def same_subject(alert: AlertRecord, inc: Incident) -> bool:
    if inc.kind in TECHNICAL_KINDS and alert.device_id and inc.device_id:
        return alert.device_id == inc.device_id
    if alert.resident_id and inc.resident_id:
        return alert.resident_id == inc.resident_id
    return alert.site_id == inc.site_id


#: Site and device incidents that can make a resident's home look still: their sensors
#: are silent.  A weak battery, a leak or a cold room silences nothing.
SILENCING_KINDS = frozenset({"device_offline", "gateway_offline"})


def explains(alert: AlertRecord, inc: Incident) -> bool:
    """Could real incident ``inc`` have caused ``alert`` (a *related* alert)?

    The same subject (:func:`same_subject`), and for an alert about a resident: an
    incident of that resident, or a fault that silenced the home's sensors.  Without
    the second condition any alert at a site during a three-day low-battery incident of
    its leak sensor was "related", whatever it was.
    """
    if not same_subject(alert, inc):
        return False
    if alert.resident_id is None or alert.kind in TECHNICAL_KINDS:
        return True
    return inc.resident_id is not None or inc.kind in SILENCING_KINDS


def overlaps(alert: AlertRecord, inc: Incident, lead: timedelta, grace: timedelta) -> bool:
    return alert.opened_at <= inc.end + grace and alert.last_seen_at >= inc.start - lead


def score(
    incidents: Iterable[Incident],
    alerts: Iterable[AlertRecord],
    *,
    since: datetime,
    until: datetime,
    residents: int,
    grace: timedelta = timedelta(minutes=30),
    lead: timedelta = timedelta(minutes=2),
) -> EvalResult:
    """Score ``alerts`` opened in ``[since, until)`` against incidents starting there."""
    incs = [i for i in incidents if since <= i.start < until]
    real = [i for i in incs if not i.benign]
    benign = [i for i in incs if i.benign]
    als = [a for a in alerts if since <= a.opened_at < until]
    kinds: dict[str, KindScore] = {}
    # by position, not ``AlertRecord.id``: alerts of several shard databases share ids
    matched_alerts: set[int] = set()
    for inc in sorted(real, key=lambda i: i.start):
        ks = kinds.setdefault(inc.kind, KindScore(inc.kind))
        ks.incidents += 1
        hits = [
            n
            for n, a in enumerate(als)
            if kinds_match(a, inc) and same_subject(a, inc) and overlaps(a, inc, lead, grace)
        ]
        if hits:
            ks.detected += 1
            first = min(als[n].opened_at for n in hits)
            ks.delays_s.append(max(0.0, (first - inc.start).total_seconds()))
            matched_alerts.update(hits)
        else:
            ks.missed_ids.append(inc.incident_id)
    for a in als:
        kinds.setdefault(a.kind, KindScore(a.kind)).alerts += 1
    false = related = during_benign = 0
    for n, a in enumerate(als):
        if n in matched_alerts:
            continue
        if any(explains(a, i) and overlaps(a, i, lead, grace) for i in real):
            related += 1
            continue
        false += 1
        kinds.setdefault(a.kind, KindScore(a.kind)).false_alerts += 1
        if any(same_subject(a, i) and overlaps(a, i, lead, timedelta(0)) for i in benign):
            during_benign += 1
    return EvalResult(
        since=since,
        until=until,
        residents=residents,
        kinds=kinds,
        alerts=len(als),
        false_alerts=false,
        related_alerts=related,
        false_during_benign=during_benign,
    )


def format_table(result: EvalResult) -> str:
    """A plain-text table of the result, one row per kind."""

    def fmt(v: float | None, spec: str = ".0f") -> str:
        return "-" if v is None else format(v, spec)

    head = (
        f"{'kind':<24}{'incid':>6}{'det':>6}{'miss':>6}{'recall':>8}"
        f"{'med s':>8}{'p95 s':>8}{'alerts':>7}{'false':>7}"
    )
    lines = [head, "-" * len(head)]
    for kind, s in sorted(result.kinds.items()):
        d = s.as_dict()
        lines.append(
            f"{kind:<24}{s.incidents:>6}{s.detected:>6}{s.missed:>6}"
            f"{fmt(s.recall, '.3f'):>8}{fmt(d['median_delay_s']):>8}{fmt(d['p95_delay_s']):>8}"
            f"{s.alerts:>7}{s.false_alerts:>7}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"alerts {result.alerts}, false {result.false_alerts} "
        f"({fmt(result.false_per_resident_day, '.4f')} per resident-day over "
        f"{result.resident_days:.1f} resident-days), related {result.related_alerts}, "
        f"during benign look-alikes {result.false_during_benign}"
    )
    for name, ok in result.target_checks().items():
        lines.append(f"  {'PASS' if ok else ('n/a ' if ok is None else 'FAIL')}  {name}")
    return "\n".join(lines)
