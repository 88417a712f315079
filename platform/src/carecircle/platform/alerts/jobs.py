"""Scheduled absence checks: per resident and per sensor, not per gateway.

``run_absence_checks(conn, now, tz)`` is a plain function (the platform scheduler
calls it every ``alerts_absence_interval_s``; tests call it with a moved clock).
It reads the last activity per sensor (``activity_state``, kept by the engine),
residents' presence, devices and gateways; judges the pure detectors of
:mod:`.detectors.absence`; and writes through :mod:`.repository`:

* a new episode opens an alert (notified);
* a condition that persists refreshes the active alert quietly (no NOTIFY every
  minute; ``last_seen_at`` says it is still true);
* an episode that already had an alert (even one resolved since) opens no other;
* technical alerts (device/gateway offline, low battery) resolve themselves after
  the condition has been clear for ``clear_after_s`` (delayed clear against flapping).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import psycopg

from carecircle.common.clock import Clock, SystemClock
from carecircle.common.contract.provisioning import USUAL_WAKE_KEY, parse_usual_wake
from carecircle.platform.alerts import gate as gating
from carecircle.platform.alerts import repository, store
from carecircle.platform.alerts.config import (
    BedExitRule,
    DeviceOfflineRule,
    FallRule,
    GatewayOfflineRule,
    InactivityRule,
    LowBatteryRule,
    MissedWakeupRule,
    RuleBook,
    RuleInvalid,
)
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.absence import (
    ActivitySummary,
    DeviceState,
    Finding,
    GatewayState,
    History,
    device_offline,
    evaluate_bed_exit,
    evaluate_device,
    evaluate_gateway,
    evaluate_inactivity,
    evaluate_missed_wakeup,
    gateway_offline,
    judge_while_out,
    technical_cleared,
    without_lone_trigger,
)
from carecircle.platform.alerts.detectors.fall import held_fall_draft, judge_held_fall
from carecircle.platform.alerts.detectors.wakeup import (
    OUT_LOOKBACK,
    RISE_SPAN,
    Mark,
    WakeWindow,
    activations,
    presumed_out,
    rise_times,
    wakeup_window,
)
from carecircle.platform.alerts.kinds import HOME_ACTIVITY, TECHNICAL, AlertKind
from carecircle.platform.alerts.lifecycle import ACTIVE, Status
from carecircle.platform.alerts.repository import Conn

log = logging.getLogger(__name__)
K = AlertKind
ACTOR = "system:alerts"
JOB_ID = "alerts.absence_checks"
#: How far back a closed alert still marks its episode as handled.
EPISODE_MEMORY = timedelta(days=3)
#: Low-confidence fall alarms this recent are judged (worn check, ``FallRule``); longer
#: than any ``worn_check_s`` plus the time between two runs.
HELD_FALL_LOOKBACK = timedelta(hours=2)


@dataclass
class CheckReport:
    residents: int = 0
    suppressed: int = 0  #: residents away/in hospital/at day care: home checks skipped
    findings: int = 0
    opened: list[tuple[str, str]] = field(default_factory=list)  #: (kind, subject)
    refreshed: int = 0
    already_handled: int = 0
    cleared: list[tuple[str, str]] = field(default_factory=list)
    rule_errors: int = 0
    errors: int = 0
    falls_raised: int = 0  #: held low-confidence fall alarms raised (band worn or silent)
    falls_dropped: int = 0  #: held fall alarms of a band off the wrist (no alert)
    #: findings a gate withheld (kind, subject) — recorded in ``alert_withheld``
    withheld: list[tuple[str, str]] = field(default_factory=list)
    #: missed wake-ups not raised: the resident went out and has not come back
    presumed_out: list[str] = field(default_factory=list)


class WakeWant(NamedTuple):
    """What the wake-up window of one resident needs."""

    rule: MissedWakeupRule
    own_only: bool  #: lives with others: learned from their own devices
    fixed: bool  #: window set for the resident (not learned)
    stated: time | None = None  #: usual wake-up time stated at intake (care profile)


def stated_wake(ctx: ResidentCtx) -> time | None:
    """``care_profile.usual_wake_time`` (checked at provisioning; a stored value that is
    not valid is ignored, with a warning)."""
    value = ctx.care_profile.get(USUAL_WAKE_KEY)
    if value is None:
        return None
    try:
        return parse_usual_wake(value)
    except ValueError as err:
        log.warning("resident %s: %s; ignored", ctx.id, err)
        return None


@dataclass
class WakeupCache:
    """Each resident's past rise times, read from the store once per local day.

    The scheduled job keeps one (``absence_job``); a run without one reads the history
    every time (``carecircle alerts check``, tests).
    """

    day: date | None = None
    rises: dict[str, dict[date, time]] = field(default_factory=dict)
    #: local days on which a missed wake-up alert was raised (left out of the history)
    alerted: dict[str, set[date]] = field(default_factory=dict)

    def windows(
        self,
        conn: Conn,
        wanted: dict[str, WakeWant],
        now: datetime,
        tz: tzinfo,
    ) -> dict[str, WakeWindow]:
        """Today's window per resident."""
        today = now.astimezone(tz).date()
        if self.day != today:
            self.day, self.rises, self.alerted = today, {}, {}
        todo = {
            rid: v
            for rid, v in wanted.items()
            if rid not in self.rises and v.rule.learn and not v.fixed
        }
        if todo:
            back = max(w.rule.learn_days for w in todo.values())
            since = datetime.combine(today - timedelta(days=back), time(0), tzinfo=tz)
            until = datetime.combine(today, time(0), tzinfo=tz)
            marks = store.wake_marks(conn, sorted(todo), since, until)
            self.alerted.update(store.wakeup_alert_days(conn, sorted(todo), since, tz))
            days = [today - timedelta(days=i) for i in range(back, 0, -1)]
            for rid, w in todo.items():
                acts = activations(marks.get(rid, []), w.rule, own_only=w.own_only)
                self.rises[rid] = rise_times(
                    acts, tz, days, w.rule.learn_earliest, w.rule.learn_latest
                )
        return {
            rid: wakeup_window(
                w.rule,
                self.rises.get(rid, {}),
                today,
                fixed_for_resident=w.fixed,
                stated=w.stated,
                alerted=self.alerted.get(rid, set()),
            )
            for rid, w in wanted.items()
        }


