"""The routine models as a gate on the rules' inactivity and missed wake-up alerts.

A fixed rule raises ``prolonged_inactivity`` after 3 h of silence by day.  For a
person who sits still for hours every afternoon, or is out every morning, those
alerts are false.  :func:`judge` (pure) says, from the resident's active routine
model and their band, whether what the rule found is normal for this person *now*:

* **away** (both kinds) — the resident wears a band and it has sent nothing at all
  (neither its step counter, sent every 2 minutes while worn, nor its worn flag, sent
  with the battery every 2 minutes while in range of the home receiver, worn or not)
  for :data:`AWAY_AFTER`: they are out, not silent at home;
* **routine** (inactivity only) — a silence this long (in hours) at this hour happened
  on at least :data:`USUAL_SHARE` of the person's days.  A finding the rule judged on
  the resident's own devices (``own_devices_only``: a band wearer with housemates) is
  compared with the quiet history of those devices (``RoutineModel.quiet_own``),
  any other with the home's (``RoutineModel.quiet``).

A ``missed_wakeup`` finding gets the away check only: the rule itself judges against
the resident's own learned wake-up window (docs/alerts.md, *Missed wake-up: a window
per resident*), so a second, laxer "usual" bar here only withheld real ones (session 5).

Then the finding is withheld (recorded with this explanation in ``alert_withheld``);
the rule asks again at its next check, and once the silence is no longer usual the
alert opens (delayed).  No active model, or one still learning (cold start): the
gate has no opinion and the rule decides alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from carecircle.ml.features.hourly import FEATURES
from carecircle.ml.models.routine import QMAX, RoutineModel
from carecircle.ml.registry.store import ModelRegistry
from carecircle.platform.alerts.gate import GATED_KINDS, PASS, Verdict
from carecircle.platform.alerts.kinds import AlertKind
from carecircle.platform.alerts.repository import AlertDraft, Conn

log = logging.getLogger(__name__)
GATE = "ml:routine-gate"
#: Withhold when what the rule found happened on at least this share of the person's days.
USUAL_SHARE = 0.10
#: A band that sent nothing at all for this long is out of range of the home receiver.
AWAY_AFTER = timedelta(minutes=20)


@dataclass(frozen=True)
class BandState:
    """The resident's own band: does one report here, and when was it last heard."""

    has_band: bool
    last_heard: datetime | None = None


def _local(now: datetime, tz: tzinfo) -> tuple[int, int]:
    local = now.astimezone(tz)
    return (1 if local.weekday() >= 5 else 0), local.hour


def _whole_hours(episode_start: datetime, now: datetime) -> int:
    """Whole clock hours from the first full hour of the silence to the start of the
    current hour (13:40 → 16:41 is 2: 14:00–16:00), as the hourly history counts them
    (its rows are UTC hours)."""
    start = episode_start.astimezone(UTC)
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return max(0, int((last - first).total_seconds() // 3600))


def judge(
    kind: str,
    model: RoutineModel | None,
    episode_start: datetime,
    now: datetime,
    tz: tzinfo,
    band: BandState,
    *,
    own_devices: bool = False,
    usual_share: float = USUAL_SHARE,
    model_ref: str = "",
) -> Verdict:
    """Pure: withhold the rule's ``kind`` finding for this resident at ``now``, or not.

    ``own_devices``: the rule judged the finding on the resident's own devices only
    (its draft's ``explanation.own_devices_only``)."""
    if kind not in GATED_KINDS:
        return PASS
    if band.has_band and (band.last_heard is None or now - band.last_heard > AWAY_AFTER):
        heard = band.last_heard.isoformat() if band.last_heard else None
        return Verdict(
            withhold=True,
            gate=GATE,
            reason="away: the band has been out of range of the home receiver",
            explanation={"check": "away", "band_last_heard": heard},
        )
    if kind != AlertKind.PROLONGED_INACTIVITY.value:
        return PASS  # missed_wakeup: the rule's own learned window decides
    if model is None or model.learning:
        return PASS
    wk, hour = _local(now, tz)
    if own_devices:
        table = getattr(model, "quiet_own", None)
        if table is None:
            return PASS  # a model without the own devices' history: the rule decides
        k = min(_whole_hours(episode_start, now), QMAX)
        share = float(table[wk, hour, k])
        where = "on their own devices (band, bed)"
    else:
        # The home's table counts a run by the hour that ends it (a nap 14:00–16:30 is
        # 2 at 15:00): the last complete hour and the silence's whole clock hours in it,
        # at least one.  Before session 7 it was looked up at the current hour with the
        # silence's length in hours: at 16:25 a nap since 13:55 asked how often 15:00 to
        # 17:00 had been quiet — an hour that has not ended yet.
        wk, hour = _local(now - timedelta(hours=1), tz)
        k = min(max(1, _whole_hours(episode_start, now)), QMAX)
        share = float(model.quiet[wk, hour, k])
        where = "at home"
    base = {"model": model_ref, "weekend": bool(wk), "hour": hour, "usual_share": usual_share}
    if share >= usual_share:
        return Verdict(
            withhold=True,
            gate=GATE,
            reason=(
                f"usual for this person: quiet {where} for {k} h or more at "
                f"{hour:02d}:00 on {100 * share:.0f}% of days"
            ),
            explanation={
                **base,
                "check": "routine",
                "quiet_hours": k,
                "share": share,
                "own_devices": own_devices,
            },
        )
    return PASS


def band_state(conn: Conn, resident_id: str) -> BandState:
    """The resident's own band in ``activity_state``: its step counter (reported every
    2 minutes while worn and in range) and its worn flag (with the battery, every 2
    minutes while in range, worn or not: a band off the wrist at home is not away).
    Its clock may run a little ahead.  Not filtered by time: the table keeps only the
    latest report."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE code = 'steps'), max(last_value_at) FROM activity_state "
        "WHERE resident_id = %s AND code IN ('steps', 'worn')",
        (resident_id,),
    ).fetchone()
    if row is None or not row[0]:
        return BandState(has_band=False)
    return BandState(has_band=True, last_heard=row[1])


class RoutineGate:
    """The alert gate of the routine models (entry point ``carecircle.alerts.gates``)."""

    name = GATE

    def __init__(self, registry: ModelRegistry, tz: tzinfo) -> None:
        self.registry = registry
        self.tz = tz

    def review(
        self, conn: Conn, draft: AlertDraft, episode_start: datetime, now: datetime
    ) -> Verdict:
        rid = draft.resident_id
        if rid is None:
            return PASS
        record = self.registry.active(conn, "routine", [rid], features=FEATURES).get(rid)
        model = self.registry.load(record) if record is not None else None
        if model is not None and not isinstance(model, RoutineModel):
            return PASS
        return judge(
            draft.kind,
            model,
            episode_start,
            now,
            self.tz,
            band_state(conn, rid),
            own_devices=bool(draft.explanation.get("own_devices_only")),
            model_ref=record.detector if record is not None else "",
        )


def make_gate(settings: Any) -> RoutineGate:
    return RoutineGate(ModelRegistry(settings.ml_registry_dir), ZoneInfo(settings.timezone))
