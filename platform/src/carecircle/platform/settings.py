"""Settings of the platform deployable (``[platform]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from carecircle.common.settings import CareCircleSettings, MqttUrl, PostgresUrl


class PlatformSettings(CareCircleSettings):
    section: ClassVar[str] = "platform"

    database_url: PostgresUrl = Field(
        default="postgresql://postgres@127.0.0.1:5432/carecircle",  # type: ignore[assignment]
        description="PostgreSQL/TimescaleDB connection URL",
    )
    db_connect_timeout_s: PositiveInt = 5
    mqtt_url: MqttUrl = Field(
        default="mqtt://127.0.0.1:1883",  # type: ignore[assignment]
        description="platform MQTT broker URL (mqtt:// or mqtts://)",
    )
    #: ``auto`` uses TimescaleDB when the server offers the extension.
    timeseries_backend: Literal["auto", "timescale", "plain"] = "auto"
    raw_retention_days: PositiveInt = 90
    event_retention_days: PositiveInt = 730
    #: Plain PostgreSQL: how many days of partitions to prepare ahead.
    partition_days_ahead: PositiveInt = 7
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
