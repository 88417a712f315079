"""Settings of the gateway deployable (``[gateway]`` in the TOML file, ``CARECIRCLE_*``).

One process normally serves one gateway (an edge box).  A ``[[gateway.sites]]`` array
makes one process serve several gateways, each with its own identity, credentials,
queue file, local session, liveness and will: the ``[gateway]`` table holds what they
share, each ``[[gateway.sites]]`` table what is its own (at least ``gateway_id``).  In
shared values of :data:`TEMPLATED` settings ``{gateway_id}`` and ``{site_id}`` are
replaced per site, e.g. ``queue_path = "/var/lib/carecircle/{gateway_id}.sqlite3"``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt, ValidationError, field_validator

from carecircle.common.contract.envelope import Ident
from carecircle.common.errors import ConfigError
from carecircle.common.settings import CareCircleSettings, MqttUrl

#: A topic base: no wildcards, no leading or trailing slash.
TOPIC_BASE = r"^[^#+/]+(/[^#+/]+)*$"


class GatewaySettings(CareCircleSettings):
    section: ClassVar[str] = "gateway"

    gateway_id: Ident = Field(default="gw-local", description="this gateway's id")
    site_id: Ident = Field(default="site-local", description="household or facility it serves")
    #: The platform's broker (uplink).  Per-gateway credentials go in the URL.
    mqtt_url: MqttUrl = Field(default="mqtt://127.0.0.1:1883")  # type: ignore[assignment]
    mqtt_ca_file: Path | None = None
    #: The local broker the devices (zigbee2mqtt, wearables) publish to.
    local_mqtt_url: MqttUrl = Field(default="mqtt://127.0.0.1:1883")  # type: ignore[assignment]
    #: Durable store-and-forward queue (SQLite, WAL mode).
    queue_path: Path = Path("carecircle-gateway-queue.sqlite3")
    queue_max_messages: PositiveInt = 1_000_000
    queue_max_age_days: PositiveInt = 7
    batch_max_items: PositiveInt = Field(default=500, le=5000)
    batch_max_delay_ms: PositiveInt = 200
    heartbeat_interval_s: PositiveInt = 30

    # -- gateway runtime (adapters, queue durability, uplink, liveness) -------------
    #: Native topic bases on the local broker (prefix them to share a broker).
    zigbee2mqtt_base: str = Field(default="zigbee2mqtt", pattern=TOPIC_BASE)
    careband_base: str = Field(default="careband", pattern=TOPIC_BASE)
    bedsensor_base: str = Field(default="bedsensor", pattern=TOPIC_BASE)
    homeassistant_base: str = Field(default="homeassistant", pattern=TOPIC_BASE)
    #: ``FULL`` survives power cuts; ``NORMAL`` (with WAL) survives process crashes only.
    queue_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    #: Where the last pushed GatewayConfig is cached (default: next to the queue).
    registry_cache_path: Path | None = None
    #: Local broker session kept this long while the gateway is down (QoS 1 devices lose nothing).
    local_session_expiry_s: PositiveInt = 7 * 86400
    #: MQTT client ids (default: derived from topic_root and gateway_id).
    local_client_id: str | None = None
    uplink_client_id: str | None = None
    uplink_max_inflight: PositiveInt = Field(default=20, le=1000)
    uplink_reconnect_max_s: PositiveInt = 30
    #: After each (re)connection send nothing until an ingest worker announces that it is
    #: subscribed (``gw/{id}/ingest``): a broker drops what nobody is subscribed to, and
    #: Mosquitto 2.0 loses the workers' shared subscriptions when it restarts.  Turn off
    #: only for a platform without ingest workers (a bare collector in tests).
    uplink_wait_for_ingest: bool = True
    #: Seconds between status log lines (queue depth, sent/s, dead letters).
    status_interval_s: PositiveInt = 30

    # -- reliability: per-device rate limit (issue 12) --
    #: Routine items per second one device may send (a token bucket; 0 = no limit).
    #: Alarms, status and heartbeats are never limited.  Excess items are dropped, counted
    #: (``rate_limited``) and logged at 1, 10, 100, … drops per device.
    device_rate_per_s: float = Field(default=200.0, ge=0)
    #: Items a quiet device may send at once before the rate applies.
    device_rate_burst: PositiveInt = 2000

    #: Several gateways in this process (``[[gateway.sites]]``); empty = this one gateway.
    sites: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("sites")
    @classmethod
    def _site_tables(cls, sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, site in enumerate(sites):
            if "gateway_id" not in site:
                raise ValueError(f"sites[{i}] has no gateway_id")
            unknown = sorted(set(site) - PER_SITE)
            if unknown:
                raise ValueError(
                    f"sites[{i}] ({site['gateway_id']}): {', '.join(unknown)} cannot differ "
                    f"per site (allowed: {', '.join(sorted(PER_SITE))})"
                )
        return sites

    def gateways(self) -> list[GatewaySettings]:
        """The gateways this process serves: itself, or one settings object per site.

        Raises :class:`ConfigError` when a site's values are invalid or when two sites
        would share a gateway id, a queue file, a config cache or an MQTT client id.
        """
        if not self.sites:
            return [self]
        shared = self.model_dump(exclude={"sites"})
        out: list[GatewaySettings] = []
        for i, site in enumerate(self.sites):
            values = {**shared, **site, "sites": []}
            gid, sid = str(values["gateway_id"]), str(values["site_id"])
            for key in TEMPLATED:
                if key not in site and values.get(key) is not None:
                    filled = str(values[key]).replace("{gateway_id}", gid)
                    values[key] = filled.replace("{site_id}", sid)
            try:
                out.append(GatewaySettings(**values))
            except ValidationError as err:
                first = err.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ConfigError(
                    f"invalid setting {loc} of gateway site {i} ({gid}): {first['msg']}"
                ) from err
        _refuse_shared(out)
        return out

    def cache_path(self) -> Path:
        return self.registry_cache_path or self.queue_path.with_name(
            self.queue_path.name + ".config.json"
        )

    def local_client(self) -> str:
        """Client id of the persistent session on the local (device) broker."""
        return self.local_client_id or f"cc-{self.topic_root}-{self.gateway_id}-local"

    def uplink_client(self) -> str:
        """Client id on the platform broker."""
        return self.uplink_client_id or f"cc-{self.topic_root}-{self.gateway_id}-up"


#: Settings a ``[[gateway.sites]]`` table may set for its own gateway.
PER_SITE = frozenset(
    {
        "gateway_id",
        "site_id",
        "mqtt_url",
        "mqtt_ca_file",
        "local_mqtt_url",
        "queue_path",
        "registry_cache_path",
        "local_client_id",
        "uplink_client_id",
        "zigbee2mqtt_base",
        "careband_base",
        "bedsensor_base",
        "homeassistant_base",
    }
)
#: Shared settings in which ``{gateway_id}`` and ``{site_id}`` are filled per site.
TEMPLATED = (
    "queue_path",
    "registry_cache_path",
    "local_client_id",
    "uplink_client_id",
    "zigbee2mqtt_base",
    "careband_base",
    "bedsensor_base",
    "homeassistant_base",
)


def _refuse_shared(gateways: list[GatewaySettings]) -> None:
    """Each gateway of a process keeps its own identity, queue and MQTT sessions."""
    owned = {
        "gateway_id": [g.gateway_id for g in gateways],
        "queue_path": [str(g.queue_path.absolute()) for g in gateways],
        "registry_cache_path": [str(g.cache_path().absolute()) for g in gateways],
        "local_client_id": [g.local_client() for g in gateways],
        "uplink_client_id": [g.uplink_client() for g in gateways],
    }
    for key, values in owned.items():
        twice = [v for v, n in Counter(values).items() if n > 1]
        if twice:
            hint = (
                ' (e.g. queue_path = "/var/lib/carecircle/{gateway_id}.sqlite3")'
                if key == "queue_path"
                else ""
            )
            raise ConfigError(f"gateway sites share {key} {twice[0]}: give each site its own{hint}")