def _window_marks(
    conn: Conn,
    wanted: dict[str, WakeWant],
    wakes: dict[str, WakeWindow],
    now: datetime,
    tz: tzinfo,
) -> dict[str, list[Mark]]:
    """Today's readings of the residents whose wake-up window is over and still judged
    (``grace_s``), from an hour before the window's start (the values before it: a bed
    exit, a step count's rise) until ``now``; one read for all of them."""
    local = now.astimezone(tz)
    due: dict[str, datetime] = {}
    for rid, w in wakes.items():
        start = datetime.combine(local.date(), w.start, tzinfo=tz)
        end = datetime.combine(local.date(), w.end, tzinfo=tz)
        if end <= local < end + timedelta(seconds=wanted[rid].rule.grace_s):
            due[rid] = start
    if not due:
        return {}
    since = min(due.values()) - RISE_SPAN
    return store.wake_marks(conn, sorted(due), since, now + timedelta(microseconds=1))


def _drop_presumed_out(
    conn: Conn,
    findings: list[Finding],
    wanted: dict[str, WakeWant],
    inactivity: dict[str, InactivityRule],
    now: datetime,
    tz: tzinfo,
    report: CheckReport,
) -> list[Finding]:
    """Findings of residents who went out of the front door and have not come back
    (``wakeup.presumed_out``): their missed wake-ups are left out (rule
    ``skip_if_out``), their inactivity is judged as an outing
    (:func:`~.detectors.absence.judge_while_out`).  Only findings judged on the shared
    sensors; the home's readings are read for them alone."""

    def shared(f: Finding) -> bool:
        return not f.draft.explanation.get("own_devices_only")

    def wake_due(f: Finding) -> bool:
        want = wanted.get(f.draft.subject)
        return f.draft.kind == K.MISSED_WAKEUP.value and want is not None and want.rule.skip_if_out

    def inactivity_due(f: Finding) -> bool:
        return f.draft.kind == K.PROLONGED_INACTIVITY.value and f.draft.subject in inactivity

    due = sorted(
        {f.draft.subject for f in findings if shared(f) and (wake_due(f) or inactivity_due(f))}
    )
    if not due:
        return findings
    marks = store.wake_marks(
        conn, due, now - OUT_LOOKBACK, now + timedelta(microseconds=1), with_door=True
    )
    out: dict[str, datetime] = {}
    for rid in due:
        left = presumed_out(marks.get(rid, []), now)
        if left is not None:
            out[rid] = left
    kept = []
    for f in findings:
        left = out.get(f.draft.subject) if shared(f) else None
        if left is not None and wake_due(f):
            report.presumed_out.append(f.draft.subject)
            log.info(
                "missed wake-up of %s not raised: went out at %s and not back",
                f.draft.subject,
                left.isoformat(),
            )
            continue
        if left is not None and inactivity_due(f):
            judged = judge_while_out(f, left, inactivity[f.draft.subject], now, tz)
            if judged is None:
                report.presumed_out.append(f.draft.subject)
                continue
            f = judged
        kept.append(f)
    return kept


