"""Time bank (时间银行): volunteers bank the minutes they give and draw on them later.

Rule: when a volunteer's task ends as ``resolved`` or ``handed_over``, they are
credited the minutes from accepting to the end, rounded up, at least
``MIN_MINUTES`` and at most ``CAP_MINUTES`` per task.  Only volunteers are credited
(care workers, facility staff and doctors are paid; family help their own).  One
credit per task, enforced by the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]

MIN_MINUTES = 1
CAP_MINUTES = 240
CREDITED_KINDS = frozenset({"volunteer"})


def credit_minutes(accepted_at: datetime, ended_at: datetime) -> int:
    """The minutes a task earns (pure)."""
    elapsed = max(0.0, (ended_at - accepted_at).total_seconds())
    return max(MIN_MINUTES, min(CAP_MINUTES, math.ceil(elapsed / 60)))


def credit_task(conn: Conn, task_id: int, now: datetime) -> int | None:
    """Credit a finished task to its volunteer; returns the minutes, or None if not credited."""
    row = conn.execute(
        "SELECT t.responder_id, r.kind, t.accepted_at, COALESCE(t.resolved_at, t.handed_over_at), "
        "t.alert_id FROM tasks t JOIN responders r ON r.id = t.responder_id WHERE t.id = %s",
        (task_id,),
    ).fetchone()
    if row is None or row[1] not in CREDITED_KINDS or row[2] is None or row[3] is None:
        return None
    minutes = credit_minutes(row[2], row[3])
    inserted = conn.execute(
        "INSERT INTO time_bank (responder_id, task_id, minutes, credited_at, note) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (task_id) DO NOTHING RETURNING id",
        (row[0], task_id, minutes, now, f"alert {row[4]}"),
    ).fetchone()
    return minutes if inserted else None


@dataclass(frozen=True)
class Entry:
    task_id: int | None
    minutes: int
    credited_at: datetime
    note: str


@dataclass(frozen=True)
class Account:
    responder_id: str
    total_minutes: int
    tasks: int
    entries: list[Entry]

    def as_dict(self) -> dict[str, Any]:
        return {
            "responder_id": self.responder_id,
            "total_minutes": self.total_minutes,
            "total_hours": round(self.total_minutes / 60, 2),
            "tasks": self.tasks,
            "entries": [
                {
                    "task_id": e.task_id,
                    "minutes": e.minutes,
                    "credited_at": e.credited_at.isoformat(),
                    "note": e.note,
                }
                for e in self.entries
            ],
        }


def account(conn: Conn, responder_id: str) -> Account:
    rows = conn.execute(
        "SELECT task_id, minutes, credited_at, note FROM time_bank WHERE responder_id = %s "
        "ORDER BY credited_at, id",
        (responder_id,),
    ).fetchall()
    entries = [Entry(r[0], int(r[1]), r[2], str(r[3])) for r in rows]
    return Account(responder_id, sum(e.minutes for e in entries), len(entries), entries)


def balances(conn: Conn) -> list[tuple[str, int, int]]:
    """``(responder_id, minutes, tasks)`` for every volunteer with credit, most first."""
    rows = conn.execute(
        "SELECT responder_id, sum(minutes), count(*) FROM time_bank GROUP BY responder_id "
        "ORDER BY sum(minutes) DESC, responder_id"
    ).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]
