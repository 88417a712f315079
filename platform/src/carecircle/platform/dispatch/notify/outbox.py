"""The notification outbox: enqueue in the dispatch transaction, deliver with bounded
exponential backoff, store every attempt.

Rows wait in ``notifications`` (status ``pending``, ``next_attempt_at``); ``deliver_due``
sends the due ones in parallel (an escalation reaches everyone at once), records an
``notification_attempts`` row per try, and marks them ``delivered`` or, after
``max_attempts`` or a non-retryable error, ``failed``.  A restart loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from carecircle.common.errors import CareCircleError
from carecircle.platform.dispatch.notify.base import DeliveryResult, Notification, Notifier

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 2.0
    cap_s: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        """Backoff after the ``attempts``-th failed attempt: base · 2^(attempts-1), capped."""
        return timedelta(seconds=min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)))


def enqueue(
    conn: Conn,
    *,
    channel: str,
    target: str,
    payload: dict[str, Any],
    now: datetime,
    alert_id: int | None = None,
    task_id: int | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO notifications (alert_id, task_id, channel, target, payload, created_at, "
        "next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (alert_id, task_id, channel, target, Jsonb(payload), now, now),
    ).fetchone()
    assert row is not None
    return int(row[0])


#: ``(conn, target) -> phone number or None`` (``privacy.contacts.PhoneBook``)
Resolver = Callable[[Conn, str], "str | None"]


def _resolved(
    conn: Conn, resolve: Resolver, n: Notification, failed: dict[int, DeliveryResult]
) -> Notification:
    if n.channel != "sms":
        return n
    try:
        number = resolve(conn, n.target)
    except CareCircleError as err:
        failed[n.id] = DeliveryResult(
            False, f"cannot open the number of {n.target}: {err}", retryable=False
        )
        return n
    if number is None:
        failed[n.id] = DeliveryResult(
            False, f"no phone number on file for {n.target}", retryable=False
        )
        return n
    return replace(n, target=number)


def _send(notifier: Notifier, n: Notification) -> DeliveryResult:
    try:
        return notifier.send(n)
    except Exception as err:  # a notifier bug must not stop the others
        log.exception("notifier %s failed on notification %s", notifier.channel, n.id)
        return DeliveryResult(False, f"{type(err).__name__}: {err}")


def deliver_due(
    conn: Conn,
    notifiers: Mapping[str, Notifier],
    now: datetime,
    retry: RetryPolicy = RetryPolicy(),
    *,
    limit: int = 100,
    parallel: int = 8,
    resolve: Resolver | None = None,
) -> dict[str, int]:
    """Send the due notifications; returns counts of delivered / retry / failed.

    ``resolve`` turns an SMS target into a number just before sending (SMS are queued to
    ``responder:<id>`` / ``family:<id>``, so no number is stored in ``notifications``);
    the number lives only in memory for the send."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, channel, target, payload, attempts FROM notifications "
            "WHERE status = 'pending' AND next_attempt_at <= %s "
            "ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
        if not rows:
            return {"delivered": 0, "retry": 0, "failed": 0}
        items = [
            (Notification(int(r[0]), str(r[1]), str(r[2]), dict(r[3])), int(r[4])) for r in rows
        ]

        unresolved: dict[int, DeliveryResult] = {}
        if resolve is not None:
            items = [(_resolved(conn, resolve, n, unresolved), a) for n, a in items]

        def run(item: tuple[Notification, int]) -> DeliveryResult:
            n = item[0]
            if n.id in unresolved:
                return unresolved[n.id]
            notifier = notifiers.get(n.channel)
            if notifier is None:
                return DeliveryResult(
                    False, f"no {n.channel} notifier is configured", retryable=False
                )
            return _send(notifier, n)

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items)))) as pool:
            results = list(pool.map(run, items))
        counts = {"delivered": 0, "retry": 0, "failed": 0}
        for (n, attempts), result in zip(items, results, strict=True):
            attempts += 1
            conn.execute(
                "INSERT INTO notification_attempts (notification_id, at, ok, error, detail) "
                "VALUES (%s, %s, %s, %s, %s)",
                (n.id, now, result.ok, result.error, result.detail),
            )
            if result.ok:
                status, next_at, counts_key = "delivered", now, "delivered"
            elif result.retryable and attempts < retry.max_attempts:
                status, next_at, counts_key = "pending", now + retry.delay(attempts), "retry"
            else:
                status, next_at, counts_key = "failed", now, "failed"
                log.warning(
                    "notification %s on %s failed for good after %s attempts: %s",
                    n.id,
                    n.channel,
                    attempts,
                    result.error,
                )
            counts[counts_key] += 1
            conn.execute(
                "UPDATE notifications SET status = %s, attempts = %s, next_attempt_at = %s, "
                "delivered_at = CASE WHEN %s THEN %s::timestamptz END, last_error = %s "
                "WHERE id = %s",
                (status, attempts, next_at, result.ok, now, result.error, n.id),
            )
    return counts