def _rule(book: RuleBook, kind: AlertKind, report: CheckReport, **where: Any) -> Any:
    try:
        return book.rule(kind, **where)
    except RuleInvalid as err:
        report.rule_errors += 1
        log.warning("stored %s rule is invalid, skipped: %s", kind, err)
        return None


def _home_activations(conn: Conn, dev: DeviceState, rule: Any, now: datetime) -> int | None:
    """For a band that is silent beyond its floor: the home's motion activations since
    (read only then: a few bands a day); ``None`` otherwise or without home sensors."""
    if (
        dev.type != "wearable"
        or not isinstance(rule, DeviceOfflineRule)
        or dev.last_seen is None
        or not device_offline(dev, rule, now)
    ):
        return None
    since = dev.last_seen + timedelta(seconds=rule.wearable_home_activity_s)
    return store.home_activations(conn, dev.site_id, since, now, rule.wearable_home_activations)


def _resident_findings(
    ctx: ResidentCtx,
    summary: ActivitySummary,
    book: RuleBook,
    now: datetime,
    tz: tzinfo,
    report: CheckReport,
    inactivity: InactivityRule | None = None,
    wakeup: MissedWakeupRule | None = None,
    wake: WakeWindow | None = None,
    today_marks: list[Mark] | None = None,
    history: History | None = None,
) -> list[Finding]:
    """``inactivity`` and ``wakeup``: the resident's rules of those kinds, as
    ``run_absence_checks`` looked them up (``None``: none applies).  ``history``: reads
    the home's marks, to tell a lone motion trigger (``without_lone_trigger``)."""
    out: list[Finding] = []
    where = ctx.where()
    if inactivity is not None:
        found = evaluate_inactivity(summary, inactivity, now, tz)
        if history is not None:
            found = without_lone_trigger(summary, found, inactivity, now, tz, history)
        out += found
    if wakeup is not None:
        if wake is not None:
            wakeup = wakeup.model_copy(update={"start": wake.start, "end": wake.end})
        since = None
        if today_marks is not None:
            since = activations(today_marks, wakeup, own_only=summary.personal(now))
        out += evaluate_missed_wakeup(
            summary,
            wakeup,
            now,
            tz,
            window=wake.explanation() if wake else None,
            since_start=since,
        )
    bed = _rule(book, K.BED_EXIT_NOT_RETURNED, report, **where)
    if isinstance(bed, BedExitRule):
        out += evaluate_bed_exit(summary, bed, now, tz)
    return out


