"""A small township for the monitoring-coverage tests (database, API, CLI).

``{p}-hh``: a couple — ``{p}-her`` with no device of her own, ``{p}-him`` with a band —
PIRs in the living room and bathroom, a front-door sensor, a smoke detector and an SOS
button.  ``{p}-hh2``: ``{p}-solo`` living alone, whose only device (a smoke detector)
is behind a gateway offline for two days.  ``{p}-nh``: a nursing home, ``{p}-a`` in
room 101 (a PIR there) and ``{p}-b`` in room 102, a corridor PIR.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from tests.platform.seed import household


def _device(
    db: psycopg.Connection[Any],
    did: str,
    gw: str,
    site: str,
    type_: str,
    room: str | None,
    *,
    resident: str | None = None,
    family: str = "zigbee2mqtt",
) -> None:
    db.execute(
        "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, "
        "native_id, type, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'online')",
        (did, gw, site, room, resident, family, did, type_),
    )


def seed_township(db: psycopg.Connection[Any], p: str, now: datetime) -> dict[str, str]:
    site = household(db, p)
    ids = {"hh": site, "her": f"{p}-her", "him": f"{p}-him", "township": f"{p}tw"}
    for rid in (ids["her"], ids["him"]):
        db.execute(
            "INSERT INTO residents (id, site_id, display_name) VALUES (%s, %s, 'X')", (rid, site)
        )
    gw = f"{p}-gw"
    db.execute(
        "INSERT INTO gateways (id, site_id, status, last_seen) VALUES (%s, %s, 'online', %s)",
        (gw, site, now),
    )
    for name, type_, room in (
        ("pir-liv", "motion_sensor", "liv"),
        ("pir-bath", "motion_sensor", "bath"),
        ("door", "door_sensor", "ent"),
        ("smoke", "smoke_detector", "kit"),
        ("sos", "sos_button", "liv"),
    ):
        _device(db, f"{p}-{name}", gw, site, type_, f"{p}-{room}")
    ids["sos"], ids["band"] = f"{p}-sos", f"{p}-band"
    _device(db, ids["band"], gw, site, "wearable", None, resident=ids["him"], family="wearable")

    ids["hh2"], ids["solo"] = f"{p}-hh2", f"{p}-solo"
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'household', %s, 'H2', 30.1, 120.1)",
        (ids["hh2"], f"{p}vi"),
    )
    db.execute(
        "INSERT INTO residents (id, site_id, display_name, lives_alone) VALUES (%s, %s, 'X', true)",
        (ids["solo"], ids["hh2"]),
    )
    db.execute(
        "INSERT INTO gateways (id, site_id, status, last_seen) VALUES (%s, %s, 'offline', %s)",
        (f"{p}-gw2", ids["hh2"], now - timedelta(days=2)),
    )
    ids["smoke2"] = f"{p}-smoke2"
    _device(db, ids["smoke2"], f"{p}-gw2", ids["hh2"], "smoke_detector", None)

    ids["nh"], ids["a"], ids["b"] = f"{p}-nh", f"{p}-a", f"{p}-b"
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'nursing_home', %s, 'NH', 30.1, 120.1)",
        (ids["nh"], f"{p}tw"),
    )
    for room, kind in (("101", "bedroom"), ("102", "bedroom"), ("cor", "corridor")):
        db.execute(
            "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, %s, %s)",
            (f"{p}-{room}", ids["nh"], kind, room),
        )
    for rid, room in ((ids["a"], "101"), (ids["b"], "102")):
        db.execute(
            "INSERT INTO residents (id, site_id, room_id, display_name) VALUES (%s, %s, %s, 'X')",
            (rid, ids["nh"], f"{p}-{room}"),
        )
    db.execute(
        "INSERT INTO gateways (id, site_id, status, last_seen) VALUES (%s, %s, 'online', %s)",
        (f"{p}-gwn", ids["nh"], now),
    )
    ids["pir-101"], ids["pir-cor"] = f"{p}-pir-101", f"{p}-pir-cor"
    _device(db, ids["pir-101"], f"{p}-gwn", ids["nh"], "motion_sensor", f"{p}-101")
    _device(db, ids["pir-cor"], f"{p}-gwn", ids["nh"], "motion_sensor", f"{p}-cor")
    return ids
