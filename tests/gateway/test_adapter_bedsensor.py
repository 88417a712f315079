"""Bed mat sensor adapter (docs/contract.md §1.4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from carecircle.common.contract import Code
from carecircle.gateway.adapters import bedsensor
from carecircle.gateway.registry import Registry

from .conftest import T0


def adapt(registry: Registry, channel: str, payload: bytes) -> bedsensor.AdapterResult:
    return bedsensor.adapt(f"bedsensor/bed-12/{channel}", payload, registry, T0, "bedsensor")


def test_occupied_with_vitals(registry: Registry) -> None:
    doc = {"ts": "2026-11-29T15:59:00+08:00", "occupied": True, "hr": 58, "rr": 14, "movement": 2}
    r = adapt(registry, "state", json.dumps(doc).encode())
    assert [(d.code, d.value) for d in r.drafts] == [
        (Code.BED_OCCUPANCY, 1.0),
        (Code.HEART_RATE, 58),
        (Code.RESPIRATORY_RATE, 14),
    ]
    assert r.drafts[0].attrs == {"movement": 2}
    assert r.drafts[0].ts == datetime(2026, 11, 29, 7, 59, tzinfo=UTC)


def test_empty_bed_has_no_vitals(registry: Registry) -> None:
    doc = {"ts": "2026-11-29T15:59:00+08:00", "occupied": False, "hr": 0, "rr": 0, "movement": 0}
    r = adapt(registry, "state", json.dumps(doc).encode())
    assert [(d.code, d.value) for d in r.drafts] == [(Code.BED_OCCUPANCY, 0.0)]
    assert not r.dead_letters


def test_availability_and_bad_input(registry: Registry) -> None:
    assert [d.value for d in adapt(registry, "availability", b"offline").drafts] == [0.0]
    assert adapt(registry, "state", b'{"ts": "yesterday", "occupied": true}').dead_letters
    assert adapt(registry, "state", b'{"ts": "2026-11-29T15:59:00", "occupied": true}').dead_letters
    assert adapt(registry, "state", b'{"occupied": 1}').dead_letters
    unknown = bedsensor.adapt("bedsensor/bed-99/state", b"{}", registry, T0, "bedsensor")
    assert "unknown bed sensor" in unknown.dead_letters[0].reason
