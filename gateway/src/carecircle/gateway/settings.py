"""Settings of the gateway deployable (``[gateway]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from carecircle.common.contract.envelope import Ident
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

    def cache_path(self) -> Path:
        return self.registry_cache_path or self.queue_path.with_name(
            self.queue_path.name + ".config.json"
        )
