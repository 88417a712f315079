"""Threshold rules with duration and repetition conditions (vitals and room climate).

Pure: the caller passes the window of readings (from the store, so the decision is
the same whichever ingest worker received which reading) and the time to judge at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

from carecircle.platform.alerts.config import ThresholdRule


@dataclass(frozen=True)
class Sample:
    time: datetime
    value: float


def crosses(value: float, threshold: float, direction: Literal["above", "below"]) -> bool:
    return value > threshold if direction == "above" else value < threshold


def window_needed(rule: ThresholdRule) -> timedelta:
    """How far back the store must be read to judge ``rule``."""
    recent = max(rule.duration_s + rule.max_gap_s, rule.within_s)
    return timedelta(seconds=recent + rule.baseline_s)


#: Readings needed before a person's own baseline is trusted (a band: ~1 h of wear).
MIN_BASELINE = 12


@dataclass(frozen=True)
class Verdict:
    fired: bool
    condition: str  # "duration", "repetitions" or ""
    explanation: dict[str, Any]


def evaluate_threshold(
    samples: Sequence[Sample],
    rule: ThresholdRule,
    direction: Literal["above", "below"],
    at: datetime,
    tz: tzinfo | None = None,
) -> Verdict:
    """Judge ``rule`` at ``at`` over ``samples`` (any order; those after ``at`` are ignored)."""
    if rule.months is not None and (tz is None or at.astimezone(tz).month not in rule.months):
        return Verdict(False, "", {"reason": "out of season"})
    pts = sorted((s for s in samples if s.time <= at), key=lambda s: s.time)
    if not pts:
        return Verdict(False, "", {})
    if rule.baseline_s:
        return _relative(pts, rule, direction, at, tz)
    base: dict[str, Any] = {
        "threshold": rule.threshold,
        "direction": direction,
        "last_value": pts[-1].value,
    }
    if rule.duration_s > 0 and crosses(pts[-1].value, rule.threshold, direction):
        # The run of crossing readings that ends with the latest one, without big gaps.
        start = pts[-1]
        prev_time = pts[-1].time
        for s in reversed(pts[:-1]):
            if not crosses(s.value, rule.threshold, direction):
                break
            if (prev_time - s.time).total_seconds() > rule.max_gap_s:
                break
            start = s
            prev_time = s.time
        lasted = (pts[-1].time - start.time).total_seconds()
        if lasted >= rule.duration_s:
            values = [s.value for s in pts if s.time >= start.time]
            return Verdict(
                True,
                "duration",
                {
                    **base,
                    "condition": f"{direction} {rule.threshold:g} for {rule.duration_s} s",
                    "since": start.time.isoformat(),
                    "lasted_s": lasted,
                    "extreme": max(values) if direction == "above" else min(values),
                },
            )
    if rule.repetitions > 0:
        since = pts[-1].time - timedelta(seconds=rule.within_s)
        hits = [s for s in pts if s.time >= since and crosses(s.value, rule.threshold, direction)]
        if len(hits) >= rule.repetitions:
            return Verdict(
                True,
                "repetitions",
                {
                    **base,
                    "condition": (
                        f"{direction} {rule.threshold:g} {rule.repetitions} times "
                        f"in {rule.within_s} s"
                    ),
                    "count": len(hits),
                    "since": hits[0].time.isoformat(),
                },
            )
    return Verdict(False, "", base)


def _relative(
    pts: list[Sample],
    rule: ThresholdRule,
    direction: Literal["above", "below"],
    at: datetime,
    tz: tzinfo | None,
) -> Verdict:
    """``rule.threshold`` is a change from the median of the ``baseline_s`` before the
    recent window (the run being judged is not part of its own baseline)."""
    recent = timedelta(seconds=max(rule.duration_s + rule.max_gap_s, rule.within_s))
    cut = pts[-1].time - recent
    old = sorted(s.value for s in pts if s.time < cut)
    if len(old) < MIN_BASELINE:
        return Verdict(False, "", {"reason": "no baseline yet", "baseline_readings": len(old)})
    n = len(old)
    median = old[n // 2] if n % 2 else (old[n // 2 - 1] + old[n // 2]) / 2
    level = median + rule.threshold if direction == "above" else median - rule.threshold
    absolute = rule.model_copy(update={"threshold": level, "baseline_s": 0})
    verdict = evaluate_threshold([s for s in pts if s.time >= cut], absolute, direction, at, tz)
    explanation = {
        **verdict.explanation,
        "baseline_median": round(median, 2),
        "change": rule.threshold,
        "threshold": round(level, 2),
    }
    return Verdict(verdict.fired, verdict.condition, explanation)
