"""The routine models as a gate on the rules' inactivity and missed wake-up alerts.

A fixed rule raises ``prolonged_inactivity`` after 3 h of silence by day and
``missed_wakeup`` when nobody is up by 09:30.  For a person who routinely sleeps until
ten, or sits still for hours every afternoon, or is out every morning, those alerts
are false.  :func:`judge` (pure) says, from the resident's active routine model and
their band, whether what the rule found is normal for this person *now*:

* **away** — the resident wears a band and it has sent nothing at all (neither its
  step counter, sent every 2 minutes while worn, nor its worn flag, sent with the
  battery every 2 minutes while in range of the home receiver, worn or not) for
  :data:`AWAY_AFTER`: they are out, not silent at home;
* **inactivity** — a silence this long (in hours) at this hour happened on at least
  :data:`USUAL_SHARE` of the person's days (the routine model's quiet-run shares);
* **missed wake-up** — on at least :data:`USUAL_SHARE` of the person's days of this
  type they were not yet up at this hour.

Then the finding is withheld (recorded with this explanation in ``alert_withheld``);
the rule asks again at its next check, and once the silence is no longer usual the
alert opens (delayed).  No active model, or one still learning (cold start): the
gate has no opinion and the rule decides alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
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


def judge(
    kind: str,
    model: RoutineModel | None,
    episode_start: datetime,
    now: datetime,
    tz: tzinfo,
    band: BandState,
    *,
    usual_share: float = USUAL_SHARE,
    model_ref: str = "",
) -> Verdict:
    """Pure: withhold the rule's ``kind`` finding for this resident at ``now``, or not."""
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
    if model is None or model.learning:
        return PASS
    wk, hour = _local(now, tz)
    base = {"model": model_ref, "weekend": bool(wk), "hour": hour, "usual_share": usual_share}
    if kind == AlertKind.PROLONGED_INACTIVITY.value:
        quiet_h = max(0.0, (now - episode_start).total_seconds() / 3600)
        k = min(int(quiet_h), QMAX)
        share = float(model.quiet[wk, hour, k])
        if share >= usual_share:
            return Verdict(
                withhold=True,
                gate=GATE,
                reason=(
                    f"usual for this person: quiet at home for {k} h or more at "
                    f"{hour:02d}:00 on {100 * share:.0f}% of days"
                ),
                explanation={**base, "check": "routine", "quiet_hours": k, "share": share},
            )
        return PASS
    hist = model.wake[wk]
    total = float(hist.sum())
    share = float(hist[hour:].sum()) / total if total > 0 else 0.0
    if share >= usual_share:
        return Verdict(
            withhold=True,
            gate=GATE,
            reason=(
                f"usual for this person: not up yet at {hour:02d}:00 on {100 * share:.0f}% of days"
            ),
            explanation={**base, "check": "wake_up", "share": share},
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
            model_ref=record.detector if record is not None else "",
        )


def make_gate(settings: Any) -> RoutineGate:
    return RoutineGate(ModelRegistry(settings.ml_registry_dir), ZoneInfo(settings.timezone))
