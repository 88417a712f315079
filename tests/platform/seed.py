"""Small database seeds shared by platform tests."""

from __future__ import annotations

from typing import Any

import psycopg

ROOMS = (
    ("bed", "bedroom"),
    ("bath", "bathroom"),
    ("liv", "living_room"),
    ("ent", "entrance"),
    ("kit", "kitchen"),
)


def household(db: psycopg.Connection[Any], p: str) -> str:
    """Places ``{p}pf → {p}co → {p}tw → {p}vi``, household ``{p}-hh`` in the village and
    its rooms ``{p}-bed``, ``{p}-bath``, ``{p}-liv``, ``{p}-ent``, ``{p}-kit``.

    Returns the site id.
    """
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    site = f"{p}-hh"
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'household', %s, 'H', 30.1, 120.1)",
        (site, f"{p}vi"),
    )
    for name, kind in ROOMS:
        db.execute(
            "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, %s, %s)",
            (f"{p}-{name}", site, kind, name),
        )
    return site
