"""Rule configuration: one pydantic model per rule kind, defaults by care profile, validation.

A rule is stored per scope (``global``, ``site`` or ``resident``) in ``alert_rules`` with
its full parameters.  The effective rule for a resident is the most specific row
(resident > site > global), else the built-in default for the resident's care profile,
with the resident's ``care_profile[<kind>]`` overrides applied on top of site, global
and built-in rules (a resident row wins over everything).

:func:`validate_rule` refuses a rule that cannot fire or contradicts itself, and
:func:`check_consistency` refuses a set of rules that contradict each other (e.g.
a bradycardia threshold at or above the tachycardia threshold), with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import time
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from carecircle.common.contract import Code, spec
from carecircle.common.errors import CareCircleError
from carecircle.platform.alerts.kinds import AlertKind

K = AlertKind
Scope = Literal["global", "site", "resident"]
RoomKind = Literal[
    "bedroom",
    "bathroom",
    "toilet",
    "kitchen",
    "living_room",
    "entrance",
    "corridor",
    "dining",
    "activity",
    "other",
]


class RuleInvalid(CareCircleError):
    """A rule was refused: it cannot fire, or it contradicts itself or another rule."""


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True


def _in_window(t: time, start: time, end: time) -> bool:
    """Is local time ``t`` in ``[start, end)``? Windows may wrap midnight (22:00–06:00)."""
    if start <= end:
        return start <= t < end
    return t >= start or t < end


class ThresholdRule(_Rule):
    """A value beyond ``threshold`` for ``duration_s`` and/or ``repetitions`` times in ``within_s``.

    * ``duration_s > 0``: every reading of the last ``duration_s`` is beyond the
      threshold, with no gap between readings longer than ``max_gap_s``
      ("HR > 120 for 5 minutes").
    * ``repetitions > 0``: at least that many readings beyond the threshold within
      ``within_s`` ("3 times in 10 minutes"); ``repetitions = 1`` fires on one reading.

    Either condition fires the rule.  ``months`` limits it to a season (local months).
    """

    threshold: float
    duration_s: int = Field(default=0, ge=0, le=86_400)
    repetitions: int = Field(default=0, ge=0, le=1000)
    within_s: int = Field(default=0, ge=0, le=86_400)
    max_gap_s: int = Field(default=180, gt=0, le=86_400)
    months: list[int] | None = None
    #: > 0: ``threshold`` is a rise (above) or fall (below) from the person's own median
    #: of this long before the judged run — for signals whose normal level differs from
    #: person to person and with the surroundings (wrist skin temperature).
    baseline_s: int = Field(default=0, ge=0, le=7 * 86_400)
    #: With ``baseline_s``: only a reading beyond this absolute value is worth judging.
    prefilter: float | None = None
    #: The same kind judged on another signal of the kind (see ``SIGNALS``), with its own
    #: conditions: fever on body temperature or on wrist skin temperature.
    by_code: dict[str, ThresholdRule] = Field(default_factory=dict)

    def for_code(self, code: Code, primary: Code) -> ThresholdRule | None:
        """The rule that judges ``code`` (``primary``: this one)."""
        return self if code is primary else self.by_code.get(code.value)

    def worth_reading(self, value: float, direction: Literal["above", "below"]) -> bool:
        """Does one reading justify reading the window from the store?"""
        if self.baseline_s:
            if self.prefilter is None:
                return True
            return value > self.prefilter if direction == "above" else value < self.prefilter
        return value > self.threshold if direction == "above" else value < self.threshold

    @model_validator(mode="after")
    def _self_consistent(self) -> ThresholdRule:
        if any(sub.by_code for sub in self.by_code.values()):
            raise ValueError("a by_code rule cannot have its own by_code")
        if self.baseline_s and self.threshold <= 0:
            raise ValueError("with baseline_s the threshold is a change: it must be > 0")
        if self.duration_s == 0 and self.repetitions == 0:
            raise ValueError(
                "duration_s and repetitions are both 0: the rule has no condition; "
                "set duration_s (e.g. 300) or repetitions (1 fires on a single reading)"
            )
        if self.repetitions > 1 and self.within_s == 0:
            raise ValueError(f"repetitions={self.repetitions} needs a window within_s > 0")
        if self.months is not None:
            if not self.months:
                raise ValueError("months is empty: the rule could never fire")
            if any(not 1 <= m <= 12 for m in self.months):
                raise ValueError("months are numbered 1-12")
        return self


def _day_limits() -> dict[RoomKind, int]:
    # last seen at the entrance: most likely gone out, so allow an outing
    return {"bathroom": 3600, "toilet": 3600, "bedroom": 4 * 3600, "entrance": 8 * 3600}


def _night_limits() -> dict[RoomKind, int]:
    return {"bathroom": 3600, "toilet": 3600, "bedroom": 12 * 3600, "entrance": 12 * 3600}


def _entrance() -> list[RoomKind]:
    return ["entrance"]


class InactivityRule(_Rule):
    """Too long since the last activity, with a limit that depends on where it was.

    The limit is chosen from the room kind of the resident's last activity and whether
    that activity happened at night (local time): long stillness in the bedroom at night
    is normal, in the bathroom it is not.
    """

    night_start: time = time(21, 0)
    night_end: time = time(7, 0)
    default_day_s: int = Field(default=3 * 3600, gt=0)
    default_night_s: int = Field(default=6 * 3600, gt=0)
    day_s: dict[RoomKind, int] = Field(default_factory=_day_limits)
    night_s: dict[RoomKind, int] = Field(default_factory=_night_limits)

    @model_validator(mode="after")
    def _check(self) -> InactivityRule:
        if self.night_start == self.night_end:
            raise ValueError("night_start equals night_end: the night window is empty")
        for name, limits in (("day_s", self.day_s), ("night_s", self.night_s)):
            for room, seconds in limits.items():
                if seconds <= 0:
                    raise ValueError(f"{name}.{room} must be a positive number of seconds")
        return self

    def limit_for(self, room_kind: str | None, local_time: time) -> int:
        night = _in_window(local_time, self.night_start, self.night_end)
        table: dict[str, int] = {
            str(k): v for k, v in (self.night_s if night else self.day_s).items()
        }
        default = self.default_night_s if night else self.default_day_s
        return table.get(room_kind or "", default)


class WindowRule(_Rule):
    """A local-time window ``[start, end)``; may wrap midnight."""

    start: time
    end: time

    @model_validator(mode="after")
    def _window(self) -> WindowRule:
        if self.start == self.end:
            raise ValueError("the window starts when it ends: it is empty")
        return self

    def contains(self, t: time) -> bool:
        return _in_window(t, self.start, self.end)


class MissedWakeupRule(WindowRule):
    """No activation in ``rooms`` between ``start`` and ``end`` (checked after ``end``).

    ``rooms=None`` counts activity in any room except the bedroom; getting out of bed
    (bed occupancy becoming 0) counts when ``count_bed_exit``.
    """

    start: time = time(6, 0)
    end: time = time(9, 30)
    rooms: list[RoomKind] | None = None
    count_bed_exit: bool = True
    #: Last seen at the entrance before the window and nothing since: presumed out
    #: (staying with family without the presence flag set); no alert.
    skip_if_out: bool = True
    #: Evaluate for this long after ``end``; later, the window is over for the day.
    grace_s: int = Field(default=3 * 3600, gt=0, le=86_400)
    #: Learn each resident's window from their own rise times (detectors/wakeup.py;
    #: docs/alerts.md, "Missed wake-up: a window per resident").  ``start``/``end``
    #: are the window until ``learn_min_days`` of the last ``learn_days`` are known,
    #: and always when set for the resident (care profile, resident rule).
    learn: bool = True
    learn_days: int = Field(default=14, ge=1, le=60)
    learn_min_days: int = Field(default=3, ge=1, le=60)
    #: Until this many rises are known, a learned window ends no later than ``end``.
    learn_full_days: int = Field(default=7, ge=1, le=60)
    #: End: this many robust standard deviations after the usual rise time ...
    learn_spread_k: float = Field(default=3.0, gt=0, le=10)
    #: ... but not sooner than this nor later than that after it.
    learn_margin_min_s: int = Field(default=90 * 60, gt=0, le=12 * 3600)
    learn_margin_max_s: int = Field(default=150 * 60, gt=0, le=12 * 3600)
    #: Start: this long before the usual rise time.
    learn_lead_s: int = Field(default=30 * 60, ge=0, le=6 * 3600)
    #: A learned window lies within these local times; rises are looked for in them.
    learn_earliest: time = time(4, 0)
    learn_latest: time = time(12, 0)
    #: The usual wake-up time stated at intake (``care_profile.usual_wake_time``) is the
    #: window until ``learn_min_days`` own rises are known: from ``learn_lead_s`` before
    #: it until this long after it (a stated time is rounded and may be off by half an
    #: hour; a resident varies by 12–30 min a day).
    prior_margin_s: int = Field(default=120 * 60, gt=0, le=12 * 3600)

    @model_validator(mode="after")
    def _rooms(self) -> MissedWakeupRule:
        if self.rooms is not None and not self.rooms and not self.count_bed_exit:
            raise ValueError("no rooms and count_bed_exit=false: nothing could count as waking")
        if self.start > self.end:
            raise ValueError("a wake-up window must not wrap midnight (start after end)")
        if self.learn_min_days > self.learn_days:
            raise ValueError("learn_min_days exceeds learn_days: the window could never be learned")
        if self.learn_margin_min_s > self.learn_margin_max_s:
            raise ValueError("learn_margin_min_s exceeds learn_margin_max_s")
        if self.learn_earliest >= self.learn_latest:
            raise ValueError("learn_earliest is not before learn_latest: no room for a window")
        return self


class BedExitRule(WindowRule):
    """Nobody back in bed ``max_out_s`` after leaving it, within the night window."""

    start: time = time(22, 0)
    end: time = time(6, 0)
    max_out_s: int = Field(default=45 * 60, gt=0, le=12 * 3600)


class NightWanderingRule(WindowRule):
    """A door in ``rooms`` opened during the night window (first activation in a window)."""

    start: time = time(23, 0)
    end: time = time(5, 0)
    rooms: list[RoomKind] = Field(default_factory=_entrance)

    @model_validator(mode="after")
    def _rooms(self) -> NightWanderingRule:
        if not self.rooms:
            raise ValueError("rooms is empty: no door could raise it")
        return self


class DeviceOfflineRule(_Rule):
    """Per device: silence longer than its ``offline_timeout_s`` (or status offline).

    ``battery_min_timeout_s``/``mains_min_timeout_s`` raise a too-short provisioned
    timeout to a floor by power source; ``clear_after_s`` is the delayed clear.

    ``min_offline_s``: no device is called offline before it has been silent this long,
    even when its bridge or gateway reports it offline — radio links drop for minutes
    (Zigbee), and the answer to a dead sensor is a visit, not a page.
    ``wearable_min_timeout_s``: a band is out of range whenever its wearer is out
    (outings, day care, a night at the family's); only a band silent this long is
    called offline.
    """

    battery_min_timeout_s: int = Field(default=0, ge=0)
    mains_min_timeout_s: int = Field(default=0, ge=0)
    min_offline_s: int = Field(default=3600, ge=0)
    wearable_min_timeout_s: int = Field(default=24 * 3600, ge=0)
    #: A band is called offline only if the home showed activity from this long after
    #: its last report (someone is at home, the band is not heard): silent band and
    #: quiet home is the wearer gone out with it (a night at the family's) ...
    wearable_home_activity_s: int = Field(default=1800, ge=0)
    #: ... and at least this many activations of its motion sensors since then.
    wearable_home_activations: int = Field(default=5, ge=0)
    #: A band whose wearer lives with others: their movements say nothing about the
    #: wearer being at home, so it is called offline only after this long.
    wearable_shared_home_timeout_s: int = Field(default=48 * 3600, ge=0)
    clear_after_s: int = Field(default=600, ge=0)


class LowBatteryRule(_Rule):
    """``below_pct`` for sensors whose battery is replaced; a band, recharged by its
    wearer every day or two, only when nearly flat (``wearable_below_pct``): at 15 %
    it still has most of a day, and its wearer charges it in the evening."""

    below_pct: float = Field(default=15, gt=0, le=100)
    clear_at_pct: float = Field(default=25, gt=0, le=100)
    wearable_below_pct: float = Field(default=5, gt=0, le=100)

    @model_validator(mode="after")
    def _hysteresis(self) -> LowBatteryRule:
        if self.clear_at_pct < max(self.below_pct, self.wearable_below_pct):
            raise ValueError("clear_at_pct is below below_pct: the alert would clear while low")
        return self


class GatewayOfflineRule(_Rule):
    timeout_s: int = Field(default=300, gt=0)
    clear_after_s: int = Field(default=300, ge=0)


class ImmediateRule(_Rule):
    """SOS, fall, smoke, gas, CO, water leak: on every activation. Can be disabled per site."""


class FallRule(ImmediateRule):
    """A fall alarm raises an alert at once, unless its ``confidence`` is below
    ``min_confidence``: such an alarm is held until the band's next reports say whether
    it is still on the wrist (``worn_check_s``; docs/alerts.md, "Fall: confidence and
    the worn check").  Worn (vitals, ``worn: true``) or silent → the fall is raised;
    off the wrist → it was the band that fell, no alert.  Alarms without a confidence
    (SOS pendants, other detectors) are always raised at once.
    """

    min_confidence: float = Field(default=0.7, ge=0, le=1)
    worn_check_s: int = Field(default=600, gt=0, le=3600)


#: Primary code and direction of each threshold kind (its rule's top-level fields).
SIGNAL: Final[dict[AlertKind, tuple[Code, Literal["above", "below"]]]] = {
    K.TACHYCARDIA: (Code.HEART_RATE, "above"),
    K.BRADYCARDIA: (Code.HEART_RATE, "below"),
    K.LOW_SPO2: (Code.SPO2, "below"),
    K.FEVER: (Code.BODY_TEMPERATURE, "above"),
    K.COLD_ROOM: (Code.ROOM_TEMPERATURE, "below"),
    K.HEAT: (Code.ROOM_TEMPERATURE, "above"),
}
#: Other codes a kind may be judged on, each with its own rule in ``by_code``: a band
#: measures wrist skin temperature, not body temperature.
EXTRA_SIGNALS: Final[dict[AlertKind, tuple[Code, ...]]] = {
    K.FEVER: (Code.SKIN_TEMPERATURE,),
}
#: Every (kind, code, direction) the engine watches.
SIGNALS: Final[tuple[tuple[AlertKind, Code, Literal["above", "below"]], ...]] = tuple(
    (k, c, d) for k, (primary, d) in SIGNAL.items() for c in (primary, *EXTRA_SIGNALS.get(k, ()))
)
VITAL_KINDS: Final = frozenset({K.TACHYCARDIA, K.BRADYCARDIA, K.LOW_SPO2, K.FEVER})
ENVIRONMENT_KINDS: Final = frozenset({K.COLD_ROOM, K.HEAT})

RULE_MODELS: Final[dict[AlertKind, type[_Rule]]] = {
    **{k: ImmediateRule for k in (K.SOS, K.SMOKE, K.GAS, K.CARBON_MONOXIDE, K.WATER_LEAK)},
    K.FALL: FallRule,
    **{k: ThresholdRule for k in SIGNAL},
    K.PROLONGED_INACTIVITY: InactivityRule,
    K.MISSED_WAKEUP: MissedWakeupRule,
    K.BED_EXIT_NOT_RETURNED: BedExitRule,
    K.NIGHT_WANDERING: NightWanderingRule,
    K.DEVICE_OFFLINE: DeviceOfflineRule,
    K.LOW_BATTERY: LowBatteryRule,
    K.GATEWAY_OFFLINE: GatewayOfflineRule,
}

_BASE_DEFAULTS: Final[dict[AlertKind, dict[str, Any]]] = {
    K.TACHYCARDIA: {"threshold": 120, "duration_s": 300, "repetitions": 3, "within_s": 600},
    K.BRADYCARDIA: {"threshold": 40, "duration_s": 300, "repetitions": 3, "within_s": 600},
    K.LOW_SPO2: {"threshold": 90, "duration_s": 300, "repetitions": 3, "within_s": 900},
    K.FEVER: {
        "threshold": 38.0,
        "repetitions": 2,
        "within_s": 3600,
        "by_code": {
            # wrist skin temperature: 1.5 °C above the wearer's own median of the last
            # day, for 30 min (band readings every ~4 min); docs/alerts.md, "Fever"
            "skin_temperature": {
                "threshold": 1.5,
                "baseline_s": 86_400,
                "prefilter": 34.5,
                "duration_s": 1800,
                "max_gap_s": 600,
            }
        },
    },
    K.COLD_ROOM: {
        # unheated homes of the deployment region sit at 9-14 °C on winter nights
        # (docs/alerts.md, "Cold room"); 8 °C for 30 min is a heating failure or worse.
        # Heated homes and nursing homes set their site's rule higher (e.g. 16).
        "threshold": 8.0,
        "duration_s": 1800,
        "max_gap_s": 900,
        "months": [11, 12, 1, 2, 3],
    },
    K.HEAT: {"threshold": 32.0, "duration_s": 1800, "max_gap_s": 900},
}


def default_params(
    kind: AlertKind, care_level: str = "independent", conditions: Sequence[str] = ()
) -> dict[str, Any]:
    """Built-in parameters of ``kind`` for a care profile (care level and conditions)."""
    params = dict(_BASE_DEFAULTS.get(kind, {}))
    conds = set(conditions)
    if kind is K.LOW_SPO2 and "copd" in conds:
        params["threshold"] = 88  # chronic lung disease: lower baseline saturation
    if kind is K.BRADYCARDIA and "heart_disease" in conds:
        params["threshold"] = 45
    if kind is K.PROLONGED_INACTIVITY and (care_level == "dependent" or "dementia" in conds):
        params["default_day_s"] = 9000  # 2.5 h
    if kind is K.BED_EXIT_NOT_RETURNED and "dementia" in conds:
        params["max_out_s"] = 30 * 60
    return params


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_kind(kind: str) -> AlertKind:
    try:
        k = AlertKind(kind)
    except ValueError as err:
        raise RuleInvalid(f"unknown alert kind {kind!r}") from err
    if k not in RULE_MODELS:
        raise RuleInvalid(f"{kind!r} is raised by models, not configurable rules")
    return k


def validate_rule(kind: AlertKind | str, params: Mapping[str, Any]) -> _Rule:
    """Parse and check one rule; raise :class:`RuleInvalid` with the reason if refused."""
    k = parse_kind(str(kind))
    model = RULE_MODELS[k]
    merged = {**_BASE_DEFAULTS.get(k, {}), **params}
    try:
        rule = model.model_validate(merged)
    except ValidationError as err:
        raise RuleInvalid(f"{k.value}: {_reason(err)}") from err
    if isinstance(rule, ThresholdRule):
        code, direction = SIGNAL[k]
        allowed = {c.value for c in EXTRA_SIGNALS.get(k, ())}
        for name in rule.by_code:
            if name not in allowed:
                raise RuleInvalid(
                    f"{k.value}: by_code {name!r} is not a signal of this kind"
                    f" (allowed: {', '.join(sorted(allowed)) or 'none'})"
                )
        _check_range(k, code, direction, rule)
        for name, sub in rule.by_code.items():
            _check_range(k, Code(name), direction, sub)
    return rule


def _check_range(
    k: AlertKind, code: Code, direction: Literal["above", "below"], rule: ThresholdRule
) -> None:
    if rule.baseline_s:
        return  # a change from the person's own level: any level is possible
    s = spec(code)
    lo, hi = s.minimum, s.maximum
    if direction == "above" and hi is not None and rule.threshold >= hi:
        raise RuleInvalid(
            f"{k.value}: {code.value} above {rule.threshold:g} can never happen "
            f"(possible values end at {hi:g} {s.unit})"
        )
    if direction == "below" and lo is not None and rule.threshold <= lo:
        raise RuleInvalid(
            f"{k.value}: {code.value} below {rule.threshold:g} can never happen "
            f"(possible values start at {lo:g} {s.unit})"
        )


def check_consistency(rules: Mapping[AlertKind, _Rule]) -> list[str]:
    """Contradictions between rules that apply together; empty when consistent."""
    problems = []
    pairs = [(K.BRADYCARDIA, K.TACHYCARDIA), (K.COLD_ROOM, K.HEAT)]
    for low_kind, high_kind in pairs:
        low, high = rules.get(low_kind), rules.get(high_kind)
        if (
            isinstance(low, ThresholdRule)
            and isinstance(high, ThresholdRule)
            and low.enabled
            and high.enabled
            and low.threshold >= high.threshold
        ):
            problems.append(
                f"{low_kind.value} threshold {low.threshold:g} is not below the "
                f"{high_kind.value} threshold {high.threshold:g}: a value could be both"
            )
    return problems


class RuleRow(BaseModel):
    """One stored rule."""

    model_config = ConfigDict(frozen=True)

    scope: Scope
    scope_id: str | None
    kind: AlertKind
    params: dict[str, Any]
    enabled: bool = True


class RuleBook:
    """All stored rules, resolved per resident or site (pure; built from the table)."""

    def __init__(self, rows: Sequence[RuleRow]) -> None:
        self._rows: dict[tuple[str, str | None, AlertKind], RuleRow] = {
            (r.scope, r.scope_id, r.kind): r for r in rows
        }
        self._memo: dict[tuple[AlertKind, str | None, str | None], _Rule | None] = {}

    def params(
        self,
        kind: AlertKind,
        *,
        site_id: str | None = None,
        resident_id: str | None = None,
        care_level: str = "independent",
        conditions: Sequence[str] = (),
        care_profile: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Effective parameters and enabled flag of ``kind`` for a resident/site."""
        row = self._rows.get(("resident", resident_id, kind)) if resident_id else None
        if row is not None:
            return dict(row.params), row.enabled
        base = (self._rows.get(("site", site_id, kind)) if site_id else None) or self._rows.get(
            ("global", None, kind)
        )
        params = dict(base.params) if base else default_params(kind, care_level, conditions)
        enabled = base.enabled if base else True
        override = (care_profile or {}).get(kind.value)
        if isinstance(override, Mapping):
            params.update({k: v for k, v in override.items() if k != "enabled"})
            if "enabled" in override:
                enabled = bool(override["enabled"])
        return params, enabled

    def set_for_resident(
        self,
        kind: AlertKind,
        fields: Sequence[str],
        *,
        resident_id: str | None = None,
        care_profile: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> bool:
        """Does a resident rule row or the care profile set any of ``fields`` of ``kind``?"""
        row = self._rows.get(("resident", resident_id, kind)) if resident_id else None
        override = (care_profile or {}).get(kind.value)
        return any(
            (row is not None and f in row.params)
            or (isinstance(override, Mapping) and f in override)
            for f in fields
        )

    def rule(self, kind: AlertKind, **where: Any) -> _Rule | None:
        """The effective validated rule, or ``None`` when disabled; raises :class:`RuleInvalid`.

        Memoised per (kind, site, resident): a book is rebuilt when rules change.
        """
        key = (kind, where.get("site_id"), where.get("resident_id"))
        if key in self._memo:
            return self._memo[key]
        params, enabled = self.params(kind, **where)
        rule = validate_rule(kind, params) if enabled else None
        result = rule if rule is not None and rule.enabled else None
        self._memo[key] = result
        return result
