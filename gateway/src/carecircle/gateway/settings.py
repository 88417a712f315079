"""Settings of the gateway deployable (``[gateway]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, PositiveInt

from carecircle.common.contract.envelope import Ident
from carecircle.common.settings import CareCircleSettings, MqttUrl


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
