"""Virtual-time pipeline replay: a generated simulator stream through the real code.

``replay(stream_dir, settings)`` takes the output of ``carecircle sim generate --out
DIR`` (``stream.jsonl``, ``ground_truth.jsonl``, ``summary.json``, and the population
as ``population.json`` or given) and runs it, in simulated time and as fast as the
machine allows, through

1. **the gateway** — one real :class:`carecircle.gateway.runtime.Gateway` per simulated
   gateway (its adapters, validation, per-device rate limit, durable SQLite queue,
   per-sensor liveness and heartbeats), each on its own native topic bases (the stream
   must be generated with ``{gw}`` templates in the bases, see :data:`DEFAULT_BASES`);
   its queue is drained into uplink batches of the contract format.  A simulated
   uplink cut (``{root}/v1/sim/uplink/{gw}``, ``up: false``) keeps that gateway's
   queue and publishes its ``state`` offline (the broker's will), ``up: true`` online
   again and drains the queue;
2. **ingest** — the platform's :class:`~carecircle.platform.ingest.BatchWriter` (decode,
   registry policy, binary COPY, one transaction per batch of at most
   ``ingest_batch_max_messages`` uplink messages) with its clock at simulated time;
3. **the hand-off** — every ``carecircle.ingest.handoff`` entry point (the alert engine)
   built with the virtual clock, called with each batch's newly stored items;
4. **the scheduler** — every registrar the platform scheduler runs (the store's and
   every ``carecircle.scheduler.jobs`` entry point: alerts absence checks, rollups,
   ml …) is called with a :class:`~.vsched.VirtualScheduler` and a ``JobContext`` on the
   virtual clock; the jobs run at their triggers' fire times as simulated time passes.

Only the MQTT broker is not in the loop (the e2e tests cover it): gateway batches are
handed to the ingest writer directly, every ``batch_s`` simulated seconds.

The database must be migrated and empty of data (``replay`` migrates and provisions
the population itself and refuses a database that already holds readings).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from carecircle.common.clock import ManualClock
from carecircle.common.contract import Code, Provisioning, Topics
from carecircle.common.errors import ConfigError, ContractError, StoreError, StoreUnavailable
from carecircle.platform.ingest.handoff import HandOff
from carecircle.platform.ingest.items import EnvelopeView
from carecircle.platform.ingest.writer import BatchWriter, Inbound
from carecircle.platform.replay.vsched import VirtualScheduler
from carecircle.platform.scheduler.jobs import registrars
from carecircle.platform.scheduler.service import JobContext
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

if TYPE_CHECKING:  # the gateway is imported only when a replay runs
    from carecircle.gateway.runtime.gateway import Gateway

log = logging.getLogger(__name__)

HANDOFF_GROUP = "carecircle.ingest.handoff"
#: Native topic bases the stream must be generated with (``{gw}`` = the gateway id).
DEFAULT_BASES: dict[str, str] = {
    "zigbee2mqtt": "sim/{gw}/zigbee2mqtt",
    "careband": "sim/{gw}/careband",
    "bedsensor": "sim/{gw}/bedsensor",
    "homeassistant": "sim/{gw}/homeassistant",
}
STREAM_FILE = "stream.jsonl"
TRUTH_FILE = "ground_truth.jsonl"
SUMMARY_FILE = "summary.json"
POPULATION_FILE = "population.json"


@dataclass
class ReplayOptions:
    #: Native topic bases with ``{gw}`` (and/or ``{site}``), as given to ``sim generate``.
    bases: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BASES))
    #: Population file (default: ``population.json`` in the stream directory).
    population: Path | None = None
    #: Routine gateway traffic is flushed to ingest every this many simulated seconds
    #: (alarms at once, and everything before each job run).  Alerts carry device time,
    #: so this changes what they say only through the jobs, which see all data first.
    batch_s: float = 30.0
    #: The gateways check per-sensor liveness every this many simulated seconds.
    liveness_s: float = 10.0
    #: Gateway heartbeat interval (default: the gateway setting, 30 s).
    heartbeat_s: float | None = None
    #: Keep running the jobs until here (default: the stream's end from summary.json).
    until: datetime | None = None
    #: Scheduler job ids registered but not run (e.g. to time a replay without ml).
    skip_jobs: frozenset[str] = frozenset()
    #: A progress line every this many simulated seconds.
    progress_every_s: float = 6 * 3600
    #: Where the gateways' SQLite queues live (default: a temporary directory).
    queue_dir: Path | None = None
    #: Refuse a database that already holds readings (a replay starts from nothing).
    require_empty: bool = True
    #: ``(i, n)``: replay only households number i, i+n, i+2n … (sorted site ids) into
    #: this database, so n processes can share a big stream; other sites (day-care
    #: centres, nursing homes) go to shard 0.  Score the shards together with
    #: ``carecircle eval --database-url <shard 0> --also-database-url <shard 1> …``.
    shard: tuple[int, int] | None = None
    #: A simulated caregiver resolves every human-facing (not technical) alert this many
    #: simulated seconds after it opened (outcome ``resident_fine``), checked every
    #: ``caregiver_every_s``.  ``None``: nobody closes an alert; over a long replay the
    #: first alert of a (resident, kind) then stays open and later episodes only
    #: refresh it.
    resolve_after_s: float | None = None
    caregiver_every_s: float = 300.0


@dataclass
class ReplayReport:
    start: datetime
    end: datetime
    messages: int = 0
    unrouted: int = 0
    gateways: int = 0
    uplink_messages: int = 0
    items_stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    handoff_errors: int = 0
    flushes: int = 0
    heartbeats: int = 0
    liveness_offline: int = 0
    uplink_cuts: int = 0
    resolved_by_caregiver: int = 0
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        return d


def read_stream(path: Path) -> Iterator[tuple[int, str, str, bool]]:
    """``(t_ms, topic, payload, retain)`` for each line of a ``stream.jsonl``."""
    loads = json.loads
    with path.open("r", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            try:
                doc = loads(line)
                yield int(doc["t"]), doc["topic"], doc["payload"], bool(doc.get("retain", False))
            except (ValueError, KeyError, TypeError) as err:
                raise ContractError(f"{path}:{n}: not a stream line: {err}") from err


def load_handoffs(settings: PlatformSettings, clock: ManualClock) -> list[HandOff]:
    """Every ``carecircle.ingest.handoff`` entry point, built on the virtual clock."""
    out: list[HandOff] = []
    for ep in sorted(entry_points(group=HANDOFF_GROUP), key=lambda e: e.name):
        factory = ep.load()
        if "clock" in inspect.signature(factory).parameters:
            handler = factory(settings, clock=clock)
        else:
            log.warning("hand-off %s takes no clock: it runs on wall-clock time", ep.name)
            handler = factory(settings)
        out.append(handler)
        log.info("replay: hand-off %s", ep.name)
    return out


def _batch_body(gateway_id: str, bodies: Sequence[bytes], sent_at: datetime) -> bytes:
    """An uplink batch of the contract format (as the gateway's uplink sender makes it)."""
    head = (
        b'{"v":1,"gw":'
        + json.dumps(gateway_id).encode()
        + b',"sent_at":"'
        + sent_at.isoformat().encode()
        + b'","items":['
    )
    return head + b",".join(bodies) + b"]}"


def shard_of(doc: Provisioning, index: int, count: int) -> Provisioning:
    """The part of a population that shard ``index`` of ``count`` replays (see
    :attr:`ReplayOptions.shard`): its households with their rooms, residents, gateways,
    devices and family; every other site and room is kept (residents refer to day-care
    centres) but only shard 0 keeps their gateways and devices."""
    if not 0 <= index < count:
        raise ConfigError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
    homes = sorted(s.id for s in doc.sites if s.kind == "household")
    mine = {sid for n, sid in enumerate(homes) if n % count == index}
    if index == 0:
        mine |= {s.id for s in doc.sites if s.kind != "household"}
    residents = [r for r in doc.residents if r.site_id in mine]
    rids = {r.id for r in residents}
    family = []
    for m in doc.family_members:
        links = [ln for ln in m.links if ln.resident_id in rids]
        if links:
            family.append(m.model_copy(update={"links": links}))
    return doc.model_copy(
        update={
            "sites": [s for s in doc.sites if s.id in mine or s.kind != "household"],
            "rooms": [r for r in doc.rooms if r.site_id in mine or r.site_id not in homes],
            "residents": residents,
            "gateways": [g for g in doc.gateways if g.site_id in mine],
            "devices": [d for d in doc.devices if d.binding.site in mine],
            "responders": [r for r in doc.responders if r.site_id is None or r.site_id in mine],
            "family_members": family,
        }
    )


class _KeptConnection(psycopg.Connection[Any]):
    """A job's ``with ctx.connect() as conn:`` block leaves this one open: in a replay
    the jobs run thousands of times, and a connection costs ~10 ms to open."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.closed and not self.autocommit:
            if exc_type is None:
                self.commit()
            else:
                self.rollback()

    def close(self) -> None:
        """Kept open; :meth:`really_close` closes it."""

    def really_close(self) -> None:
        super().close()


@dataclass(frozen=True)
class _ReplayJobContext(JobContext):
    """The scheduler's job context on the virtual clock, with one kept connection."""

    held: list[_KeptConnection] = field(default_factory=list)

    def connect(self) -> Any:
        if self.held and not self.held[0].closed and not self.held[0].broken:
            return self.held[0]
        self.close()
        s = self.settings
        try:
            conn = _KeptConnection.connect(
                str(s.database_url), autocommit=True, connect_timeout=s.db_connect_timeout_s
            )
        except psycopg.OperationalError as err:
            raise StoreUnavailable(f"replay jobs cannot reach PostgreSQL: {err}") from err
        self.held.append(conn)
        return conn

    def close(self) -> None:
        while self.held:
            conn = self.held.pop()
            with contextlib.suppress(psycopg.Error):
                conn.really_close()


class _Site:
    """One simulated gateway: the real runtime object and its uplink state."""

    def __init__(self, gw: Gateway, topics: Topics) -> None:
        self.gw = gw
        self.topics = topics
        self.up = True
        self.dirty = False


class Replay:
    """The replay loop; :func:`replay` is the one-call form."""

    def __init__(
        self, stream_dir: Path, settings: PlatformSettings, options: ReplayOptions | None = None
    ) -> None:
        self.dir = stream_dir
        self.settings = settings
        self.o = options or ReplayOptions()
        summary = self._summary()
        self.start = datetime.fromisoformat(str(summary["start"]).replace("Z", "+00:00"))
        self.end = self.o.until or datetime.fromisoformat(
            str(summary["end"]).replace("Z", "+00:00")
        )
        self.clock = ManualClock(self.start)
        self.topics = Topics(settings.topic_root)
        self.report = ReplayReport(self.start, self.end)
        self._sites: dict[str, _Site] = {}
        self._routes: dict[str, _Site] = {}
        self._route_depths: list[int] = []
        self._pending: list[Inbound] = []  # gateway state messages waiting for the next flush
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- set-up ------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        path = self.dir / SUMMARY_FILE
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not a `sim generate` summary: {err}") from err
        return doc

    def _population(self) -> Provisioning:
        path = self.o.population or self.dir / POPULATION_FILE
        try:
            return Provisioning.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(
                f"population file {path}: {err.strerror}; give the one the stream was "
                "generated from (`sim population --out`, then `sim generate --population`)"
            ) from err
        except ValueError as err:
            raise ContractError(f"{path} is not a provisioning document: {err}") from err

    def _connect(self) -> Any:
        s = self.settings
        return connect(s.database_url, timeout_s=s.db_connect_timeout_s, autocommit=True)

    def prepare_database(self) -> list[Any]:
        """Migrate (partitions around the simulated start), check it is empty, provision."""
        from carecircle.platform.registry.service import gateway_configs, provision

        s = self.settings
        with self._connect() as conn:
            migrate(
                conn,
                now=self.start,
                retention=Retention.days(s.raw_retention_days, s.event_retention_days),
                partition_days_ahead=s.partition_days_ahead,
                preference=s.timeseries_backend,
            )
            if self.o.require_empty:
                row = conn.execute("SELECT EXISTS (SELECT 1 FROM readings)").fetchone()
                if row and row[0]:
                    raise StoreError(
                        "the database already holds readings: replay into a fresh database"
                    )
            doc = self._population()
            if self.o.shard is not None:
                doc = shard_of(doc, *self.o.shard)
            provision(conn, doc)
            configs = gateway_configs(conn)
        log.info(
            "replay: provisioned %d sites, %d residents, %d devices, %d gateways",
            len(doc.sites),
            len(doc.residents),
            len(doc.devices),
            len(configs),
        )
        return configs

    def _gateways(self, configs: Sequence[Any]) -> None:
        from carecircle.gateway.runtime.gateway import Gateway
        from carecircle.gateway.settings import GatewaySettings

        if self.o.queue_dir is None:
            shm = Path("/dev/shm")  # noqa: S108 — a private TemporaryDirectory inside it
            self._tmp = tempfile.TemporaryDirectory(
                prefix="cc-replay-", dir=str(shm) if shm.is_dir() else None
            )
            qdir = Path(self._tmp.name)
        else:
            qdir = self.o.queue_dir
            qdir.mkdir(parents=True, exist_ok=True)
        depths: set[int] = set()
        for cfg in configs:
            bases = {
                f: t.replace("{gw}", cfg.gw).replace("{site}", cfg.site)
                for f, t in self.o.bases.items()
            }
            gs = GatewaySettings(
                gateway_id=cfg.gw,
                site_id=cfg.site,
                topic_root=self.settings.topic_root,
                queue_path=qdir / f"{cfg.gw}.sqlite3",
                queue_synchronous="NORMAL",
                zigbee2mqtt_base=bases["zigbee2mqtt"],
                careband_base=bases["careband"],
                bedsensor_base=bases["bedsensor"],
                homeassistant_base=bases["homeassistant"],
            )
            gw = Gateway(gs, clock=self.clock)
            # the per-device token bucket runs on simulated seconds too
            clock = self.clock
            gw.limiter.monotonic = lambda clock=clock: clock.now().timestamp()  # type: ignore[misc]
            gw.use_config(cfg)
            site = _Site(gw, self.topics)
            self._sites[cfg.gw] = site
            for base in bases.values():
                self._routes[base] = site
                depths.add(base.count("/") + 1)
            self._pending.append(self._state(cfg.gw, online=True))
        self._route_depths = sorted(depths)
        self.report.gateways = len(self._sites)
        if self._sites:
            hb = next(iter(self._sites.values())).gw.settings.heartbeat_interval_s
            self._heartbeat_s = float(self.o.heartbeat_s or hb)

    def _state(self, gw: str, *, online: bool) -> Inbound:
        now = self.clock.now()
        doc = {"state": "online" if online else "offline", "ts": now.isoformat()}
        return Inbound(self.topics.gateway_state(gw), json.dumps(doc).encode(), now)

    # -- routing ---------------------------------------------------------------------
    def _site_of(self, topic: str) -> _Site | None:
        parts = topic.split("/")
        for depth in self._route_depths:
            site = self._routes.get("/".join(parts[:depth]))
            if site is not None:
                return site
        return None

    def _control(self, topic: str, payload: str) -> bool:
        """A simulator uplink cut/restore (``{root}/v1/sim/uplink/{gw}``)."""
        prefix = f"{self.topics.base}/sim/"
        if not topic.startswith(prefix):
            return False
        rest = topic[len(prefix) :]
        if rest.startswith("uplink/"):
            gw = rest[len("uplink/") :]
            site = self._sites.get(gw)
            try:
                up = bool(json.loads(payload).get("up", True))
            except (ValueError, AttributeError):
                log.warning("replay: unreadable uplink control %.80s", payload)
                return True
            if site is not None and site.up != up:
                site.up = up
                if not up:
                    self.report.uplink_cuts += 1
                # the broker's will (offline) / the reconnected sender's state (online)
                self._pending.append(self._state(gw, online=up))
                site.dirty = True
        return True

    # -- flushing: gateway queues → ingest → hand-off -------------------------------------
    def _drain(self, site: _Site, now: datetime) -> list[Inbound]:
        from carecircle.gateway.outbox import Lane

        out: list[Inbound] = []
        box = site.gw.outbox
        gw_id = site.gw.settings.gateway_id
        limit = site.gw.settings.batch_max_items
        channels = {Lane.ALARM: "alarm", Lane.STATUS: "status", Lane.ROUTINE: "batch"}
        for lane in (Lane.ALARM, Lane.STATUS, Lane.DEADLETTER, Lane.ROUTINE):
            while True:
                rows = box.next_rows(lane, 0, 1 if lane is Lane.DEADLETTER else limit)
                if not rows:
                    break
                if lane is Lane.DEADLETTER:
                    topic, body = self.topics.gateway_deadletter(gw_id), rows[0].body
                else:
                    from carecircle.common.contract.topics import Uplink

                    topic = self.topics.uplink(gw_id, Uplink(channels[lane]))
                    body = _batch_body(gw_id, [r.body for r in rows], now)
                out.append(Inbound(topic, body, now))
                box.delete(r.seq for r in rows)
        return out

    def flush(self, handlers: Sequence[HandOff], writer: BatchWriter) -> None:
        now = self.clock.now()
        batch, self._pending = self._pending, []
        for site in self._sites.values():
            if site.dirty and site.up:
                batch.extend(self._drain(site, now))
                site.dirty = False
        if not batch:
            return
        self.report.flushes += 1
        size = self.settings.ingest_batch_max_messages
        for i in range(0, len(batch), size):
            chunk = batch[i : i + size]
            outcome = writer.write(chunk)
            self.report.uplink_messages += len(chunk)
            self.report.items_stored += len(outcome.new_items)
            self.report.duplicates += outcome.duplicates
            self.report.dead_letters += len(outcome.dead_letters)
            for d in outcome.dead_letters[:3]:
                log.debug("replay: ingest dead letter: %s", d.reason)
            self._hand_off(handlers, outcome.new_items)

    def _hand_off(self, handlers: Sequence[HandOff], items: Sequence[EnvelopeView]) -> None:
        if not items:
            return
        for h in handlers:
            try:
                h.on_committed(items)
            except Exception:
                self.report.handoff_errors += 1
                log.exception("replay: hand-off %s failed", type(h).__name__)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> ReplayReport:
        began = time.monotonic()
        configs = self.prepare_database()
        self._gateways(configs)
        handlers = load_handoffs(self.settings, self.clock)
        vsched = VirtualScheduler(self.clock)
        vsched.skipped = set(self.o.skip_jobs)
        ctx = _ReplayJobContext(self.settings, self.clock)
        for register in registrars():
            register(vsched, ctx)
        writer = BatchWriter(self._connect, self.topics, clock=self.clock.now)
        t0 = self.start.timestamp()
        timers = {
            "flush": t0 + self.o.batch_s,
            "liveness": t0 + self.o.liveness_s,
            "heartbeat": t0,
            "progress": t0 + self.o.progress_every_s,
        }
        if self.o.resolve_after_s is not None:
            timers["caregiver"] = t0 + self.o.caregiver_every_s

        def flush() -> None:
            self.flush(handlers, writer)

        def before_job(at: datetime) -> None:
            self.clock.set(at)
            flush()

        def advance_to(t: float) -> float:
            """Run every timer and job due up to ``t``; returns the next due time."""
            while True:
                due_job = vsched.next_due()
                tj = due_job.timestamp() if due_job is not None else float("inf")
                name = min(timers, key=lambda k: timers[k])
                tt = timers[name]
                if min(tt, tj) > t:
                    return min(tt, tj)
                if tj < tt:
                    assert due_job is not None
                    vsched.run_due(due_job, before_job)
                    continue
                self.clock.set(datetime.fromtimestamp(tt, UTC))
                if name == "flush":
                    flush()
                    timers["flush"] = tt + self.o.batch_s
                elif name == "liveness":
                    for site in self._sites.values():
                        n = site.gw.check_liveness()
                        if n:
                            self.report.liveness_offline += n
                            site.dirty = True
                    timers["liveness"] = tt + self.o.liveness_s
                elif name == "caregiver":
                    flush()
                    self._caregiver()
                    timers["caregiver"] = tt + self.o.caregiver_every_s
                elif name == "heartbeat":
                    for site in self._sites.values():
                        site.gw.heartbeat()
                        site.dirty = True
                    self.report.heartbeats += len(self._sites)
                    timers["heartbeat"] = tt + self._heartbeat_s
                else:
                    self._progress(began, vsched)
                    timers["progress"] = tt + self.o.progress_every_s

        end = self.end.timestamp()
        next_due = advance_to(t0)
        try:
            for t_ms, topic, payload, _retain in read_stream(self.dir / STREAM_FILE):
                t = t_ms / 1000.0
                if t > end:
                    break
                if t >= next_due:
                    next_due = advance_to(t)
                self.clock.set(datetime.fromtimestamp(t, UTC))
                self.report.messages += 1
                site = self._site_of(topic)
                if site is None:
                    if not self._control(topic, payload):
                        self.report.unrouted += 1
                        if self.report.unrouted <= 5 and self.o.shard is None:
                            log.warning("replay: no gateway for topic %.120s", topic)
                    continue
                outcome = site.gw.handle_native(topic, payload.encode())
                site.dirty = True
                if outcome is not None and any(
                    e.is_alarm and e.payload.value and e.payload.code is not Code.AVAILABILITY
                    for e in outcome.envelopes
                ):
                    flush()  # an alarm goes up at once, not with the next batch
            advance_to(end)
            self.clock.set(self.end)
            flush()
        finally:
            for h in handlers:
                close = getattr(h, "close", None)
                if callable(close):
                    close()
            writer.close()
            ctx.close()
            for site in self._sites.values():
                site.gw.stop()
            if self._tmp is not None:
                self._tmp.cleanup()
        self.report.jobs = {j.id: j.as_dict() for j in vsched.get_jobs()}
        with self._connect() as conn:
            rows = conn.execute("SELECT kind, count(*) FROM alerts GROUP BY kind ORDER BY kind")
            self.report.alerts_by_kind = {str(k): int(n) for k, n in rows.fetchall()}
        self.report.wall_s = round(time.monotonic() - began, 1)
        log.info(
            "replay done: %d messages, %d items stored, %d alerts, %.0f s wall",
            self.report.messages,
            self.report.items_stored,
            sum(self.report.alerts_by_kind.values()),
            self.report.wall_s,
        )
        return self.report

    def _caregiver(self) -> None:
        """Resolve the human-facing alerts opened ``resolve_after_s`` ago or earlier."""
        from carecircle.platform.alerts.kinds import TECHNICAL
        from carecircle.platform.alerts.lifecycle import Outcome, Status
        from carecircle.platform.alerts.repository import transition

        assert self.o.resolve_after_s is not None
        now = self.clock.now()
        cutoff = datetime.fromtimestamp(now.timestamp() - self.o.resolve_after_s, UTC)
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id FROM alerts WHERE status NOT IN ('resolved', 'cancelled') "
                "AND NOT kind = ANY(%s) AND opened_at <= %s ORDER BY id",
                (sorted(k.value for k in TECHNICAL), cutoff),
            ).fetchall()
            for (alert_id,) in rows:
                transition(
                    conn,
                    int(alert_id),
                    Status.RESOLVED,
                    actor="replay:caregiver",
                    at=now,
                    note="simulated caregiver: resident seen",
                    outcome=Outcome.RESIDENT_FINE,
                )
                self.report.resolved_by_caregiver += 1

    def _progress(self, began: float, vsched: VirtualScheduler) -> None:
        r = self.report
        wall = time.monotonic() - began
        sim_s = (self.clock.now() - self.start).total_seconds()
        jobs = sum(j.runs for j in vsched.get_jobs())
        log.info(
            "replay %s: %d messages, %d items stored, %d dead letters, %d job runs; "
            "%.0f s wall (x%.0f)",
            self.clock.now().isoformat(timespec="minutes"),
            r.messages,
            r.items_stored,
            r.dead_letters,
            jobs,
            wall,
            sim_s / max(wall, 1e-6),
        )


def replay(
    stream_dir: Path, settings: PlatformSettings, options: ReplayOptions | None = None
) -> ReplayReport:
    """Replay ``stream_dir`` (a ``sim generate --out`` directory) through the pipeline
    into ``settings.database_url``; see the module docstring.  Progress lines go to the
    ``carecircle.platform.replay.harness`` logger."""
    return Replay(stream_dir, settings, options).run()


__all__ = [
    "DEFAULT_BASES",
    "Replay",
    "ReplayOptions",
    "ReplayReport",
    "read_stream",
    "replay",
]
