"""Alert rows in PostgreSQL: open-or-refresh, transitions, and the change notification.

Every change is committed with an ``alert_transitions`` row (who, when, from → to)
and a ``pg_notify('cc_alert', …)`` so dispatch, dashboards and other platform
processes learn of it within milliseconds.  The notification payload is JSON:
``{"id", "status", "kind", "severity", "site_id", "resident_id", "subject", "change"}``
with ``change`` one of ``opened``, ``refreshed``, ``refired`` (a refresh after a snooze
ran out), ``transition``, ``snoozed``, ``commented``, ``assigned``. Listeners must ignore
values they do not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from carecircle.common.errors import Conflict, NotFound
from carecircle.platform.alerts.lifecycle import (
    ACTIVE,
    TIMESTAMP_COLUMN,
    Outcome,
    Severity,
    Status,
    check_transition,
)

NOTIFY_CHANNEL = "cc_alert"
Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class AlertDraft:
    """What a detector decided: an alert of ``kind`` about ``subject`` should be active."""

    subject: str
    site_id: str
    kind: str
    severity: Severity
    detector: str
    at: datetime
    resident_id: str | None = None
    device_id: str | None = None
    message: str = ""
    source: str = "rule"
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertChange:
    id: int
    status: Status
    change: str  # opened | refreshed | transition


def _notify(conn: Conn, alert_id: int, change: str) -> None:
    conn.execute(
        """
        SELECT pg_notify(%s, json_build_object(
            'id', id, 'status', status, 'kind', kind, 'severity', severity,
            'site_id', site_id, 'resident_id', resident_id, 'subject', subject,
            'change', %s::text)::text)
        FROM alerts WHERE id = %s
        """,
        (NOTIFY_CHANNEL, change, alert_id),
    )


def open_or_refresh(conn: Conn, draft: AlertDraft, *, notify_refresh: bool = True) -> AlertChange:
    """Open an alert, or refresh the active one of the same (subject, kind).

    A refresh bumps ``occurrences`` and ``last_seen_at`` and raises the severity if
    the new draft is more severe; it never creates a second active alert.  A refresh
    after the alert's snooze ran out clears the snooze and is notified as ``refired``.
    ``notify_refresh=False`` keeps a plain refresh quiet (scheduled checks that
    confirm an open condition every minute); openings and re-firings always notify.
    Runs in its own transaction (or the caller's, if one is open).
    """
    with conn.transaction():
        row = conn.execute(
            """
            INSERT INTO alerts (subject, resident_id, site_id, device_id, kind, severity,
                                source, detector, message, explanation, opened_at, last_seen_at)
            VALUES (%(subject)s, %(resident_id)s, %(site_id)s, %(device_id)s, %(kind)s,
                    %(severity)s, %(source)s, %(detector)s, %(message)s, %(explanation)s,
                    %(at)s, %(at)s)
            ON CONFLICT (subject, kind) WHERE status NOT IN ('resolved', 'cancelled')
            DO UPDATE SET occurrences = alerts.occurrences + 1,
                          last_seen_at = GREATEST(alerts.last_seen_at, EXCLUDED.last_seen_at),
                          severity = CASE WHEN array_position(
                                  ARRAY['low','medium','high','critical'], EXCLUDED.severity)
                              > array_position(ARRAY['low','medium','high','critical'],
                                               alerts.severity)
                              THEN EXCLUDED.severity ELSE alerts.severity END,
                          snoozed_until = CASE WHEN alerts.snoozed_until <= EXCLUDED.last_seen_at
                              THEN NULL ELSE alerts.snoozed_until END,
                          updated_at = now()
            RETURNING id, status, (xmax = 0) AS inserted,
                      (SELECT a.snoozed_until FROM alerts a WHERE a.id = alerts.id) AS old_snooze
            """,
            {
                "subject": draft.subject,
                "resident_id": draft.resident_id,
                "site_id": draft.site_id,
                "device_id": draft.device_id,
                "kind": draft.kind,
                "severity": draft.severity.value,
                "source": draft.source,
                "detector": draft.detector,
                "message": draft.message,
                "explanation": Jsonb(draft.explanation),
                "at": draft.at,
            },
        ).fetchone()
        assert row is not None
        alert_id, status, inserted = int(row[0]), Status(row[1]), bool(row[2])
        refired = not inserted and row[3] is not None and row[3] <= draft.at
        change = "opened" if inserted else ("refired" if refired else "refreshed")
        if inserted:
            conn.execute(
                "INSERT INTO alert_transitions (alert_id, at, from_status, to_status, actor, note) "
                "VALUES (%s, %s, NULL, 'open', %s, %s)",
                (alert_id, draft.at, f"detector:{draft.detector}", draft.message),
            )
            _audit(
                conn,
                alert_id,
                f"detector:{draft.detector}",
                draft.at,
                "alert.open",
                {"kind": draft.kind, "subject": draft.subject, "severity": draft.severity.value},
            )
        if change != "refreshed" or notify_refresh:
            _notify(conn, alert_id, change)
    return AlertChange(alert_id, status, change)


def transition(
    conn: Conn,
    alert_id: int,
    target: Status,
    *,
    actor: str,
    at: datetime,
    note: str = "",
    outcome: Outcome | None = None,
) -> AlertChange:
    """Move an alert along its lifecycle, recording who did it; raises Conflict/NotFound."""
    with conn.transaction():
        row = conn.execute(
            "SELECT status FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        current = Status(row[0])
        check_transition(current, target)
        column = TIMESTAMP_COLUMN[target]
        conn.execute(
            f"UPDATE alerts SET status = %s, {column} = COALESCE({column}, %s), "  # noqa: S608
            "outcome = COALESCE(%s, outcome), updated_at = now() WHERE id = %s",
            (target.value, at, outcome.value if outcome else None, alert_id),
        )
        conn.execute(
            "INSERT INTO alert_transitions (alert_id, at, from_status, to_status, actor, note) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (alert_id, at, current.value, target.value, actor, note),
        )
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) "
            "VALUES (%s, %s, %s, 'alert', %s, %s)",
            (
                at,
                actor,
                f"alert.{target.value}",
                str(alert_id),
                Jsonb(
                    {
                        "from": current.value,
                        "note": note,
                        "outcome": outcome.value if outcome else None,
                    }
                ),
            ),
        )
        _notify(conn, alert_id, "transition")
    return AlertChange(alert_id, target, "transition")


def _audit(conn: Conn, alert_id: int, actor: str, at: datetime, action: str, detail: Any) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) "
        "VALUES (%s, %s, %s, 'alert', %s, %s)",
        (at, actor, action, str(alert_id), Jsonb(detail)),
    )


def _active_status(conn: Conn, alert_id: int) -> Status:
    row = conn.execute("SELECT status FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)).fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    status = Status(row[0])
    if status not in ACTIVE:
        raise Conflict(f"alert {alert_id} is already {status.value}")
    return status


def snooze(
    conn: Conn, alert_id: int, until: datetime | None, *, actor: str, at: datetime, note: str = ""
) -> AlertChange:
    """Hide an active alert until ``until`` (``None`` wakes it); its status stays.

    A repeat of its condition after the snooze runs out re-fires it.
    """
    if until is not None and until <= at:
        raise Conflict("a snooze must end in the future")
    with conn.transaction():
        status = _active_status(conn, alert_id)
        conn.execute(
            "UPDATE alerts SET snoozed_until = %s, updated_at = now() WHERE id = %s",
            (until, alert_id),
        )
        label = f"snoozed until {until.isoformat()}" if until else "snooze ended"
        conn.execute(
            "INSERT INTO alert_transitions (alert_id, at, from_status, to_status, actor, note) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (
                alert_id,
                at,
                status.value,
                status.value,
                actor,
                label + (f": {note}" if note else ""),
            ),
        )
        _audit(
            conn,
            alert_id,
            actor,
            at,
            "alert.snooze",
            {"until": until.isoformat() if until else None, "note": note},
        )
        _notify(conn, alert_id, "snoozed")
    return AlertChange(alert_id, status, "snoozed")


def comment(conn: Conn, alert_id: int, body: str, *, actor: str, at: datetime) -> int:
    """Add a note to an alert (any status); returns the comment id."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO alert_comments (alert_id, at, actor, body) "
            "SELECT id, %s, %s, %s FROM alerts WHERE id = %s RETURNING id",
            (at, actor, body, alert_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        _audit(conn, alert_id, actor, at, "alert.comment", {"comment_id": int(row[0])})
        _notify(conn, alert_id, "commented")
    return int(row[0])


def assign(conn: Conn, alert_id: int, responder_id: str, *, actor: str, at: datetime) -> None:
    """Record that ``responder_id`` was sent to an active alert (a manual dispatch)."""
    with conn.transaction():
        _active_status(conn, alert_id)
        try:
            conn.execute(
                "INSERT INTO alert_assignments (alert_id, responder_id, assigned_at, assigned_by) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (alert_id, responder_id, at, actor),
            )
        except psycopg.errors.ForeignKeyViolation as err:
            raise NotFound(f"responder {responder_id} not found") from err
        _audit(conn, alert_id, actor, at, "alert.assign", {"responder_id": responder_id})
        _notify(conn, alert_id, "assigned")


def get(conn: Conn, alert_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    return row


def parse_notification(payload: str) -> dict[str, Any]:
    data = json.loads(payload)
    assert isinstance(data, dict)
    return data
