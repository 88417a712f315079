"""Load a :class:`Provisioning` document into the registry tables and push gateway configs.

:func:`provision` upserts everything in the document in **one transaction** (all or
nothing) and is idempotent: loading the same document twice changes nothing and
bumps no version.  Rows are updated only where a value differs, so the set of
gateways whose configuration really changed is known: their ``config_version`` is
incremented (a gateway ignores configs older than the one it has), and
:func:`publish_configs` publishes each of them its retained :class:`GatewayConfig`
on ``{root}/v1/gw/{gw}/config``.

The document is additive: ids absent from it are left alone.  Decommissioning is an
explicit operation, not a side effect of a partial file: :func:`retire_device` and
:func:`retire_gateway` take a device or a whole gateway out of service (history kept,
configuration and checks updated); provisioning a retired id again brings it back.

Every change bumps ``gateways.config_version``; :func:`push_pending_configs` (a
scheduler job) publishes each gateway whose ``config_pushed_version`` lags, so a change
made through the API, or a push that failed, still reaches the gateway.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from carecircle.common.contract import DeviceBinding, GatewayConfig, Provisioning, Topics
from carecircle.common.errors import (
    BrokerUnavailable,
    ConfigError,
    ContractError,
    NotFound,
    StoreError,
)
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.alerts import repository as alerts_repository
from carecircle.platform.alerts.kinds import TECHNICAL
from carecircle.platform.alerts.lifecycle import ACTIVE, Status
from carecircle.platform.dispatch.registry import save_responder
from carecircle.platform.privacy.contacts import plain_or_none, seal_contacts
from carecircle.platform.privacy.crypto import PiiCipher

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]

_LEVEL_RANK = {"prefecture": 1, "county": 2, "township": 3, "village": 4}


@dataclass
class ProvisionReport:
    #: Rows inserted or changed, per table.
    changed: dict[str, int] = field(default_factory=dict)
    #: Gateways whose configuration changed (version bumped), sorted.
    gateways: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.changed.values())


def load_provisioning(path: Path) -> Provisioning:
    """Read and validate a provisioning file, with a clear error for each problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read provisioning file {path}: {err.strerror}") from err
    try:
        return Provisioning.model_validate_json(text)
    except ValidationError as err:
        problems = []
        for e in err.errors()[:10]:
            loc = ".".join(str(p) for p in e["loc"])
            problems.append(f"{loc}: {e['msg']}")
        more = f" (and {err.error_count() - 10} more)" if err.error_count() > 10 else ""
        raise ContractError(
            f"{path} is not a valid provisioning document: " + "; ".join(problems) + more
        ) from err


def _check_unique(doc: Provisioning) -> None:
    lists: dict[str, Iterable[str]] = {
        "places": (p.id for p in doc.places),
        "sites": (s.id for s in doc.sites),
        "rooms": (r.id for r in doc.rooms),
        "residents": (r.id for r in doc.residents),
        "gateways": (g.id for g in doc.gateways),
        "devices": (d.binding.id for d in doc.devices),
        "responders": (r.id for r in doc.responders),
        "family_members": (f.id for f in doc.family_members),
    }
    for name, ids in lists.items():
        dup = [i for i, n in Counter(ids).items() if n > 1]
        if dup:
            raise ContractError(f"{name}: duplicate ids {', '.join(sorted(dup)[:5])}")
    native = Counter((d.gateway_id, d.binding.native_id) for d in doc.devices)
    dup_native = [f"{g}/{n}" for (g, n), c in native.items() if c > 1]
    if dup_native:
        raise ContractError(f"devices: native id used twice on a gateway: {dup_native[:5]}")


