"""Incidents and benign look-alikes, and their ground-truth lines (JSON Lines).

One line per incident, exactly the cross-component pin::

    {"incident_id": str, "resident_id": str|null, "site_id": str, "device_id": str|null,
     "kind": <alert kind or benign kind>, "benign": bool, "start": RFC3339,
     "end": RFC3339, "detail": {...}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from carecircle.device_sim.simtime import iso_utc

#: Incidents that concern one resident.
RESIDENT_KINDS = (
    "fall",
    "sos",
    "prolonged_inactivity",
    "missed_wakeup",
    "night_wandering",
    "bed_exit_not_returned",
    "tachycardia",
    "bradycardia",
    "low_spo2",
    "fever",
)
#: Incidents of the home or facility.
SITE_KINDS = ("smoke", "gas", "carbon_monoxide", "water_leak", "cold_room", "heat")
#: Incidents of one device or the gateway.
DEVICE_KINDS = ("device_offline", "low_battery", "gateway_offline")
BENIGN_KINDS = ("nap_in_chair", "family_visit", "wearable_removed", "away_from_home")
ALERT_KINDS = RESIDENT_KINDS + SITE_KINDS + DEVICE_KINDS
ALL_KINDS = ALERT_KINDS + BENIGN_KINDS

#: Expected incidents per resident-day (resident kinds, benign kinds) or per site-day
#: (site and device kinds) at ``incident_scale = 1``.  Real rates are far lower (a
#: fall is about once a year per elder); these are raised so that a simulated week
#: of a thousand homes holds enough of each kind to score a detector.
DEFAULT_RATES: dict[str, float] = {
    "fall": 0.006,
    "sos": 0.004,
    "prolonged_inactivity": 0.004,
    "missed_wakeup": 0.005,
    "night_wandering": 0.002,  # x15 with dementia
    "bed_exit_not_returned": 0.01,  # nursing homes
    "tachycardia": 0.003,
    "bradycardia": 0.002,
    "low_spo2": 0.003,  # x3 with COPD
    "fever": 0.003,
    "smoke": 0.002,
    "gas": 0.002,
    "carbon_monoxide": 0.006,  # only on cold days, homes with a CO detector
    "water_leak": 0.003,
    "cold_room": 0.008,  # only on cold days
    "heat": 0.008,  # only on hot days
    "device_offline": 0.01,
    "low_battery": 0.006,
    "gateway_offline": 0.01,
    "nap_in_chair": 0.06,
    "family_visit": 0.02,  # x3 at weekends
    "wearable_removed": 0.03,
}


@dataclass
class Incident:
    """One labelled interval of ground truth (times in epoch ms).

    ``detail`` keys starting with ``_`` steer the simulation (when a button is
    pressed, …) and are left out of the ground-truth line.
    """

    incident_id: str
    kind: str
    site_id: str
    start_ms: int
    end_ms: int
    resident_id: str | None = None
    device_id: str | None = None
    benign: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def overlaps(self, lo_ms: int, hi_ms: int) -> bool:
        return self.start_ms < hi_ms and self.end_ms > lo_ms

    def to_json(self) -> str:
        return json.dumps(
            {
                "incident_id": self.incident_id,
                "resident_id": self.resident_id,
                "site_id": self.site_id,
                "device_id": self.device_id,
                "kind": self.kind,
                "benign": self.benign,
                "start": iso_utc(self.start_ms),
                "end": iso_utc(self.end_ms),
                "detail": {k: v for k, v in self.detail.items() if not k.startswith("_")},
            },
            ensure_ascii=False,
            sort_keys=False,
            separators=(",", ":"),
        )


def sort_key(incident: Incident) -> tuple[int, str]:
    return (incident.start_ms, incident.incident_id)


def ground_truth_lines(incidents: Iterable[Incident]) -> list[str]:
    return [i.to_json() for i in sorted(incidents, key=sort_key)]


def count_by_kind(incidents: Iterable[Incident]) -> dict[str, int]:
    counts = dict.fromkeys(ALL_KINDS, 0)
    for i in incidents:
        counts[i.kind] = counts.get(i.kind, 0) + 1
    return counts
