"""Settings of the platform deployable (``[platform]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PositiveInt, field_validator

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

    # -- alerts (rules, absence checks, lifecycle; docs/alerts.md) --
    #: Local time for night/morning windows (IANA name; residents are in China).
    alerts_timezone: str = "Asia/Shanghai"
    #: How often the scheduler runs the absence, device and gateway checks.
    alerts_absence_interval_s: PositiveInt = 60
    #: An alert closed this many times within the window is held when it fires again.
    alerts_flap_count: PositiveInt = 3
    alerts_flap_window_s: PositiveInt = 3600
    #: How long ingest workers cache rules, residents and rooms.
    alerts_cache_s: PositiveInt = 30

    @field_validator("alerts_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from err
        return value
