"""Reads for the monitoring-coverage report (:mod:`.coverage`): residents, installed
devices with their rooms and health, stored rules, and each site's township."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carecircle.platform.alerts import store
from carecircle.platform.alerts.config import GatewayOfflineRule, RuleBook, RuleInvalid
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.coverage import (
    GroupSummary,
    MonitoredDevice,
    MonitoredResident,
    ResidentMonitoring,
    assess_site,
    summarise,
)
from carecircle.platform.alerts.detectors.absence import gateway_offline
from carecircle.platform.alerts.kinds import AlertKind
from carecircle.platform.alerts.repository import Conn


@dataclass(frozen=True)
class MonitoringReport:
    at: datetime
    residents: list[ResidentMonitoring]
    summary: list[GroupSummary]

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "residents": [r.as_dict() for r in self.residents],
            "summary": [s.as_dict() for s in self.summary],
        }


def load_residents(conn: Conn, site_ids: Sequence[str]) -> list[MonitoredResident]:
    """Every resident of the sites (housemates are counted by :func:`.coverage.assess_site`)."""
    rows = conn.execute(
        "SELECT id, site_id, presence, presence_until, care_level, conditions, care_profile, "
        "room_id FROM residents WHERE site_id = ANY(%s) ORDER BY id",
        (list(site_ids),),
    ).fetchall()
    return [
        MonitoredResident(
            ResidentCtx(
                id=r[0],
                site_id=r[1],
                presence=r[2],
                presence_until=r[3],
                care_level=r[4],
                conditions=tuple(r[5] or ()),
                care_profile=dict(r[6] or {}),
            ),
            r[7],
        )
        for r in rows
    ]


def load_devices(
    conn: Conn, site_ids: Sequence[str], book: RuleBook, now: datetime
) -> list[MonitoredDevice]:
    """The sites' devices in service, each with its room kind and whether its gateway is
    offline now (the rules' :func:`~.detectors.absence.gateway_offline`)."""
    down: set[str] = set()
    for gw in store.gateway_states(conn, site_ids):
        try:
            rule = book.rule(AlertKind.GATEWAY_OFFLINE, site_id=gw.site_id)
        except RuleInvalid:
            rule = None
        if gateway_offline(
            gw, rule if isinstance(rule, GatewayOfflineRule) else GatewayOfflineRule(), now
        ):
            down.add(gw.id)
    rows = conn.execute(
        """
        SELECT d.id, d.site_id, d.type, d.family, d.resident_id, d.room_id, rm.kind,
               d.status, d.last_seen, d.power, d.offline_timeout_s, d.gateway_id
        FROM devices d LEFT JOIN rooms rm ON rm.id = d.room_id
        WHERE d.retired_at IS NULL AND d.site_id = ANY(%s)
        ORDER BY d.id
        """,
        (list(site_ids),),
    ).fetchall()
    return [
        MonitoredDevice(
            id=r[0],
            site_id=r[1],
            type=r[2],
            family=r[3],
            resident_id=r[4],
            room_id=r[5],
            room_kind=r[6],
            status=r[7],
            last_seen=r[8],
            power=r[9],
            offline_timeout_s=r[10],
            gateway_id=r[11],
            gateway_down=r[11] in down,
        )
        for r in rows
    ]


def townships(conn: Conn, site_ids: Sequence[str]) -> dict[str, str | None]:
    """Each site's township (its place or an ancestor at that level), if any."""
    rows = conn.execute(
        """
        SELECT s.id, (SELECT p.id FROM places p
                      WHERE p.id = ANY(cc_place_path(s.place_id)) AND p.level = 'township'
                      LIMIT 1)
        FROM sites s WHERE s.id = ANY(%s)
        """,
        (list(site_ids),),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def monitoring_report(
    conn: Conn,
    now: datetime,
    *,
    site_ids: Collection[str] | None = None,
    resident_ids: Collection[str] | None = None,
) -> MonitoringReport:
    """The report for the residents of ``site_ids`` (``None``: every site), limited to
    ``resident_ids`` when given (a caller's scope).  Housemates and own rooms are always
    counted over the whole site, as the rules count them."""
    if site_ids is None:
        sql = "SELECT DISTINCT site_id FROM residents"
        params: tuple[Any, ...] = ()
        if resident_ids is not None:
            sql += " WHERE id = ANY(%s)"
            params = (list(resident_ids),)
        sites = sorted(r[0] for r in conn.execute(sql, params).fetchall())
    else:
        sites = sorted(set(site_ids))
    book = RuleBook(store.load_rules(conn))
    residents = load_residents(conn, sites)
    results = assess_site(residents, load_devices(conn, sites, book, now), now, book=book)
    if resident_ids is not None:
        wanted = set(resident_ids)
        results = [r for r in results if r.resident_id in wanted]
    return MonitoringReport(now, results, summarise(results, townships(conn, sites)))
