"""Typed inputs the detectors decide on (built from the store at the edges)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from typing import Any


@dataclass(frozen=True)
class ResidentCtx:
    id: str
    site_id: str
    presence: str = "home"
    presence_until: datetime | None = None
    care_level: str = "independent"
    conditions: tuple[str, ...] = ()
    care_profile: dict[str, Any] = field(default_factory=dict)

    def away(self, now: datetime) -> bool:
        """Away, in hospital or at day care right now (home checks are suppressed)."""
        if self.presence == "home":
            return False
        return self.presence_until is None or self.presence_until > now

    def where(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`RuleBook.params`."""
        return {
            "site_id": self.site_id,
            "resident_id": self.id,
            "care_level": self.care_level,
            "conditions": self.conditions,
            "care_profile": self.care_profile,
        }


def local_time(at: datetime, tz: tzinfo) -> time:
    return at.astimezone(tz).time()
