"""Coverage of the 15-minute circle within a caller's scope (API and dashboard map).

The computation is dispatch's :func:`~carecircle.platform.dispatch.coverage.coverage_report`
with the dispatch service's policy, travel model and time zone; only the residents the
caller may see are counted (every responder who could come still counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from carecircle.platform.api.repo import Conn
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Principal
from carecircle.platform.dispatch.coverage import CoverageReport, coverage_report
from carecircle.platform.dispatch.service import DispatchService


@dataclass(frozen=True)
class ScopedCoverage:
    report: CoverageReport
    #: Responders the caller may see (others are not named in the answer).
    visible_responders: frozenset[str]

    @property
    def residents(self) -> int:
        return len(self.report.residents)

    @property
    def covered(self) -> int:
        return sum(r.covered(self.report.circle_s) for r in self.report.residents)

    @property
    def share(self) -> float:
        return self.report.share


def scoped(
    conn: Conn, p: Principal, service: DispatchService, at: datetime, *, by_hour: bool = False
) -> ScopedCoverage:
    residents = conn.execute(
        sql.SQL("SELECT r.id FROM residents r WHERE {}").format(scope.residents(p, "r"))
    ).fetchall()
    responders = conn.execute(
        sql.SQL("SELECT rp.id FROM responders rp WHERE {}").format(scope.responders(p, "rp"))
    ).fetchall()
    report = coverage_report(
        conn,
        service.estimator,
        service.tz,
        at,
        policy=service.policy,
        by_hour=by_hour,
        resident_ids=[str(r[0]) for r in residents],
    )
    return ScopedCoverage(report, frozenset(str(r[0]) for r in responders))