def run_absence_checks(
    conn: Conn,
    now: datetime,
    tz: tzinfo,
    *,
    site_ids: Sequence[str] | None = None,
    wake_cache: WakeupCache | None = None,
    gates: Sequence[gating.AlertGate] = (),
) -> CheckReport:
    """Judge every absence check once at ``now``; see the module docstring.

    ``site_ids`` limits the run to some sites (sharding, tests); ``None`` checks all.
    ``wake_cache`` keeps the residents' rise times between runs (read once a day).
    ``gates`` are asked about every finding of :data:`~.gate.GATED_KINDS` that would
    open a new alert; one that withholds it records it in ``alert_withheld`` instead
    (see :mod:`.gate`).
    """
    report = CheckReport()
    book = RuleBook(store.load_rules(conn))
    residents = store.residents(conn, site_ids=site_ids)
    activity = store.activity_entries(conn, site_ids)
    findings: list[Finding] = []
    per_site = Counter(ctx.site_id for ctx in residents.values())
    home = {rid: ctx for rid, ctx in residents.items() if not ctx.away(now)}
    wanted: dict[str, WakeWant] = {}
    for rid, ctx in home.items():
        rule = _rule(book, K.MISSED_WAKEUP, report, **ctx.where())
        if isinstance(rule, MissedWakeupRule):
            fixed = book.set_for_resident(K.MISSED_WAKEUP, ("start", "end"), **ctx.where())
            wanted[rid] = WakeWant(rule, per_site[ctx.site_id] > 1, fixed, stated_wake(ctx))
    wakes = (wake_cache or WakeupCache()).windows(conn, wanted, now, tz) if wanted else {}
    today = _window_marks(conn, wanted, wakes, now, tz)
    inactivity: dict[str, InactivityRule] = {}  # also for judging an outing, below

    def history(rid: str, since: datetime, until: datetime) -> list[Mark]:
        return store.wake_marks(conn, [rid], since, until, with_door=True).get(rid, [])

    for rid, ctx in residents.items():
        report.residents += 1
        if rid not in home:
            report.suppressed += 1
            continue
        summary = ActivitySummary(ctx, activity.get(rid, []), per_site[ctx.site_id] - 1)
        rule = _rule(book, K.PROLONGED_INACTIVITY, report, **ctx.where())
        if isinstance(rule, InactivityRule):
            inactivity[rid] = rule
        want = wanted.get(rid)
        findings += _resident_findings(
            ctx,
            summary,
            book,
            now,
            tz,
            report,
            inactivity.get(rid),
            want.rule if want is not None else None,
            wakes.get(rid),
            today.get(rid),
            history,
        )
    findings = _drop_presumed_out(conn, findings, wanted, inactivity, now, tz, report)

    gateways = {g.id: g for g in store.gateway_states(conn, site_ids)}
    devices = {d.id: d for d in store.device_states(conn, site_ids)}
    down: set[str] = set()
    for gw in gateways.values():
        rule = _rule(book, K.GATEWAY_OFFLINE, report, site_id=gw.site_id)
        if isinstance(rule, GatewayOfflineRule):
            found = evaluate_gateway(gw, rule, now)
            findings += found
            if found:
                down.add(gw.id)
        elif gateway_offline(gw, GatewayOfflineRule(), now):
            down.add(gw.id)
    for dev in devices.values():
        owner = residents.get(dev.resident_id) if dev.resident_id else None
        where: dict[str, Any] = owner.where() if owner else {"site_id": dev.site_id}
        off = _rule(book, K.DEVICE_OFFLINE, report, **where)
        bat = _rule(book, K.LOW_BATTERY, report, **where)
        findings += evaluate_device(
            dev,
            off if isinstance(off, DeviceOfflineRule) else None,
            bat if isinstance(bat, LowBatteryRule) else None,
            now,
            dev.gateway_id in down,
            home_activations=_home_activations(conn, dev, off, now),
            shared_home=owner is not None and per_site[owner.site_id] > 1,
        )

    kinds = sorted({k.value for k in HOME_ACTIVITY | TECHNICAL})
    marks = store.latest_alerts(conn, kinds, now - EPISODE_MEMORY)
    report.findings = len(findings)
    current: set[tuple[str, str]] = set()
    for f in findings:
        d = f.draft
        key = (d.subject, d.kind)
        current.add(key)
        action = episode_action(marks.get(key), f.episode_start)
        try:
            if action == "refresh":
                repository.open_or_refresh(conn, d, notify_refresh=False)
                report.refreshed += 1
            elif action == "handled":
                report.already_handled += 1
            elif gates and d.kind in gating.GATED_KINDS:
                _open_gated(conn, f, gates, report)
            else:
                repository.open_or_refresh(conn, d)
                report.opened.append((d.kind, d.subject))
                log.info("opened %s alert on %s", d.kind, d.subject)
        except psycopg.Error:
            # one bad row must not stop the checks of everyone else
            report.errors += 1
            log.exception("could not write %s alert on %s", d.kind, d.subject)
    _clear_technical(conn, marks, current, devices, gateways, book, now, report)
    _judge_held_falls(conn, residents, book, now, report)
    return report