def _upsert(
    conn: Conn, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> list[str]:
    """Insert or update ``rows`` by ``id``; returns the ids that were inserted or changed."""
    if not rows:
        return []
    cols = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    rest = [c for c in columns if c != "id"]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
    differs = " OR ".join(f"{table}.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in rest)
    query = (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT (id) DO UPDATE SET {sets} WHERE {differs} RETURNING id"
    )
    changed: list[str] = []
    with conn.cursor() as cur:
        for row in rows:
            cur.execute(query, row)
            got = cur.fetchone()
            if got is not None:
                changed.append(str(got[0]))
    return changed


def provision(conn: Conn, doc: Provisioning, cipher: PiiCipher | None = None) -> ProvisionReport:
    """Upsert ``doc`` in one transaction; bump and report gateways whose config changed.

    With a ``cipher`` (``pii_encryption`` on) phone numbers and addresses are stored
    sealed only (:mod:`carecircle.platform.privacy.contacts`): never in plaintext."""
    _check_unique(doc)
    report = ProvisionReport()
    try:
        with conn.transaction():
            report = _provision(conn, doc, cipher)
    except psycopg.errors.IntegrityError as err:
        diag = err.diag
        detail = diag.message_detail or diag.message_primary or str(err)
        where = f" in {diag.table_name}" if diag.table_name else ""
        raise ContractError(f"provisioning refused{where}: {detail}") from err
    except psycopg.Error as err:
        raise StoreError(f"provisioning failed: {err}") from err
    log.info(
        "provisioned %d changed rows; %d gateway configs changed",
        report.total,
        len(report.gateways),
    )
    return report


def _provision(conn: Conn, doc: Provisioning, cipher: PiiCipher | None) -> ProvisionReport:
    report = ProvisionReport()
    ch = report.changed
    places = sorted(doc.places, key=lambda p: _LEVEL_RANK[p.level])
    ch["places"] = len(
        _upsert(
            conn,
            "places",
            ("id", "parent_id", "level", "name", "division_code", "lat", "lon"),
            [(p.id, p.parent_id, p.level, p.name, p.division_code, p.lat, p.lon) for p in places],
        )
    )
    changed_sites = _upsert(
        conn,
        "sites",
        ("id", "kind", "place_id", "name", "address", "lat", "lon", "capacity"),
        [
            (
                s.id,
                s.kind,
                s.place_id,
                s.name,
                plain_or_none(s.address, cipher),
                s.lat,
                s.lon,
                s.capacity,
            )
            for s in doc.sites
        ],
    )
    if cipher is not None:
        addresses = {s.id: s.address for s in doc.sites}
        changed_sites += seal_contacts(conn, cipher, "sites", "address", addresses)
    ch["sites"] = len(set(changed_sites))
    ch["rooms"] = len(
        _upsert(
            conn,
            "rooms",
            ("id", "site_id", "kind", "name"),
            [(r.id, r.site_id, r.kind, r.name) for r in doc.rooms],
        )
    )
    ch["residents"] = len(
        _upsert(
            conn,
            "residents",
            (
                "id",
                "site_id",
                "room_id",
                "day_care_site_id",
                "display_name",
                "birth_year",
                "sex",
                "lives_alone",
                "care_level",
                "conditions",
                "care_profile",
            ),
            [
                (
                    r.id,
                    r.site_id,
                    r.room_id,
                    r.day_care_site_id,
                    r.display_name,
                    r.birth_year,
                    r.sex,
                    r.lives_alone,
                    r.care_level,
                    list(r.conditions),
                    Jsonb(r.care_profile),
                )
                for r in doc.residents
            ],
        )
    )
    changed_gws = set(
        _upsert(
            conn,
            "gateways",
            ("id", "site_id", "retired_at"),
            [(g.id, g.site_id, None) for g in doc.gateways],
        )
    )
    ch["gateways"] = len(changed_gws)
    # A device moving between gateways changes both gateways' configs.
    previous = dict(
        conn.execute(
            "SELECT id, gateway_id FROM devices WHERE id = ANY(%s)",
            ([d.binding.id for d in doc.devices],),
        ).fetchall()
    )
    dev_rows = []
    for d in doc.devices:
        b = d.binding
        dev_rows.append(
            (
                b.id,
                d.gateway_id,
                b.site,
                b.room,
                b.res,
                b.family.value,
                b.native_id,
                b.type,
                d.model,
                b.power.value,
                b.offline_timeout_s,
                None,
            )
        )
    changed_devs = set(
        _upsert(
            conn,
            "devices",
            (
                "id",
                "gateway_id",
                "site_id",
                "room_id",
                "resident_id",
                "family",
                "native_id",
                "type",
                "model",
                "power",
                "offline_timeout_s",
                "retired_at",
            ),
            dev_rows,
        )
    )
    ch["devices"] = len(changed_devs)
    for d in doc.devices:
        if d.binding.id in changed_devs:
            changed_gws.add(d.gateway_id)
            old = previous.get(d.binding.id)
            if old is not None and old != d.gateway_id:
                changed_gws.add(str(old))
    has_shifts = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_name = 'responders' AND column_name = 'shifts')"
    ).fetchone()
    resp_cols = [
        "id",
        "display_name",
        "kind",
        "place_id",
        "site_id",
        "lat",
        "lon",
        "travel_mode",
        "skills",
        "availability",
        "phone",
    ]
    resp_rows: list[list[object]] = [
        [
            r.id,
            r.display_name,
            r.kind,
            r.place_id,
            r.site_id,
            r.lat,
            r.lon,
            r.travel_mode,
            list(r.skills),
            r.availability,
            plain_or_none(r.phone, cipher),
        ]
        for r in doc.responders
    ]
    if has_shifts and has_shifts[0]:
        resp_cols.append("shifts")
        for row, r in zip(resp_rows, doc.responders, strict=True):
            row.append(Jsonb(r.shifts))
    changed_responders = _upsert(conn, "responders", resp_cols, resp_rows)
    if cipher is not None:
        phones = {r.id: r.phone for r in doc.responders}
        changed_responders += seal_contacts(conn, cipher, "responders", "phone", phones)
    ch["responders"] = len(set(changed_responders))
    cover = 0
    for r in doc.responders:
        cur = conn.execute(
            "DELETE FROM responder_coverage WHERE responder_id = %s AND NOT place_id = ANY(%s)",
            (r.id, list(r.covers)),
        )
        cover += max(cur.rowcount, 0)
        for place in r.covers:
            cur = conn.execute(
                "INSERT INTO responder_coverage (responder_id, place_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (r.id, place),
            )
            cover += max(cur.rowcount, 0)
    ch["responder_coverage"] = cover
    # Dispatch reads weekly shifts from responder_shifts: its own writer keeps them.
    for r in doc.responders:
        save_responder(conn, r, cipher)
    changed_family = _upsert(
        conn,
        "family_members",
        ("id", "display_name", "phone"),
        [(f.id, f.display_name, plain_or_none(f.phone, cipher)) for f in doc.family_members],
    )
    if cipher is not None:
        phones = {f.id: f.phone for f in doc.family_members}
        changed_family += seal_contacts(conn, cipher, "family_members", "phone", phones)
    ch["family_members"] = len(set(changed_family))
    links = 0
    for f in doc.family_members:
        for link in f.links:
            cur = conn.execute(
                """
                INSERT INTO family_links (family_member_id, resident_id, relationship, consent)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (family_member_id, resident_id) DO UPDATE
                SET relationship = EXCLUDED.relationship, consent = EXCLUDED.consent
                WHERE family_links.relationship IS DISTINCT FROM EXCLUDED.relationship
                   OR family_links.consent IS DISTINCT FROM EXCLUDED.consent
                """,
                (f.id, link.resident_id, link.relationship, Jsonb(link.consent)),
            )
            links += max(cur.rowcount, 0)
    ch["family_links"] = links
    if changed_gws:
        conn.execute(
            "UPDATE gateways SET config_version = config_version + 1 WHERE id = ANY(%s)",
            (sorted(changed_gws),),
        )
    report.gateways = sorted(changed_gws)
    return report


