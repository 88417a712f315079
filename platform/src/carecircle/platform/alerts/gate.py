"""Gates: detectors that may withhold (or delay) a rule's alert for one resident.

A fixed rule cannot know that a resident routinely sleeps until 09:30 or is out every
morning; a per-resident model can.  A *gate* is asked about every rule finding of a
gated kind (:data:`GATED_KINDS`) that would open a new alert, and answers with a
:class:`Verdict`: let it through, or withhold it with the reason (what is normal for
this person, or that they are not at home).  A withheld finding is recorded in
``alert_withheld`` with the gate's explanation and asked about again at the next check
while the rule still finds it: once the gate no longer withholds (the silence has
become unusual for this person) the alert opens, later — delayed, with the withheld
record's explanation on it.  The rules' own decisions are not changed.

Gates are entry points of the group ``carecircle.alerts.gates``: a factory
``make(settings) -> AlertGate``.  The ml component registers the routine-model gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Protocol

from psycopg.types.json import Jsonb

from carecircle.platform.alerts.kinds import AlertKind
from carecircle.platform.alerts.repository import AlertDraft, Conn

log = logging.getLogger(__name__)
GROUP = "carecircle.alerts.gates"
#: Rule kinds a gate is asked about: absence findings that depend on a person's routine.
GATED_KINDS: frozenset[str] = frozenset(
    {AlertKind.PROLONGED_INACTIVITY.value, AlertKind.MISSED_WAKEUP.value}
)


@dataclass(frozen=True)
class Verdict:
    """A gate's answer about one rule finding."""

    withhold: bool
    gate: str = ""
    reason: str = ""
    explanation: dict[str, Any] = field(default_factory=dict)


PASS = Verdict(withhold=False)


class AlertGate(Protocol):
    name: str

    def review(
        self, conn: Conn, draft: AlertDraft, episode_start: datetime, now: datetime
    ) -> Verdict: ...


def decide(verdicts: Sequence[Verdict]) -> Verdict:
    """Pure: the first gate that withholds decides; no gate withholding lets it through."""
    for v in verdicts:
        if v.withhold:
            return v
    return PASS


def released_draft(draft: AlertDraft, withheld: WithheldMark | None) -> AlertDraft:
    """Pure: the draft to open after a gate let it through; if it had been withheld,
    the explanation says since when and why."""
    if withheld is None:
        return draft
    note = {
        "withheld_from": withheld.first_at.isoformat(),
        "withheld_by": withheld.gate,
        "withheld_reason": withheld.explanation.get("reason", ""),
    }
    return replace(draft, explanation={**draft.explanation, "gate": note})


@dataclass(frozen=True)
class WithheldMark:
    id: int
    first_at: datetime
    gate: str
    explanation: dict[str, Any]


def review_all(
    gates: Sequence[AlertGate], conn: Conn, draft: AlertDraft, episode_start: datetime
) -> Verdict:
    """Ask every gate about a finding (a failing gate withholds nothing)."""
    verdicts: list[Verdict] = []
    for g in gates:
        try:
            verdicts.append(g.review(conn, draft, episode_start, draft.at))
        except Exception:
            log.exception(
                "gate %s failed on %s %s; not withheld", g.name, draft.kind, draft.subject
            )
    return decide(verdicts)


def record_withheld(
    conn: Conn, draft: AlertDraft, episode_start: datetime, verdict: Verdict
) -> None:
    """Insert or refresh the withheld record of this (subject, kind, episode)."""
    explanation = {**verdict.explanation, "reason": verdict.reason, "rule": draft.explanation}
    conn.execute(
        """
        INSERT INTO alert_withheld (subject, resident_id, site_id, kind, detector, gate,
                                    episode_start, first_at, last_seen_at, message, explanation)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (subject, kind, episode_start) DO UPDATE
        SET last_seen_at = GREATEST(alert_withheld.last_seen_at, EXCLUDED.last_seen_at),
            occurrences = alert_withheld.occurrences + 1,
            gate = EXCLUDED.gate, explanation = EXCLUDED.explanation
        """,
        (
            draft.subject,
            draft.resident_id,
            draft.site_id,
            draft.kind,
            draft.detector,
            verdict.gate,
            episode_start,
            draft.at,
            draft.at,
            draft.message,
            Jsonb(explanation),
        ),
    )


def withheld_mark(
    conn: Conn, subject: str, kind: str, episode_start: datetime
) -> WithheldMark | None:
    row = conn.execute(
        "SELECT id, first_at, gate, explanation FROM alert_withheld "
        "WHERE subject = %s AND kind = %s AND episode_start = %s AND released_alert_id IS NULL",
        (subject, kind, episode_start),
    ).fetchone()
    if row is None:
        return None
    return WithheldMark(int(row[0]), row[1], str(row[2]), dict(row[3] or {}))


def mark_released(conn: Conn, mark: WithheldMark, alert_id: int) -> None:
    conn.execute(
        "UPDATE alert_withheld SET released_alert_id = %s WHERE id = %s", (alert_id, mark.id)
    )


def load_gates(settings: Any) -> list[AlertGate]:
    """Every ``carecircle.alerts.gates`` entry point, built with the settings."""
    out: list[AlertGate] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            factory: Callable[[Any], AlertGate] = ep.load()
            out.append(factory(settings))
        except Exception:
            log.exception("alert gate %s could not be loaded; rules run without it", ep.name)
            continue
        log.info("alert gate %s loaded", ep.name)
    return out
