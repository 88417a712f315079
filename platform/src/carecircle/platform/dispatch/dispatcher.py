"""The dispatcher process: ``LISTEN cc_alert`` for new alerts, run offer timeouts and
escalation deadlines, deliver the notification outbox.

State lives in the database (dispatches, tasks with their deadlines, the outbox), so
a restart loses nothing: at start-up the dispatcher takes on active alerts it has
not seen and re-evaluates every pending deadline.  The clock is injected; tests step
the loop with :meth:`Dispatcher.step` and a ``ManualClock``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from carecircle.common.clock import Clock
from carecircle.common.errors import CareCircleError, NotFound
from carecircle.platform.alerts import repository as alerts_repo
from carecircle.platform.dispatch.notify.base import Notifier
from carecircle.platform.dispatch.notify.outbox import Resolver, RetryPolicy, deliver_due
from carecircle.platform.dispatch.service import DispatchService
from carecircle.platform.privacy.contacts import PhoneBook
from carecircle.platform.store import connect

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]


@dataclass
class StepReport:
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    ticked: int = 0
    delivered: int = 0
    failed: int = 0


class Dispatcher:
    def __init__(
        self,
        database_url: str,
        service: DispatchService,
        clock: Clock,
        notifiers: Mapping[str, Notifier],
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value object
        recover_window: timedelta = timedelta(hours=6),
        connect_timeout_s: int = 5,
        phone_book: Resolver | None = None,
    ) -> None:
        self._url = database_url
        self.service = service
        self._clock = clock
        self._notifiers = dict(notifiers)
        self._retry = retry
        #: opens SMS targets (``responder:<id>``) at delivery; plaintext-only by default
        self._phone_book: Resolver = phone_book or PhoneBook(None)
        self._recover_window = recover_window
        self._timeout = connect_timeout_s
        self._listen: Conn | None = None
        self._work: Conn | None = None

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> StepReport:
        """Connect, LISTEN, take on missed alerts and re-evaluate pending deadlines."""
        self._listen = connect(self._url, timeout_s=self._timeout, autocommit=True)
        self._listen.execute(f"LISTEN {alerts_repo.NOTIFY_CHANNEL}")
        self._work = connect(self._url, timeout_s=self._timeout, autocommit=True)
        for notifier in self._notifiers.values():
            start = getattr(notifier, "start", None)
            if callable(start):
                start()  # fail early when the broker is unreachable
        return self.recover()

    def close(self) -> None:
        for conn in (self._listen, self._work):
            if conn is not None:
                conn.close()
        self._listen = self._work = None
        for notifier in self._notifiers.values():
            notifier.close()

    def __enter__(self) -> Dispatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def work_conn(self) -> Conn:
        if self._work is None:
            raise CareCircleError("the dispatcher is not started")
        return self._work

    # --- work -------------------------------------------------------------------------

    def recover(self) -> StepReport:
        report = StepReport()
        now = self._clock.now()
        for alert_id in self.service.undispatched(self.work_conn, now - self._recover_window):
            self._open(alert_id, report)
        self._housekeeping(report)
        if report.opened:
            log.info("start-up: took on %s alerts missed while away", len(report.opened))
        return report

    def step(self, timeout_s: float = 1.0) -> StepReport:
        """Wait up to ``timeout_s`` for alert changes, handle them, then run timeouts and
        deliver due notifications."""
        if self._listen is None:
            raise CareCircleError("the dispatcher is not started")
        report = StepReport()
        notes = list(self._listen.notifies(timeout=timeout_s, stop_after=1))
        if notes:
            notes += list(self._listen.notifies(timeout=0.05))
        for note in notes:
            try:
                data = alerts_repo.parse_notification(note.payload)
                alert_id, change, status = int(data["id"]), data.get("change"), data.get("status")
            except (ValueError, KeyError, TypeError, AssertionError):
                log.warning("ignoring a malformed %s notification", alerts_repo.NOTIFY_CHANNEL)
                continue
            if change == "opened":
                self._open(alert_id, report)
            elif change == "transition" and status in ("resolved", "cancelled"):
                self._close(alert_id, report)
        self._housekeeping(report)
        return report

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Run until ``stop`` is set; reconnects (and recovers) when the database drops."""
        backoff = 1.0
        while not stop.is_set():
            try:
                if self._listen is None:
                    self.start()
                    backoff = 1.0
                self.step(poll_s)
            except psycopg.OperationalError as err:
                log.warning("database connection lost (%s); reconnecting in %.0f s", err, backoff)
                self._drop_connections()
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except CareCircleError as err:
                log.warning("dispatcher: %s; retrying in %.0f s", err, backoff)
                self._drop_connections()
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _drop_connections(self) -> None:
        for conn in (self._listen, self._work):
            if conn is not None:
                try:
                    conn.close()
                except psycopg.Error:
                    log.debug("closing a broken connection failed", exc_info=True)
        self._listen = self._work = None

    def _open(self, alert_id: int, report: StepReport) -> None:
        try:
            if self.service.open(self.work_conn, alert_id, self._clock.now()):
                report.opened.append(alert_id)
        except psycopg.OperationalError:
            raise
        except (CareCircleError, psycopg.Error):
            log.exception("dispatching alert %s failed", alert_id)

    def _close(self, alert_id: int, report: StepReport) -> None:
        try:
            if self.service.close(self.work_conn, alert_id, self._clock.now()):
                report.closed.append(alert_id)
        except NotFound:
            return  # not an alert dispatch took on
        except psycopg.OperationalError:
            raise
        except (CareCircleError, psycopg.Error):
            log.exception("closing the dispatch of alert %s failed", alert_id)

    def _housekeeping(self, report: StepReport) -> None:
        now = self._clock.now()
        try:
            report.ticked += self.service.tick(self.work_conn, now)
        except psycopg.OperationalError:
            raise
        except (CareCircleError, psycopg.Error):
            log.exception("dispatch timeouts failed")
        try:
            counts = deliver_due(
                self.work_conn, self._notifiers, now, self._retry, resolve=self._phone_book
            )
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            log.exception("delivering notifications failed")
            return
        report.delivered += counts["delivered"]
        report.failed += counts["failed"]