def episode_action(
    mark: store.AlertMark | None, episode_start: datetime
) -> Literal["refresh", "handled", "open"]:
    """Pure: what a finding of the episode that began at ``episode_start`` does, given
    the latest alert of its (subject, kind) (:func:`.store.latest_alerts` over
    :data:`EPISODE_MEMORY`): ``refresh`` the active one; ``handled`` when an alert
    opened since the episode began was closed since (the same condition, still
    running: no second alert); else ``open`` a new one.  Shared with the models' own
    alerts (``carecircle.ml.scoring.live``)."""
    if mark is not None and Status(mark.status) in ACTIVE:
        return "refresh"
    if mark is not None and mark.opened_at >= episode_start:
        return "handled"
    return "open"


def _judge_held_falls(
    conn: Conn,
    residents: dict[str, ResidentCtx],
    book: RuleBook,
    now: datetime,
    report: CheckReport,
) -> None:
    """Low-confidence fall alarms the engine held: raise unless the band was off the wrist."""
    rules: dict[str, FallRule] = {}
    for rid, ctx in residents.items():
        rule = _rule(book, K.FALL, report, **ctx.where())
        if isinstance(rule, FallRule) and rule.min_confidence > 0:
            rules[rid] = rule
    if not rules:
        return
    floor = max(r.min_confidence for r in rules.values())
    for fall in store.low_confidence_falls(
        conn, sorted(rules), now - HELD_FALL_LOOKBACK, now, floor
    ):
        rule = rules.get(fall.resident_id or "")
        if rule is None or fall.confidence >= rule.min_confidence:
            continue  # raised at once by the engine
        subject = fall.resident_id or fall.site_id
        if store.fall_alert_since(conn, subject, fall.at - timedelta(minutes=5)):
            continue  # raised already (this check, or another alarm of the same fall)
        reports = store.worn_reports(
            conn, fall.device_id, fall.at, fall.at + timedelta(seconds=rule.worn_check_s)
        )
        decision, reason = judge_held_fall(fall, reports, rule, now)
        if decision == "raise":
            try:
                repository.open_or_refresh(conn, held_fall_draft(fall, reason, now))
            except psycopg.Error:
                report.errors += 1
                log.exception("could not write the fall alert on %s", subject)
                continue
            report.falls_raised += 1
            report.opened.append((K.FALL.value, subject))
            log.info("raised held fall alarm of %s on %s: %s", fall.device_id, subject, reason)
        elif decision == "drop":
            report.falls_dropped += 1
            log.debug("held fall alarm of %s on %s not raised: %s", fall.device_id, subject, reason)


