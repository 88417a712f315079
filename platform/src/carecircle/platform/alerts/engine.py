"""The alert engine: implements the ingest ``HandOff`` and raises alerts as data arrives.

``AlertEngine.on_committed(items)`` is called by each ingest worker after a batch
commits, with only the newly stored envelopes.  It

1. folds activity (motion, doors, bed, bathroom, steps, buttons) into ``activity_state``
   for the scheduled absence checks (one ``executemany`` per batch);
2. raises immediate alerts (SOS, fall, smoke, gas, CO, water leak), a watched door
   opened at night, and a device reporting itself offline;
3. judges vitals and room-climate threshold rules.  A duration/repetition window is
   never kept in worker memory: readings of one resident are split across ingest
   workers by the shared subscription.  When a reading crosses a threshold the engine
   reads that resident's (or room sensor's) recent readings of the code from the store
   (``readings_resident_code_time_idx``) and judges the window purely.  Readings are
   committed before the hand-off, so for any two readings the worker that commits last
   sees both: the rule fires exactly when it should, and two workers firing together
   only refresh the one active alert.

It never raises: failures are logged and counted in :attr:`AlertEngine.stats`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal, TypeVar

import psycopg

from carecircle.common.clock import Clock, SystemClock
from carecircle.common.contract import Code, Kind
from carecircle.platform.alerts import repository, store
from carecircle.platform.alerts.config import (
    ENVIRONMENT_KINDS,
    SIGNAL,
    SIGNALS,
    VITAL_KINDS,
    FallRule,
    NightWanderingRule,
    RuleBook,
    RuleInvalid,
    ThresholdRule,
    _Rule,
)
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.immediate import (
    evaluate_immediate,
    evaluate_night_door,
    fall_confidence,
    held_for_worn_check,
    immediate_kind,
)
from carecircle.platform.alerts.detectors.threshold import (
    evaluate_threshold,
    window_needed,
)
from carecircle.platform.alerts.kinds import (
    ACTIVITY_CODES,
    CRITICAL,
    IMMEDIATE,
    SEVERITY,
    AlertKind,
    is_presence,
)
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.alerts.repository import AlertDraft, Conn
from carecircle.platform.ingest.items import EnvelopeView

log = logging.getLogger(__name__)
T = TypeVar("T")
_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}
#: ``SIGNALS`` by code: the threshold kinds a reading of that code can feed.
_SIGNALS_BY_CODE: dict[Code, tuple[tuple[AlertKind, Literal["above", "below"]], ...]] = {
    c: tuple((k, d) for k, sc, d in SIGNALS if sc is c) for c in {sc for _, sc, _ in SIGNALS}
}
#: Codes the per-item loop of ``_handle`` has anything to do with (immediate alarms,
#: doors, threshold signals); the others (motion, steps, battery, …) are skipped at once.
_JUDGED_CODES: frozenset[Code] = frozenset({*IMMEDIATE, Code.DOOR, *_SIGNALS_BY_CODE})


#: A threshold kind a reading can feed: (kind, direction, the rule judging its code).
_Signal = tuple[AlertKind, Literal["above", "below"], ThresholdRule]


@dataclass
class EngineStats:
    batches: int = 0
    items: int = 0
    drafts: int = 0
    opened: int = 0
    refreshed: int = 0
    suppressed: int = 0  #: home checks while the resident is away
    damped: int = 0  #: held because the alert is flapping
    window_queries: int = 0  #: store reads for duration/repetition windows
    window_query_s: float = 0.0  #: time spent in those reads
    errors: int = 0
    rule_errors: int = 0
    falls_held: int = 0  #: low-confidence fall alarms left to the worn check

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class _Cached:
    value: Any
    at: float


@dataclass
class FlapPolicy:
    """An alert closed ``count`` times within ``window_s`` is held when it fires again."""

    count: int = 3
    window_s: int = 3600


def is_flapping(closures: Sequence[datetime], now: datetime, policy: FlapPolicy) -> bool:
    since = now - timedelta(seconds=policy.window_s)
    return sum(1 for c in closures if c >= since) >= policy.count


def is_activation(env: EnvelopeView, *, presence: bool = False) -> bool:
    """Does this activity reading show someone moving?

    ``presence``: the reading is a presence sensor's held state (``kinds.is_presence``).
    """
    code, value = env.payload.code, env.payload.value
    if code is Code.BUTTON:
        return True
    if presence:
        # a presence sensor re-sends "occupied" while someone is there, also someone
        # lying on the floor: only its changes are activity (last_change_at, like a bed)
        return False
    if code is Code.DOOR:
        # opening and closing both need a person, but a contact sensor also re-reports
        # "closed" every ~50 min: a door counts by its changes (last_change_at)
        return False
    if code in (Code.BED_OCCUPANCY, Code.STEPS):
        # a change in/out of bed, and a rise of the day's cumulative step count, are
        # tracked as last_change_at (a band re-sends the same count every 2 minutes)
        return False
    return value is not None and value > 0


@dataclass
class AlertEngine:
    """Ingest hand-off handler; see the module docstring."""

    connect: Callable[[], Conn]
    tz: tzinfo
    clock: Clock = field(default_factory=SystemClock)
    cache_ttl_s: float = 30.0
    flap: FlapPolicy = field(default_factory=FlapPolicy)
    stats: EngineStats = field(default_factory=EngineStats)

    def __post_init__(self) -> None:
        self._conn: Conn | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._book: _Cached | None = None

    # -- HandOff -------------------------------------------------------------------------
    def on_committed(self, items: Sequence[EnvelopeView]) -> None:
        """Handle newly stored envelopes; never raises."""
        if not items:
            return
        with self._lock:
            try:
                try:
                    self._handle(items)
                except psycopg.OperationalError as err:
                    # (reliability) the connection died while idle, e.g. PostgreSQL was
                    # restarted: the batch is already stored, so its alarms must not be
                    # lost to the alert path; once more on a fresh connection
                    log.warning("alert engine connection lost (%s); retrying the batch", err)
                    self._drop_connection()
                    self._handle(items)
            except Exception:
                self.stats.errors += 1
                log.exception("alert engine failed on a batch of %d items", len(items))
                self._drop_connection()

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    # -- internals -----------------------------------------------------------------------
    def _db(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing the alert engine's connection failed", exc_info=True)
        self._conn = None

    def invalidate(self) -> None:
        """Forget cached rules, residents and rooms (e.g. after a rule change)."""
        with self._lock:
            self._cache.clear()
            self._book = None

    def _fresh(self, entry: _Cached | None) -> bool:
        return entry is not None and time.monotonic() - entry.at < self.cache_ttl_s

    def _rulebook(self, conn: Conn) -> RuleBook:
        if not self._fresh(self._book):
            self._book = _Cached(RuleBook(store.load_rules(conn)), time.monotonic())
        assert self._book is not None
        book: RuleBook = self._book.value
        return book

    def _lookup(
        self, kind: str, keys: set[str], fetch: Callable[[set[str]], dict[str, T]]
    ) -> dict[str, T | None]:
        missing = {k for k in keys if not self._fresh(self._cache.get((kind, k)))}
        if missing:
            found = fetch(missing)
            now = time.monotonic()
            for k in missing:
                self._cache[(kind, k)] = _Cached(found.get(k), now)
        return {k: self._cache[(kind, k)].value for k in keys}

    def _rule(
        self, book: RuleBook, kind: AlertKind, ctx: ResidentCtx | None, site_id: str
    ) -> _Rule | None:
        where: dict[str, Any] = ctx.where() if ctx else {"site_id": site_id}
        try:
            return book.rule(kind, **where)
        except RuleInvalid as err:
            self.stats.rule_errors += 1
            log.warning("stored rule %s for site %s is invalid, skipped: %s", kind, site_id, err)
            return None

    def _handle(self, items: Sequence[EnvelopeView]) -> None:
        conn = self._db()
        self.stats.batches += 1
        self.stats.items += len(items)
        book = self._rulebook(conn)
        res_ids = {e.res for e in items if e.res}
        doors = [
            e for e in items if e.payload.code is Code.DOOR and e.payload.value == 1 and e.room
        ]
        residents = self._lookup("resident", res_ids, lambda ids: store.residents(conn, ids))
        rooms = self._lookup(
            "room", {e.room for e in doors if e.room}, lambda ids: store.room_kinds(conn, ids)
        )
        # device types of the motion sensors: a presence sensor's motion is a state
        types = self._lookup(
            "device_type",
            {e.dev for e in items if e.payload.code is Code.MOTION},
            lambda ids: store.device_types(conn, ids),
        )
        site_res = self._lookup(
            "site_residents",
            {e.site for e in doors if not e.res},
            lambda ids: store.residents_of_sites(conn, ids),
        )
        drafts: list[AlertDraft] = []
        vitals: dict[tuple[str, AlertKind, Code], datetime] = {}
        climate: dict[tuple[str, AlertKind], EnvelopeView] = {}
        # the book memoises too, but asking it costs a keyword dict per reading
        memo: dict[tuple[AlertKind, str | None, str], _Rule | None] = {}

        def rule_of(kind: AlertKind, ctx: ResidentCtx | None, site: str) -> _Rule | None:
            key = (kind, ctx.id if ctx is not None else None, site)
            if key in memo:
                return memo[key]
            found = memo[key] = self._rule(book, kind, ctx, site)
            return found

        # the threshold rules a reading of a code feeds, per (resident, site, code)
        signals: dict[tuple[str | None, str, Code], tuple[_Signal, ...]] = {}

        def signals_of(ctx: ResidentCtx | None, site: str, code: Code) -> tuple[_Signal, ...]:
            key = (ctx.id if ctx is not None else None, site, code)
            found = signals.get(key)
            if found is None:
                rules: list[_Signal] = []
                for tkind, direction in _SIGNALS_BY_CODE.get(code, ()):
                    if tkind in VITAL_KINDS and ctx is None:
                        continue
                    top = rule_of(tkind, ctx, site)
                    if isinstance(top, ThresholdRule):
                        rule = top.for_code(code, SIGNAL[tkind][0])
                        if rule is not None:
                            rules.append((tkind, direction, rule))
                found = signals[key] = tuple(rules)
            return found

        for e in items:
            code = e.payload.code
            if code not in _JUDGED_CODES:
                continue
            ctx = residents.get(e.res) if e.res else None
            # 2. immediate events
            kind = immediate_kind(e)
            if kind is not None:
                irule = rule_of(kind, ctx, e.site)
                if isinstance(irule, FallRule) and held_for_worn_check(e, irule):
                    # low confidence: the scheduled check raises it unless the band's
                    # next reports say it is off the wrist (it fell, not the resident)
                    self.stats.falls_held += 1
                    log.info(
                        "fall alarm of %s held for the worn check (confidence %s)",
                        e.dev,
                        fall_confidence(e),
                    )
                elif irule is not None:
                    drafts.extend(evaluate_immediate(e))
                continue
            if code is Code.DOOR and e.payload.value == 1 and e.room:
                rid = e.res
                if rid is None:
                    same_site = site_res.get(e.site) or []
                    rid = same_site[0] if len(same_site) == 1 else None
                    if rid is not None:
                        ctx = self._lookup(
                            "resident", {rid}, lambda ids: store.residents(conn, ids)
                        ).get(rid)
                rule = rule_of(AlertKind.NIGHT_WANDERING, ctx, e.site)
                if isinstance(rule, NightWanderingRule):
                    for d in evaluate_night_door(e, rooms.get(e.room), rule, self.tz, rid):
                        if ctx is not None and ctx.away(d.at):
                            self.stats.suppressed += 1
                        else:
                            drafts.append(d)
                continue
            if code is Code.AVAILABILITY:
                # a device reported offline (bridge, gateway liveness) is judged by the
                # scheduled device check, after DeviceOfflineRule.min_offline_s: links drop
                # for minutes, bands are out of range whenever their wearer is out
                continue
            value = e.payload.value
            if e.kind is not Kind.READING or value is None:
                continue
            # 3. threshold rules: note crossings, judge windows below (one read per key)
            for tkind, direction, rule in signals_of(ctx, e.site, code):
                if not rule.worth_reading(value, direction):
                    continue
                if tkind in VITAL_KINDS:
                    assert e.res is not None
                    key = (e.res, tkind, code)
                    if key not in vitals or vitals[key] < e.ts:
                        vitals[key] = e.ts
                elif tkind in ENVIRONMENT_KINDS:
                    ckey = (e.dev, tkind)
                    if ckey not in climate or climate[ckey].ts < e.ts:
                        climate[ckey] = e
        # urgent alerts first: committed and notified before anything slower
        self._commit(conn, drafts)
        drafts = []
        # activity for the scheduled absence checks
        store.upsert_activity(
            conn,
            [
                store.ActivityUpdate(
                    e.dev,
                    e.payload.code._value_,
                    e.site,
                    e.res,
                    e.room,
                    e.ts,
                    e.payload.value,
                    is_activation(
                        e, presence=is_presence(e.payload.code._value_, types.get(e.dev))
                    ),
                )
                for e in items
                if e.payload.code in ACTIVITY_CODES and e.kind is not Kind.STATUS
            ]
            + [
                # a band's own word on whether it is on the wrist (its battery status
                # carries ``worn``): since when it is worn, or off (``store.WORN``)
                store.ActivityUpdate(
                    e.dev,
                    store.WORN,
                    e.site,
                    e.res,
                    e.room,
                    e.ts,
                    1.0 if worn else 0.0,
                    False,
                )
                for e in items
                if e.payload.code is Code.BATTERY
                and e.kind is Kind.STATUS
                and isinstance(worn := e.payload.attrs.get("worn"), bool)
            ],
        )
        # threshold windows, read from the store
        for (rid, tkind, vcode), at in sorted(vitals.items(), key=lambda kv: kv[1]):
            ctx = residents.get(rid)
            assert ctx is not None
            drafts.extend(
                self._judge_window(conn, book, tkind, at, ctx, rid, None, ctx.site_id, vcode)
            )
        for (dev, tkind), e in climate.items():
            ctx = residents.get(e.res) if e.res else None
            drafts.extend(self._judge_window(conn, book, tkind, e.ts, ctx, e.res, dev, e.site))
        self._commit(conn, drafts)

    def _judge_window(
        self,
        conn: Conn,
        book: RuleBook,
        kind: AlertKind,
        at: datetime,
        ctx: ResidentCtx | None,
        resident_id: str | None,
        device_id: str | None,
        site_id: str,
        code: Code | None = None,
    ) -> list[AlertDraft]:
        top = self._rule(book, kind, ctx, site_id)
        assert isinstance(top, ThresholdRule)
        primary, direction = SIGNAL[kind]
        code = code or primary
        rule = top.for_code(code, primary)
        assert rule is not None
        since = at - window_needed(rule)
        self.stats.window_queries += 1
        started = time.perf_counter()
        if device_id is not None:
            samples = store.device_samples(conn, device_id, code.value, since, at)
        else:
            assert resident_id is not None
            samples = store.resident_samples(conn, resident_id, code.value, since, at)
        self.stats.window_query_s += time.perf_counter() - started
        verdict = evaluate_threshold(samples, rule, direction, at, self.tz)
        if not verdict.fired:
            return []
        subject = resident_id or site_id
        return [
            AlertDraft(
                subject=subject,
                site_id=site_id,
                kind=kind.value,
                severity=SEVERITY[kind],
                detector=f"rule:{kind.value}",
                at=at,
                resident_id=resident_id,
                device_id=device_id,
                message=f"{code.value} {verdict.explanation.get('condition', '')}".strip(),
                explanation=verdict.explanation,
            )
        ]

    def _commit(self, conn: Conn, drafts: list[AlertDraft]) -> None:
        seen: set[tuple[str, str]] = set()
        now = self.clock.now()
        # most severe first, then in time order
        for d in sorted(drafts, key=lambda d: (-_SEVERITY_RANK[d.severity], d.at)):
            key = (d.subject, d.kind)
            if key in seen:
                continue  # one write per (subject, kind) per batch: the first occurrence
            seen.add(key)
            self.stats.drafts += 1
            if AlertKind(d.kind) not in CRITICAL:
                closures = store.recent_closures(
                    conn, d.subject, d.kind, now - timedelta(seconds=self.flap.window_s)
                )
                if is_flapping(closures, now, self.flap):
                    self.stats.damped += 1
                    log.info("held flapping %s alert on %s", d.kind, d.subject)
                    continue
            try:
                change = repository.open_or_refresh(conn, d)
            except psycopg.errors.ForeignKeyViolation:
                # a resident not (yet) provisioned must not cost the alert: keep it on
                # the site, name the unknown resident in the explanation
                log.warning("alert %s names unknown resident; raised on its site", d.kind)
                change = repository.open_or_refresh(
                    conn,
                    replace(
                        d,
                        resident_id=None,
                        explanation={**d.explanation, "unknown_resident": d.resident_id},
                    ),
                )
            if change.change == "opened":
                self.stats.opened += 1
            else:
                self.stats.refreshed += 1


def build_engine(settings: Any, clock: Clock | None = None) -> AlertEngine:
    """The engine an ingest worker registers as a hand-off handler (``PlatformSettings``)."""
    from zoneinfo import ZoneInfo

    from carecircle.platform.store import connect

    url = settings.database_url
    timeout = settings.db_connect_timeout_s
    return AlertEngine(
        connect=lambda: connect(url, timeout_s=timeout, autocommit=True),
        tz=ZoneInfo(settings.timezone),
        clock=clock or SystemClock(),
        cache_ttl_s=float(settings.alerts_cache_s),
        flap=FlapPolicy(settings.alerts_flap_count, settings.alerts_flap_window_s),
    )
