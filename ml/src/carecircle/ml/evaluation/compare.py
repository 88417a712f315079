"""Rules alone vs rules + models, per incident kind, against the simulator's ground truth.

The definitions are ``carecircle eval``'s (``carecircle.platform.alerts.eval``): an
alert *detects* an incident when it is about the same resident, its kind can detect
the incident's kind (:data:`MATCHES`: a model's ``unusual_inactivity`` detects
``prolonged_inactivity``, ``missed_routine`` detects ``missed_wakeup``, …; an ``sos``
detects a fall where the button was pressed) and it was active during the incident
(opened by ``grace`` after its end, last seen at most ``LEAD`` before its start — a
band's clock may run a little behind).  The delay is from the start to the first
detecting alert's opening (0 if earlier).  An alert that detects nothing is
*related* when it was active during another real incident of the same resident
(inactivity after a fall) and otherwise false (alerts during benign look-alikes such
as ``away_from_home`` are false too).  Per incident kind the table gives recall,
recall within :data:`TIMELY` (2 h) of the start, precision, median detection delay
and false alerts per resident-day, for the rule
alerts alone, the model alerts alone, and both together.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from carecircle.ml.evaluation.records import AlertRecord, Period, TruthIncident

#: Which incident kinds an alert of a kind can detect (every kind detects itself).
MATCHES: dict[str, frozenset[str]] = {
    "unusual_inactivity": frozenset({"prolonged_inactivity"}),
    "missed_routine": frozenset({"missed_wakeup"}),
    "unusual_night_activity": frozenset({"night_wandering", "bed_exit_not_returned"}),
    "vitals_anomaly": frozenset({"tachycardia", "bradycardia", "low_spo2", "fever"}),
    "routine_drift": frozenset(),
}
GRACE = timedelta(minutes=30)
LEAD = timedelta(minutes=2)
#: "Timely" recall: detected within this long of the incident's start.  For a person on
#: the floor or not up, how soon someone is sent matters as much as whether: a rule with
#: a 3 h day limit and a model that finds the same silence after 2 h have the same
#: recall and not the same value.
TIMELY = timedelta(hours=2)


def detects(kind: str) -> frozenset[str]:
    return MATCHES.get(kind, frozenset()) | {kind}


@dataclass(frozen=True)
class KindScore:
    kind: str
    incidents: int
    detected: int
    alerts: int  # alerts that can detect this kind and were not true for another kind
    true_alerts: int
    false_alerts: int
    median_delay_min: float | None
    resident_days: float
    #: incidents detected within :data:`TIMELY` of their start
    timely: int = 0

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    @property
    def timely_recall(self) -> float | None:
        return self.timely / self.incidents if self.incidents else None

    @property
    def precision(self) -> float | None:
        judged = self.true_alerts + self.false_alerts
        return self.true_alerts / judged if judged else None

    @property
    def false_per_resident_day(self) -> float:
        return self.false_alerts / self.resident_days if self.resident_days else 0.0


def _active_during(alert: AlertRecord, inc: TruthIncident, grace: timedelta) -> bool:
    last = alert.last_seen if alert.last_seen is not None else alert.time
    return (
        alert.resident_id is not None
        and alert.resident_id == inc.resident_id
        and alert.time <= inc.end + grace
        and last >= inc.start - LEAD
    )


def _can_detect(alert: AlertRecord, inc: TruthIncident) -> bool:
    if inc.kind in detects(alert.kind):
        return True
    return alert.kind == "sos" and inc.kind == "fall" and bool(inc.detail.get("sos_pressed"))


def score_alerts(
    alerts: Sequence[AlertRecord],
    truth: Sequence[TruthIncident],
    period: Period,
    grace: timedelta = GRACE,
) -> dict[str, KindScore]:
    """Scores per incident kind for one set of alerts."""
    real = [t for t in truth if not t.benign and period.start <= t.start < period.end]
    alerts = [a for a in alerts if period.start <= a.time < period.end]
    by_resident: dict[str | None, list[TruthIncident]] = {}
    for inc in real:
        by_resident.setdefault(inc.resident_id, []).append(inc)
    # which incidents each alert detects
    hits: list[list[TruthIncident]] = []
    related: list[bool] = []
    for a in alerts:
        mine = by_resident.get(a.resident_id, [])
        hits.append([i for i in mine if _can_detect(a, i) and _active_during(a, i, grace)])
        related.append(any(_active_during(a, i, grace) for i in mine))
    present = {t.kind for t in truth if not t.benign}
    # a row per incident kind in the truth, and one per alert kind that detects none of them
    kinds = sorted(present | {a.kind for a in alerts if not detects(a.kind) & present})
    out: dict[str, KindScore] = {}
    for kind in kinds:
        incidents = [i for i in real if i.kind == kind]
        delays: list[float] = []
        detected = 0
        for inc in incidents:
            times = [a.time for a, h in zip(alerts, hits, strict=True) if inc in h]
            if times:
                detected += 1
                delays.append(max(0.0, (min(times) - inc.start).total_seconds() / 60))
        true_alerts = false_alerts = considered = 0
        for a, h, rel in zip(alerts, hits, related, strict=True):
            can = detects(a.kind) & present
            if kind not in can and not (kind == a.kind and not can):
                continue
            if any(i.kind == kind for i in h):
                true_alerts += 1
                considered += 1
            elif not h and not rel:
                false_alerts += 1
                considered += 1
        out[kind] = KindScore(
            kind=kind,
            incidents=len(incidents),
            detected=detected,
            alerts=considered,
            true_alerts=true_alerts,
            false_alerts=false_alerts,
            median_delay_min=statistics.median(delays) if delays else None,
            resident_days=period.resident_days,
            timely=sum(1 for d in delays if d <= TIMELY.total_seconds() / 60),
        )
    return out


@dataclass(frozen=True)
class ComparisonTable:
    period: Period
    rules: dict[str, KindScore]
    models: dict[str, KindScore]
    combined: dict[str, KindScore]

    @property
    def kinds(self) -> list[str]:
        return sorted(set(self.rules) | set(self.models) | set(self.combined))

    def rows(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for kind in self.kinds:
            for label, scores in (
                ("rules", self.rules),
                ("models", self.models),
                ("rules+models", self.combined),
            ):
                s = scores.get(kind)
                out.append(
                    {
                        "kind": kind,
                        "detectors": label,
                        "incidents": s.incidents if s else 0,
                        "recall": s.recall if s else None,
                        "timely_recall": s.timely_recall if s else None,
                        "precision": s.precision if s else None,
                        "median_delay_min": s.median_delay_min if s else None,
                        "false_alerts": s.false_alerts if s else 0,
                        "false_per_resident_day": s.false_per_resident_day if s else 0.0,
                    }
                )
        return out

    def render(self) -> str:
        def fmt(v: object, pct: bool = False) -> str:
            if v is None:
                return "—"
            if isinstance(v, float):
                return f"{100 * v:.0f}%" if pct else f"{v:.3f}" if v < 10 else f"{v:.0f}"
            return str(v)

        timely = f"<= {TIMELY.total_seconds() / 3600:g} h"
        head = (
            f"{'incident kind':<24}{'detectors':<14}{'incidents':>10}{'recall':>8}{timely:>8}"
            f"{'precision':>11}{'delay min':>11}{'false':>7}{'false/res-day':>15}"
        )
        lines = [
            f"rules vs rules+models over {self.period.resident_days:.0f} resident-days "
            f"({self.period.start:%Y-%m-%d} – {self.period.end:%Y-%m-%d})",
            head,
            "-" * len(head),
        ]
        for r in self.rows():
            lines.append(
                f"{r['kind']!s:<24}{r['detectors']!s:<14}{fmt(r['incidents']):>10}"
                f"{fmt(r['recall'], True):>8}{fmt(r['timely_recall'], True):>8}"
                f"{fmt(r['precision'], True):>11}"
                f"{fmt(r['median_delay_min']):>11}{fmt(r['false_alerts']):>7}"
                f"{fmt(r['false_per_resident_day']):>15}"
            )
        return "\n".join(lines)


def compare(
    rule_alerts: Iterable[AlertRecord],
    model_alerts: Iterable[AlertRecord],
    truth: Sequence[TruthIncident],
    period: Period,
    grace: timedelta = GRACE,
    combined_alerts: Iterable[AlertRecord] | None = None,
) -> ComparisonTable:
    """The "rules vs rules + models" table for ``carecircle eval``.

    ``rule_alerts``: what the rules alone would raise; ``model_alerts``: the models'
    own alerts; ``combined_alerts``: what the platform raised with both (rule alerts a
    model gate withheld are not in it).  Without ``combined_alerts`` it is the union of
    the other two (no gate).
    """
    rules = list(rule_alerts)
    models = list(model_alerts)
    both = list(combined_alerts) if combined_alerts is not None else rules + models
    return ComparisonTable(
        period=period,
        rules=score_alerts(rules, truth, period, grace),
        models=score_alerts(models, truth, period, grace),
        combined=score_alerts(both, truth, period, grace),
    )


def rules_alone(
    raised_by_rules: Sequence[tuple[int, AlertRecord]],
    withheld: Sequence[tuple[int | None, AlertRecord]],
) -> list[AlertRecord]:
    """Pure: what the rules alone would have raised, from what the platform stored.

    ``raised_by_rules``: (alert id, record) of the rule alerts the platform opened;
    ``withheld``: (id of the alert opened when it was released, or None; record at the
    time the rule first found it) of the findings a gate withheld.  A released alert is
    counted once, at the time the rules would have opened it.
    """
    released = {alert_id for alert_id, _ in withheld if alert_id is not None}
    out = [rec for alert_id, rec in raised_by_rules if alert_id not in released]
    out += [rec for _, rec in withheld]
    return sorted(out, key=lambda r: r.time)
