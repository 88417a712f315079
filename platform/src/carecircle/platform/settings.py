"""Settings of the platform deployable (``[platform]`` in the TOML file, ``CARECIRCLE_*``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, SecretStr

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

    # --- API and dashboard (carecircle.platform.api / auth / dashboard) ---
    #: Demo mode allows the built-in development JWT secret; never in production.
    demo_mode: bool = False
    #: HS256 signing secret for access tokens; required (>= 32 chars) outside demo mode.
    jwt_secret: SecretStr = Field(default=SecretStr(""), repr=False)
    access_token_minutes: PositiveInt = 15
    refresh_token_days: PositiveInt = 14
    #: Login attempts allowed per (username, client address) in a burst, then one per
    #: ``login_refill_s`` seconds.
    login_burst: PositiveInt = 5
    login_refill_s: PositiveInt = 60
    #: Connections the API keeps open to PostgreSQL.
    api_pool_size: PositiveInt = 8
    #: Time zone for days in summaries and charts shown to people.
    display_timezone: str = "Asia/Shanghai"
    #: Events a slow live-stream client may fall behind before it is disconnected.
    live_queue_size: PositiveInt = 256
