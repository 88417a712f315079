"""Simple typed records the evaluation works on: alerts, labelled truth, the period."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from carecircle.common.errors import ContractError


@dataclass(frozen=True)
class AlertRecord:
    kind: str
    resident_id: str | None
    time: datetime  # when the alert was raised (opened_at)
    source: str = "rule"  # rule | model
    last_seen: datetime | None = None  # last_seen_at (None: only ``time``)


@dataclass(frozen=True)
class TruthIncident:
    """One line of the simulator's ground-truth JSON Lines file (the pinned format)."""

    incident_id: str
    resident_id: str | None
    site_id: str
    kind: str
    benign: bool
    start: datetime
    end: datetime
    device_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TruthIncident:
        try:
            start = datetime.fromisoformat(str(obj["start"]).replace("Z", "+00:00"))
            end = datetime.fromisoformat(str(obj["end"]).replace("Z", "+00:00"))
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("start and end need a UTC offset")
            return cls(
                incident_id=str(obj["incident_id"]),
                resident_id=obj.get("resident_id"),
                site_id=str(obj["site_id"]),
                kind=str(obj["kind"]),
                benign=bool(obj["benign"]),
                start=start,
                end=end,
                device_id=obj.get("device_id"),
                detail=dict(obj.get("detail") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ContractError(f"ground-truth record is malformed: {err}") from err

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "resident_id": self.resident_id,
            "site_id": self.site_id,
            "device_id": self.device_id,
            "kind": self.kind,
            "benign": self.benign,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    residents: int

    @property
    def resident_days(self) -> float:
        return self.residents * (self.end - self.start).total_seconds() / 86400.0


def read_truth(path: Path) -> list[TruthIncident]:
    """Read a ground-truth JSON Lines file; a malformed line is a ContractError naming it."""
    out: list[TruthIncident] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ContractError(f"cannot read ground truth {path}: {err.strerror}") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ContractError(f"{path}:{number}: not JSON: {err.msg}") from err
        try:
            out.append(TruthIncident.from_json(obj))
        except ContractError as err:
            raise ContractError(f"{path}:{number}: {err}") from err
    return out


def write_truth(path: Path, incidents: Iterable[TruthIncident]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for incident in incidents:
            fh.write(json.dumps(incident.to_json()) + "\n")
