"""CareBand wearable adapter (docs/contract.md §1.3)."""

from __future__ import annotations

import json
from datetime import timedelta

from carecircle.common.contract import Code
from carecircle.gateway.adapters import Bases, careband
from carecircle.gateway.pipeline import Normaliser
from carecircle.gateway.registry import Registry

from .conftest import T0

MAC = "A4C1380F2B7D"
TS = int((T0 - timedelta(seconds=1)).timestamp() * 1000)


def adapt(registry: Registry, channel: str, doc: object, mac: str = MAC) -> careband.AdapterResult:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return careband.adapt(f"careband/{mac}/{channel}", payload, registry, T0, "careband")


def test_telemetry_with_all_fields(registry: Registry) -> None:
    doc = {
        "mac": MAC,
        "ts": TS,
        "hr": 72,
        "spo2": 97,
        "skin_temp": 33.1,
        "steps": 12,
        "battery": 81,
        "worn": True,
    }
    r = adapt(registry, "telemetry", doc)
    got = {(d.kind.value, d.code.value): d.value for d in r.drafts}
    assert got == {
        ("reading", "heart_rate"): 72,
        ("reading", "spo2"): 97,
        ("reading", "skin_temperature"): 33.1,
        ("reading", "steps"): 12,
        ("status", "battery"): 81,
    }
    assert all(d.ts == T0 - timedelta(seconds=1) for d in r.drafts)
    assert r.drafts[0].binding.id == "dev-band"


def test_missing_fields_are_fine(registry: Registry) -> None:
    r = adapt(registry, "telemetry", {"mac": MAC, "ts": TS, "hr": 64})
    assert [d.code for d in r.drafts] == [Code.HEART_RATE]


def test_not_worn_drops_vitals_and_keeps_worn_on_status(registry: Registry) -> None:
    r = adapt(
        registry,
        "telemetry",
        {"mac": MAC, "ts": TS, "hr": 0, "spo2": 0, "battery": 80, "worn": False},
    )
    assert [d.code for d in r.drafts] == [Code.BATTERY]
    assert r.drafts[0].attrs == {"worn": False}
    assert not r.dead_letters


def test_alarms_fall_and_sos(registry: Registry) -> None:
    fall = adapt(registry, "alarm", {"mac": MAC, "ts": TS, "type": "fall", "confidence": 0.93})
    assert [(d.code, d.value, d.attrs["confidence"]) for d in fall.drafts] == [
        (Code.FALL, 1.0, 0.93)
    ]
    sos = adapt(registry, "alarm", {"mac": MAC, "ts": TS, "type": "sos"})
    assert [d.code for d in sos.drafts] == [Code.SOS]
    assert adapt(registry, "alarm", {"mac": MAC, "type": "tickle"}).dead_letters


def test_availability(registry: Registry) -> None:
    assert [d.value for d in adapt(registry, "availability", b"offline").drafts] == [0.0]
    assert [d.value for d in adapt(registry, "availability", b"online").drafts] == [1.0]


def test_bad_input_is_dead_lettered(registry: Registry) -> None:
    assert (
        "12 hex digits"
        in adapt(registry, "telemetry", {"hr": 70}, mac="nothex").dead_letters[0].reason
    )
    assert (
        "unknown careband"
        in adapt(registry, "telemetry", {"hr": 70}, mac="AABBCCDDEEFF").dead_letters[0].reason
    )
    assert (
        "differs"
        in adapt(registry, "telemetry", {"mac": "AABBCCDDEEFF", "hr": 70}).dead_letters[0].reason
    )
    n = Normaliser("gw-0001", Bases())
    out = n.process(
        f"careband/{MAC}/telemetry",
        json.dumps({"ts": TS, "hr": 900, "spo2": 140, "steps": 3}).encode(),
        registry,
        T0,
    )
    assert [e.payload.code for e in out.envelopes] == [Code.STEPS]
    reasons = " | ".join(d["reason"] for d in out.dead_letters)
    assert "900" in reasons and "140" in reasons
    drifted = n.process(
        f"careband/{MAC}/telemetry", json.dumps({"ts": 0, "hr": 70}).encode(), registry, T0
    )
    assert not drifted.envelopes and "implausible" in drifted.dead_letters[0]["reason"]