def gateway_configs(conn: Conn, gateway_ids: Sequence[str] | None = None) -> list[GatewayConfig]:
    """The current configuration of the given gateways (all when ``None``)."""
    gws = conn.execute(
        "SELECT id, site_id, config_version FROM gateways WHERE retired_at IS NULL "
        "AND (%s::text[] IS NULL OR id = ANY(%s)) ORDER BY id",
        (gateway_ids, gateway_ids),
    ).fetchall()
    devs: dict[str, list[DeviceBinding]] = {str(g[0]): [] for g in gws}
    rows = conn.execute(
        """
        SELECT d.gateway_id, d.id, d.family, d.native_id, d.site_id, d.room_id,
               d.resident_id, d.type, d.power, d.offline_timeout_s, r.kind::text
        FROM devices d LEFT JOIN rooms r ON r.id = d.room_id
        WHERE d.gateway_id = ANY(%s) AND d.retired_at IS NULL ORDER BY d.gateway_id, d.id
        """,
        (list(devs),),
    ).fetchall()
    for r in rows:
        devs[str(r[0])].append(
            DeviceBinding(
                id=r[1],
                family=r[2],
                native_id=r[3],
                site=r[4],
                room=r[5],
                room_kind=r[10],
                res=r[6],
                type=r[7],
                power=r[8],
                offline_timeout_s=r[9],
            )
        )
    return [
        GatewayConfig(gw=str(g[0]), site=str(g[1]), version=int(g[2]), devices=devs[str(g[0])])
        for g in gws
    ]