def _open_gated(
    conn: Conn, f: Finding, gates: Sequence[gating.AlertGate], report: CheckReport
) -> None:
    """Open a gated finding's alert unless a gate withholds it (then record why)."""
    d = f.draft
    verdict = gating.review_all(gates, conn, d, f.episode_start)
    if verdict.withhold:
        gating.record_withheld(conn, d, f.episode_start, verdict)
        report.withheld.append((d.kind, d.subject))
        log.info("withheld %s on %s: %s (%s)", d.kind, d.subject, verdict.reason, verdict.gate)
        return
    mark = gating.withheld_mark(conn, d.subject, d.kind, f.episode_start)
    change = repository.open_or_refresh(conn, gating.released_draft(d, mark))
    if mark is not None:
        gating.mark_released(conn, mark, change.id)
    report.opened.append((d.kind, d.subject))
    log.info("opened %s alert on %s", d.kind, d.subject)


def _clear_technical(
    conn: Conn,
    marks: dict[tuple[str, str], store.AlertMark],
    current: set[tuple[str, str]],
    devices: dict[str, DeviceState],
    gateways: dict[str, GatewayState],
    book: RuleBook,
    now: datetime,
    report: CheckReport,
) -> None:
    for (subject, kind), mark in marks.items():
        if kind not in TECHNICAL or Status(mark.status) not in ACTIVE:
            continue
        if (subject, kind) in current:
            continue
        dev, gw = devices.get(subject), gateways.get(subject)
        site = dev.site_id if dev else (gw.site_id if gw else None)
        rules = (
            _rule(book, K.DEVICE_OFFLINE, report, site_id=site) or DeviceOfflineRule(),
            _rule(book, K.LOW_BATTERY, report, site_id=site) or LowBatteryRule(),
            _rule(book, K.GATEWAY_OFFLINE, report, site_id=site) or GatewayOfflineRule(),
        )
        if technical_cleared(kind, dev, gw, rules, mark.last_seen_at, now):
            repository.transition(
                conn, mark.id, Status.RESOLVED, actor=ACTOR, at=now, note="condition cleared"
            )
            report.cleared.append((kind, subject))


def absence_job(
    connect: Callable[[], Conn],
    tz: tzinfo,
    clock: Clock | None = None,
    gates: Sequence[gating.AlertGate] = (),
) -> Callable[[], CheckReport]:
    """A zero-argument callable for the scheduler: connect, check at ``clock.now()``, close."""
    clk = clock or SystemClock()
    wake_cache = WakeupCache()

    def job() -> CheckReport:
        with connect() as conn:
            report = run_absence_checks(conn, clk.now(), tz, wake_cache=wake_cache, gates=gates)
        log.info(
            "absence checks: %d residents, %d findings, %d opened, %d cleared",
            report.residents,
            report.findings,
            len(report.opened),
            len(report.cleared),
        )
        return report

    return job


def register_jobs(
    scheduler: Any, settings: Any, connect: Callable[[], Conn], clock: Clock | None = None
) -> None:
    """Add the alerts jobs to an APScheduler 3 scheduler (``PlatformSettings`` fields).

    The absence checks ask every installed gate (``carecircle.alerts.gates``) about
    gated findings, unless ``settings.alerts_gates`` is off.
    """
    gates = gating.load_gates(settings) if getattr(settings, "alerts_gates", True) else []
    scheduler.add_job(
        absence_job(connect, ZoneInfo(settings.timezone), clock, gates),
        "interval",
        seconds=settings.alerts_absence_interval_s,
        id=JOB_ID,
        name="alerts: absence, device and gateway checks",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )


def register_scheduler(scheduler: Any, ctx: Any) -> None:
    """Entry point for ``carecircle platform scheduler`` (group ``carecircle.scheduler.jobs``)."""
    register_jobs(scheduler, ctx.settings, ctx.connect, ctx.clock)