def gateway_config(conn: Conn, gateway_id: str) -> GatewayConfig | None:
    got = gateway_configs(conn, [gateway_id])
    return got[0] if got else None


def publish_configs(
    broker: BrokerAddress,
    topics: Topics,
    configs: Sequence[GatewayConfig],
    *,
    cleared: Sequence[str] = (),
    timeout_s: float = 10.0,
) -> int:
    """Publish each config retained (QoS 1) on its gateway's config topic, and an empty
    retained message (which deletes the retained config) for each gateway in ``cleared``;
    returns how many were acknowledged.  Raises :class:`BrokerUnavailable` otherwise."""
    messages = [(topics.gateway_config(c.gw), c.model_dump_json(), c.gw) for c in configs]
    messages += [(topics.gateway_config(gw), "", gw) for gw in cleared]
    if not messages:
        return 0
    conn = new_connection(broker, client_id=None, clean_start=True)
    conn.connect()
    client = conn.client
    client.loop_start()
    try:
        infos = [
            (client.publish(topic, payload, qos=1, retain=True), gw)
            for topic, payload, gw in messages
        ]
        for info, gw in infos:
            info.wait_for_publish(timeout=timeout_s)
            if not info.is_published():
                raise BrokerUnavailable(f"config of gateway {gw} was not acknowledged")
    except (RuntimeError, ValueError) as err:
        raise BrokerUnavailable(f"publishing gateway configs failed: {err}") from err
    finally:
        client.disconnect()
        client.loop_stop()
    log.info("published %d gateway configs and cleared %d (retained)", len(configs), len(cleared))
    return len(messages)


def push_pending_configs(
    conn: Conn,
    broker: BrokerAddress,
    topics: Topics,
    *,
    only: Sequence[str] | None = None,
    timeout_s: float = 10.0,
) -> list[str]:
    """Publish every gateway whose configuration changed since it was last pushed.

    An active gateway gets its current config; a retired one gets its retained config
    deleted.  A gateway is marked pushed (at the version read) only after the broker
    acknowledged, so a failed push is retried by the next run.  Returns the gateways
    pushed.
    """
    pending = conn.execute(
        "SELECT id, config_version, retired_at IS NOT NULL FROM gateways "
        "WHERE config_version > config_pushed_version "
        "AND (%s::text[] IS NULL OR id = ANY(%s)) ORDER BY id",
        (only, only),
    ).fetchall()
    if not pending:
        return []
    retired = [str(r[0]) for r in pending if r[2]]
    configs = gateway_configs(conn, [str(r[0]) for r in pending if not r[2]])
    publish_configs(broker, topics, configs, cleared=retired, timeout_s=timeout_s)
    # The versions read above were pushed; a change made meanwhile stays pending.
    pushed = {c.gw: c.version for c in configs}
    pushed.update({str(r[0]): int(r[1]) for r in pending if r[2]})
    for gw, version in pushed.items():
        conn.execute(
            "UPDATE gateways SET config_pushed_version = GREATEST(config_pushed_version, %s) "
            "WHERE id = %s",
            (version, gw),
        )
    return sorted(pushed)


@dataclass
class RetireReport:
    #: Devices retired by this call (none when they already were).
    devices: list[str] = field(default_factory=list)
    #: Gateways whose configuration changed (version bumped): push them.
    gateways: list[str] = field(default_factory=list)
    #: Device-offline / low-battery / gateway-offline alerts cancelled with the retirement.
    alerts_cancelled: list[int] = field(default_factory=list)


def retire_device(
    conn: Conn, device_id: str, *, actor: str, at: datetime, reason: str = ""
) -> RetireReport:
    """Take one device out of service (one transaction; retiring it again changes nothing).

    Its history stays; it leaves its gateway's configuration (version bumped), the ingest
    registry and the device checks, and its open technical alerts are cancelled.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT gateway_id, retired_at FROM devices WHERE id = %s FOR UPDATE", (device_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"device {device_id} not found")
        report = RetireReport()
        if row[1] is None:
            _retire_devices(conn, [device_id], at, actor, reason, report)
            conn.execute(
                "UPDATE gateways SET config_version = config_version + 1 WHERE id = %s",
                (row[0],),
            )
            report.gateways = [str(row[0])]
    log.info("device %s retired by %s", device_id, actor)
    return report


def retire_gateway(
    conn: Conn, gateway_id: str, *, actor: str, at: datetime, reason: str = ""
) -> RetireReport:
    """Take a gateway and every device on it out of service, and revoke its broker secret.

    Its retained configuration is deleted by the next config push.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT retired_at FROM gateways WHERE id = %s FOR UPDATE", (gateway_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"gateway {gateway_id} not found")
        report = RetireReport()
        if row[0] is None:
            devices = conn.execute(
                "SELECT id FROM devices WHERE gateway_id = %s AND retired_at IS NULL "
                "ORDER BY id FOR UPDATE",
                (gateway_id,),
            ).fetchall()
            _retire_devices(conn, [str(d[0]) for d in devices], at, actor, reason, report)
            conn.execute(
                "UPDATE gateways SET retired_at = %s, secret_hash = NULL, "
                "config_version = config_version + 1 WHERE id = %s",
                (at, gateway_id),
            )
            _cancel_technical(conn, gateway_id, at, actor, reason, report)
            _audit_retirement(conn, "gateway", gateway_id, at, actor, reason)
            report.gateways = [gateway_id]
    log.info("gateway %s retired by %s", gateway_id, actor)
    return report


def _retire_devices(
    conn: Conn,
    device_ids: Sequence[str],
    at: datetime,
    actor: str,
    reason: str,
    report: RetireReport,
) -> None:
    if not device_ids:
        return
    conn.execute("UPDATE devices SET retired_at = %s WHERE id = ANY(%s)", (at, list(device_ids)))
    for dev in device_ids:
        _cancel_technical(conn, dev, at, actor, reason, report)
        _audit_retirement(conn, "device", dev, at, actor, reason)
    report.devices.extend(device_ids)


def _cancel_technical(
    conn: Conn, subject: str, at: datetime, actor: str, reason: str, report: RetireReport
) -> None:
    rows = conn.execute(
        "SELECT id FROM alerts WHERE subject = %s AND kind = ANY(%s) AND status = ANY(%s) "
        "ORDER BY id",
        (subject, sorted(TECHNICAL), sorted(ACTIVE)),
    ).fetchall()
    note = f"retired: {reason}" if reason else "retired"
    for (alert_id,) in rows:
        alerts_repository.transition(
            conn, int(alert_id), Status.CANCELLED, actor=actor, at=at, note=note
        )
        report.alerts_cancelled.append(int(alert_id))


def _audit_retirement(
    conn: Conn, object_type: str, object_id: str, at: datetime, actor: str, reason: str
) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (at, actor, f"{object_type}.retire", object_type, object_id, Jsonb({"reason": reason})),
    )
